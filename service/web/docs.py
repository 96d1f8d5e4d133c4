"""GET /openapi.json (the generated API description, ``openapi.spec``) and GET /docs: Swagger UI served from
the files of the pinned ``swagger-ui-py`` package and this package's own start script, never a CDN (the
service runs offline), under a CSP that allows the page's own scripts and no inline one. The error-code table
is in the page itself, readable without JavaScript."""
from __future__ import annotations

import html
from pathlib import Path

import swagger_ui
from flask import Blueprint, Response, current_app, jsonify, send_from_directory

from ..errors import NotFound, client_errors, when
from .openapi import spec

bp = Blueprint("docs", __name__)

SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
OWN_DIR = Path(__file__).parent / "static" / "docs"
# The only files /docs/ serves: Swagger UI's bundle and style, and our start script.
ASSETS = {"swagger-ui-bundle.js": SWAGGER_DIR, "swagger-ui.css": SWAGGER_DIR, "init.js": OWN_DIR}
_SPEC = "faceid.openapi"


@bp.get("/openapi.json")
def openapi() -> Response:
    if _SPEC not in current_app.extensions:  # the routes are fixed once the app serves: build it once
        current_app.extensions[_SPEC] = spec(current_app)
    return jsonify(current_app.extensions[_SPEC])


@bp.get("/docs")
def docs() -> Response:
    errors = "".join(f"<tr><td><code>{c.code}</code></td><td>{c.status}</td><td>{html.escape(when(c))}</td></tr>"
                     for c in client_errors())
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Face ID API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head><body>
<div id="swagger-ui"><noscript><p>The interactive description needs JavaScript; the machine-readable one is
<a href="/openapi.json">/openapi.json</a>.</p></noscript></div>
<section style="font-family:sans-serif;margin:2em;max-width:70em"><h2>Errors</h2>
<p>One shape: <code>{{"error": {{"code", "message", "details", "request_id"}}}}</code>. Codes are stable.</p>
<table><tr><th>code</th><th>HTTP</th><th>when</th></tr>{errors}</table></section>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>"""
    return Response(page, mimetype="text/html")


@bp.get("/docs/<name>")
def asset(name: str) -> Response:
    folder = ASSETS.get(name)
    if folder is None:
        raise NotFound("no such endpoint")
    return send_from_directory(folder, name, max_age=3600)
