"""GET /openapi.json (the API description) and GET /docs (a self-contained page rendered from it: no CDN, the
service runs offline)."""
from __future__ import annotations

import html
from typing import Any

from flask import Blueprint, Response, jsonify

from ..errors import client_errors, when

bp = Blueprint("docs", __name__)

_IMAGE = {"type": "string", "format": "binary", "description": "image file (JPEG, PNG, WEBP, HEIC, BMP, GIF, TIFF)"}
_BOX = {"type": "object", "properties": {k: {"type": "number"} for k in ("x", "y", "width", "height")}}


def _op(summary: str, scope: str | None, fields: dict[str, Any] | None, responses: dict[int, str], *,
        multi: bool = False, params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {str(k): {"description": v} for k, v in responses.items()}}
    if scope:
        op["security"] = [{"apiKey": []}]
        op["description"] = f"Scope: `{scope}`."
    if params:
        op["parameters"] = params
    if fields is not None:
        image_prop = {"type": "array", "items": _IMAGE} if multi else _IMAGE
        props = {"image": image_prop, **fields}
        json_props = {"image": {"type": "string", "description": "base64 (data URLs accepted)"},
                      **({"images": {"type": "array", "items": {"type": "string"}}} if multi else {}), **fields}
        op["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": props}},
            "application/json": {"schema": {"type": "object", "properties": json_props}}}}
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_spec() -> dict[str, Any]:
    pid, fid = _path_param("person_id"), _path_param("face_id")
    err = {400: "invalid_image / validation_error", 401: "unauthorized", 413: "payload_too_large",
           415: "unsupported_media_type", 422: "no_face / multiple_faces / low_quality"}
    thr = {"threshold": {"type": "number", "description": "stricter than the calibrated one, never looser"}}
    paths = {
        "/healthz": {"get": _op("Liveness", None, None, {200: "alive"})},
        "/readyz": {"get": _op("Readiness: model loaded and store reachable", None, None,
                               {200: "ready", 503: "not ready"})},
        "/v1/detect": {"post": _op("Every face: box, 5 landmarks, probability; largest first", "client", {},
                                   {200: "faces", **err})},
        "/v1/persons": {
            "post": _op("Register a person from one or more images (all or nothing)", "client",
                        {"name": {"type": "string"}, "person_id": {"type": "string"},
                         "metadata": {"type": "object", "description": "JSON object (a JSON string in multipart)"}},
                        {201: "registered", 409: "person_exists / duplicate_face", **err}, multi=True),
            "get": _op("List persons", "admin", None, {200: "page of persons"}, params=[
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                {"name": "offset", "in": "query", "schema": {"type": "integer"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "name substring"}])},
        "/v1/persons/{person_id}": {
            "get": _op("A person and their faces", "admin", None, {200: "person", 404: "person_not_found"},
                       params=[pid]),
            "patch": {**_op("Change name and/or metadata", "admin", None, {200: "person", 404: "person_not_found"},
                            params=[pid]),
                      "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                          "name": {"type": "string"}, "metadata": {"type": "object"}}}}}}},
            "delete": _op("Erase the person with every face, crop and embedding", "admin", None,
                          {200: "deleted", 404: "person_not_found"}, params=[pid])},
        "/v1/persons/{person_id}/faces": {
            "post": {**_op("Add faces to a person: each must match them (else 422 face_mismatch)", "client",
                           {"allow_mismatch": {"type": "boolean",
                                               "description": "admin keys only: add a face that does not match"}},
                           {201: "added", 403: "forbidden (allow_mismatch with a client key)",
                            404: "person_not_found", 409: "duplicate_face",
                            **err, 422: "no_face / multiple_faces / low_quality / face_mismatch"},
                           multi=True), "parameters": [pid]}},
        "/v1/persons/{person_id}/faces/{face_id}": {
            "delete": _op("Delete one face", "admin", None, {200: "deleted", 404: "face_not_found"},
                          params=[pid, fid])},
        "/v1/persons/{person_id}/faces/{face_id}/crop": {
            "get": _op("The stored aligned face crop (JPEG)", "admin", None, {200: "image/jpeg",
                                                                                404: "face_not_found"},
                       params=[pid, fid])},
        "/v1/verify": {"post": _op("1:1: is the largest face this person?", "client",
                                   {"person_id": {"type": "string"}, **thr},
                                   {200: "{match, similarity, threshold, person_id, box}", 404: "person_not_found",
                                    **err})},
        "/v1/identify": {"post": _op("1:N: who is this? (open-set threshold for the gallery size)", "client",
                                     {"top_k": {"type": "integer"}, "all_faces": {"type": "boolean"}, **thr},
                                     {200: "{threshold, faces: [{box, match, candidates}]}", **err})},
        "/v1/compare": {"post": _op("Two images, similarity and match; nothing stored", "client", thr,
                                    {200: "{match, similarity, threshold, boxes}", **err}, multi=True)},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Face ID service", "version": "1",
                 "description": "Errors: {\"error\": {\"code\", \"message\", \"details\"}}. Codes: " +
                                ", ".join(f"{c.code} ({c.status})" for c in client_errors())},
        "components": {"securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
                       "schemas": {"Box": _BOX}},
        "paths": paths,
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_spec())


@bp.get("/docs")
def docs() -> Response:
    spec = openapi_spec()
    rows = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            responses = ", ".join(f"{k} {v['description']}" for k, v in op["responses"].items())
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op['summary'])}</td><td>{html.escape(op.get('description', 'none'))}</td>"
                        f"<td>{html.escape(responses)}</td></tr>")
    errors = "".join(f"<tr><td><code>{c.code}</code></td><td>{c.status}</td><td>{html.escape(when(c))}</td></tr>"
                     for c in client_errors())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Face ID API</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}td,th{{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}}table{{border-collapse:collapse}}</style></head><body>
<h1>Face ID API</h1><p>API key in header <code>X-API-Key</code>. Images as multipart file field <code>image</code>
(repeatable where several are allowed) or JSON with base64 in <code>image</code>/<code>images</code>.
Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
<table><tr><th>method</th><th>path</th><th>what</th><th>auth</th><th>responses</th></tr>{''.join(rows)}</table>
<h2>Errors</h2><p>One shape: <code>{{"error": {{"code", "message", "details"}}}}</code>.</p>
<table><tr><th>code</th><th>HTTP</th><th>when</th></tr>{errors}</table></body></html>"""
    return Response(page, mimetype="text/html")
