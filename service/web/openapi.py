"""The API description, generated: each view declares itself once with ``@operation(...)`` beside its route,
and ``spec(app)`` writes ``/openapi.json`` (OpenAPI 3.1) from the app's URL map, those declarations and the
pydantic models of ``models`` (which also shape every response body, in ``schemas``).

Declaring an endpoint::

    @bp.post("/keys")
    @operation("Create an API key", body=bodies.KeyCreate, responses={201: models.KeyCreated},
               errors=[e.StoreUnavailable])
    @require("admin")
    def create_key() -> ...

The scopes come from ``@require`` (it marks its wrapper), so they are written once. What every operation can
answer is added from what it is, so it is written once for all of them: ``@require`` adds 401
``unauthorized`` and 403 ``forbidden`` (a key without the scope), every operation 429 ``rate_limited`` unless
``rate_limited=False``; a body adds 400 ``validation_error``, 408 ``request_timeout``, 413 ``payload_too_large`` and 415
``unsupported_media_type``; an image in it adds 400 ``invalid_image``; a query adds 400 ``validation_error``.
``errors`` lists the rest (404 ``person_not_found``, 409, 422, 503 ...). A test fails for any route under /v1
without a declaration, so a new endpoint cannot go undescribed.

A body's fields are one model of ``bodies`` (the one its view parses with); when the endpoint takes images
(``IMAGES``), the description offers it twice, as JSON with base64 images and as multipart with image files,
both derived here from that one model.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from .. import errors as e
from ..core.recognizer import PERSON_ID
from . import models
from .bodies import RUN_ID, SETTING_MAXIMUM, Body, Images, Query
from .context import get_recognizer

F = TypeVar("F", bound=Callable[..., Any])
# A response body: a model, several (oneOf: the least-revealing variants), or a non-JSON media type.
Answer = type[BaseModel] | tuple[type[BaseModel], ...] | str
REF = "#/components/schemas/{model}"
_ATTR = "openapi_operation"


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: Mapping[int, Answer]
    errors: tuple[type[e.FaceIdError], ...] = ()
    body: type[Body] | None = None
    query: type[Query] | None = None
    description: str = ""
    rate_limited: bool = True
    path_params: Mapping[str, str] = field(default_factory=dict)
    body_required: bool = True
    scopes: tuple[str, ...] = ()  # from @require: any one of them (``admin`` grants all); () for no key

    def all_errors(self) -> list[type[e.FaceIdError]]:
        found: list[type[e.FaceIdError]] = []
        if self.scopes:
            found += [e.Unauthorized, e.Forbidden]
        if self.body:
            found += [e.ValidationError, e.RequestTimeout, e.PayloadTooLarge, e.UnsupportedMediaType]
            if self.body.IMAGES:
                found.append(e.InvalidImage)
        if self.query:
            found.append(e.ValidationError)
        if self.rate_limited:
            found.append(e.RateLimited)
        found += self.errors
        return list(dict.fromkeys(found))


def operation(summary: str, *, responses: Mapping[int, Answer], errors: Iterable[type[e.FaceIdError]] = (),
              body: type[Body] | None = None, query: type[Query] | None = None, description: str = "",
              rate_limited: bool = True, path_params: Mapping[str, str] | None = None,
              body_required: bool = True) -> Callable[[F], F]:
    """Declares the view it decorates (put it right under the route decorator, above ``@require``): what it
    takes and answers. With ``@require``'s scopes, the declaration is all ``/openapi.json`` knows about the
    endpoint."""
    op = Operation(summary, dict(responses), tuple(errors), body, query, description, rate_limited,
                   dict(path_params or {}), body_required)

    def decorator(view: F) -> F:
        setattr(view, _ATTR, op)
        return view
    return decorator


def declaration(view: Callable[..., Any]) -> Operation | None:
    """The view's declaration with the scopes ``@require`` put on its wrapper, None for a route that has none
    (wrappers such as Flask-Limiter's are looked through)."""
    seen: Any = view
    scopes: tuple[str, ...] = ()
    while seen is not None:
        scopes = scopes or tuple(getattr(seen, "required_scopes", ()))
        if hasattr(seen, _ATTR):
            found: Operation = getattr(seen, _ATTR)
            return replace(found, scopes=scopes)
        seen = getattr(seen, "__wrapped__", None)
    return None


def undeclared_routes(app: Flask) -> list[str]:
    """API routes (under /v1) without a declaration: the suite fails for any (pages and their files, such as
    /docs and /admin, are not API)."""
    return sorted(f"{sorted(rule.methods or ())} {rule.rule}" for rule in app.url_map.iter_rules()
                  if rule.rule.startswith("/v1/") and declaration(app.view_functions[rule.endpoint]) is None)


_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
# Path parameters with a shape of their own (any other is a non-empty string).
PATH_SCHEMAS: dict[str, dict[str, Any]] = {"person_id": {"type": "string", "pattern": PERSON_ID.pattern},
                                           "run_id": {"type": "string", "pattern": RUN_ID.pattern}}
HEADERS = {"X-Request-ID": {"description": "the request's id (the caller's X-Request-ID when sane, else generated)",
                             "required": True, "schema": {"type": "string", "minLength": 1}},
           "Retry-After": {"description": "seconds to wait", "required": True,
                           "schema": {"type": "string", "pattern": r"^\d+$"}}}
_REQUEST_ID = {"$ref": "#/components/headers/X-Request-ID"}
_RETRY_AFTER = {"$ref": "#/components/headers/Retry-After"}


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every property (the names say it)."""
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``: every declared route, with the models as components."""
    operations: list[tuple[str, str, str, Operation]] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        op = declaration(app.view_functions[rule.endpoint])
        if not op:
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operations.append((path, method.lower(), rule.endpoint, op))

    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(models.Error, "serialization"): None}
    for _, _, _, op in operations:
        for answer in op.responses.values():
            for model in (answer if isinstance(answer, tuple) else (answer,)):
                if not isinstance(model, str):
                    wanted[(model, "serialization")] = None
        for fields in (op.body, op.query):
            if fields is not None:
                wanted[(fields, "validation")] = None
    refs, top = models_json_schema(list(wanted), ref_template=REF, schema_generator=_Schemas)
    components = top.get("$defs", {})
    for body in {op.body for _, _, _, op in operations if op.body is not None}:
        if body.IMAGES is not None:
            plain = components.pop(body.__name__)
            components[body.__name__ + "Json"] = _with_images(plain, body.IMAGES, form=False)
            components[body.__name__ + "Form"] = _with_images(plain, body.IMAGES, form=True)
    components = dict(sorted(components.items()))
    limits = {"max_top_k": get_recognizer(app).policy.max_top_k}
    for schema in components.values():
        for prop in schema.get("properties", {}).values():
            if SETTING_MAXIMUM in prop:
                prop["maximum"] = limits[prop.pop(SETTING_MAXIMUM)]

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    paths: dict[str, dict[str, Any]] = {}
    for path, method, endpoint, op in operations:
        paths.setdefault(path, {})[method] = _operation(path, endpoint, op, ref, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Face ID service", "version": "1", "description": _DESCRIPTION + "\n\n" + e.markdown_table()},
        "components": {"securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
                       "headers": HEADERS, "schemas": components},
        "paths": paths,
    }


