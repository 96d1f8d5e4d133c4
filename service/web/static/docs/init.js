// Starts Swagger UI on /docs from /openapi.json. A file of its own: the page's CSP allows no inline script.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false,
    validatorUrl: null, // never send the description to an outside validator (nor load its badge)
  });
});