_DESCRIPTION = """Register a person from a selfie, verify (1:1), identify (1:N), compare and detect, offline.

API key in the `X-API-Key` header. A key has scopes: `enroll` (register, add faces), `verify` (verify,
compare), `identify`, and `admin` (everything, and the scores: other keys see decisions only); any key may
detect. Keys from `client_keys` have every scope but `admin`. Images as multipart file field
`image` (repeatable where several are allowed) or JSON with base64 strings in `image` / `images`.

Every error is `{"error": {"code", "message", "details", "request_id"}}`; the codes are stable:"""


def _operation(path: str, endpoint: str, op: Operation, ref: Callable[[type[BaseModel], JsonSchemaMode], Any],
               components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": endpoint.replace(".", "_"), "tags": [endpoint.split(".")[0]],
                           "summary": op.summary}
    description = op.description
    if op.scopes:
        out["security"] = [{"apiKey": []}]
        needs = " or ".join(f"`{s}`" for s in op.scopes) + ("" if op.scopes == ("admin",) else " (or `admin`)")
        description = f"Key scope: {needs}." + (f" {description}" if description else "")
    if description:
        out["description"] = description
    params = [{"name": name, "in": "path", "required": True,
               "schema": PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1}),
               **({"description": op.path_params[name]} if name in op.path_params else {})}
              for name in re.findall(r"{([^}]+)}", path)]
    if op.query is not None:
        schema = components.get(op.query.__name__) or op.query.model_json_schema()
        for name, prop in schema["properties"].items():
            prop = dict(prop)
            description = prop.pop("description", None)
            prop.pop("title", None)
            required = name in schema.get("required", ())
            # An empty value is the parameter's default, as everywhere in the service (`?cursor=` is page 1).
            params.append({"name": name, "in": "query", "required": required,
                           **({} if required else {"allowEmptyValue": True}), "schema": prop,
                           **({"description": description} if description else {})})
    if params:
        out["parameters"] = params
    content: dict[str, Any] = {}
    if op.body is not None and op.body.IMAGES:
        content["multipart/form-data"] = {"schema": {"$ref": REF.format(model=op.body.__name__ + "Form")}}
        content["application/json"] = {"schema": {"$ref": REF.format(model=op.body.__name__ + "Json")}}
    elif op.body is not None:
        content["application/json"] = {"schema": ref(op.body, "validation")}
    if content:
        out["requestBody"] = {"required": op.body_required, "content": content}
    responses: dict[str, Any] = {}
    for status, answer in sorted(op.responses.items()):
        responses[str(status)] = {"description": _answer_description(status, answer),
                                  "headers": {"X-Request-ID": _REQUEST_ID}, "content": _content(answer, ref)}
    by_status: dict[int, list[type[e.FaceIdError]]] = {}
    for cls in op.all_errors():
        by_status.setdefault(cls.status, []).append(cls)
    for status, classes in sorted(by_status.items()):
        codes = [c.code for c in classes]
        schema = {"allOf": [ref(models.Error, "serialization"), {"properties": {"error": {"properties": {
            "code": {"enum": codes}}}}}]}
        headers = {"X-Request-ID": _REQUEST_ID, **({"Retry-After": _RETRY_AFTER} if status == 429 else {})}
        responses[str(status)] = {"description": "; ".join(f"`{c.code}`: {e.when(c)}" for c in classes),
                                  "headers": headers, "content": {"application/json": {"schema": schema}}}
    out["responses"] = dict(sorted(responses.items()))
    return out


IMAGE_B64 = "an image, base64 (a data: URL is accepted)"
IMAGE_FILE = "an image file (JPEG, PNG, WEBP, HEIC, BMP, GIF, TIFF)"
_BASE64 = {"type": "string", "contentEncoding": "base64"}
_FILE = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}


def _with_images(fields: dict[str, Any], images: Images, *, form: bool) -> dict[str, Any]:
    """A body's schema with its images: base64 strings in ``image``/``images`` (JSON), or the repeatable
    file field ``image`` (multipart, where a JSON object field such as ``metadata`` is a JSON string)."""
    schema = {**fields, "title": fields["title"] + ("Form" if form else "Json"),
              "properties": dict(fields.get("properties", {}))}
    required = list(schema.get("required", []))
    if form:
        for name, prop in schema["properties"].items():
            if prop.get("type") == "object":
                schema["properties"][name] = {"type": "string", "contentMediaType": "application/json",
                                              "description": prop.get("description", "") + ", as a string"}
        if images == 1:
            schema["properties"]["image"] = {**_FILE, "description": IMAGE_FILE}
        else:
            many = {"minItems": 1} if images == "many" else {"minItems": 2, "maxItems": 2}
            schema["properties"]["image"] = {"type": "array", "items": _FILE, **many, "description": (
                IMAGE_FILE + "; repeat the field for several") if images == "many" else "two image files"}
        schema["required"] = [*required, "image"]
        return schema
    schema["properties"]["image"] = {**_BASE64, "description": IMAGE_B64}
    if images == 1:
        schema["required"] = [*required, "image"]
        return schema
    schema["properties"]["images"] = {"type": "array", "items": _BASE64, **({"maxItems": 2} if images == 2 else {}),
                                      "description": "several images, base64 each" if images == "many" else
                                      "base64 each"}
    if images == 2:
        schema["description"] = "Two images: ``images`` with two, or ``image`` and one in ``images``."
    schema["anyOf"] = [{"required": ["image"]}, {"required": ["images"]}]
    if required:
        schema["required"] = required
    return schema


def _answer_description(status: int, answer: Answer) -> str:
    if isinstance(answer, str):
        return answer
    variants = answer if isinstance(answer, tuple) else (answer,)
    return " Or: ".join((m.__doc__ or "").strip() for m in variants if m.__doc__) or "OK"


def _content(answer: Answer, ref: Callable[[type[BaseModel], JsonSchemaMode], Any]) -> dict[str, Any]:
    if isinstance(answer, str):
        return {answer: {"schema": {"type": "string", "contentMediaType": answer}}}
    if isinstance(answer, tuple):
        return {"application/json": {"schema": {"oneOf": [ref(m, "serialization") for m in answer]}}}
    return {"application/json": {"schema": ref(answer, "serialization")}}
