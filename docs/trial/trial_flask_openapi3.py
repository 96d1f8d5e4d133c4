"""flask-openapi3 4.3.2: verify and list_persons ported. The library validates what a view's annotations name
(``query``, ``form``, ``body``), but ``form`` and ``body`` both run on every request (no multipart-OR-JSON),
and its form reader ``json.loads`` every text field (``person_id=123`` arrives as an int, ``null`` as None):
so verify keeps main's own parsing, and its request body and its oneOf answer are written into the operation
by hand (``openapi_extensions``); list_persons is the library's (``query``)."""
from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify
from flask_openapi3 import APIBlueprint, Info, OpenAPI, validate_request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from service.web import bodies, inputs, models, schemas
from service.web.auth import require, reveals_enrollment, reveals_scores
from service.web.context import get_recognizer
from service.web.limits import per_target_person
from service.web.persons import _decode_cursor, _encode_cursor

from .base import assemble
from .glue import ours

REF = "#/components/schemas/{}"
SECURITY = [{"apiKey": []}]
matching = APIBlueprint("matching", __name__, url_prefix="/v1", abp_tags=[])
persons = APIBlueprint("persons", __name__, url_prefix="/v1/persons", abp_tags=[])


def _refuse(exc: PydanticError) -> Response:
    raise ours(exc, query=True)  # only list_persons is validated by the library here


def _component(bp: APIBlueprint, model: type[BaseModel], mode: str = "serialization") -> dict[str, str]:
    """A model the library does not register itself (a oneOf variant, a body it does not read)."""
    schema = model.model_json_schema(ref_template=REF.replace("{}", "{model}"), mode=mode)  # type: ignore[arg-type]
    bp.components_schemas.update(schema.pop("$defs", {}))
    bp.components_schemas[model.__name__] = schema
    return {"$ref": REF.format(model.__name__)}


def _errors(bp: APIBlueprint, statuses: dict[int, list[str]]) -> dict[int, dict[str, Any]]:
    """Main's error answers: the envelope, with the codes each status can carry."""
    envelope = _component(bp, models.Error)
    return {status: {"description": ", ".join(codes), "content": {"application/json": {"schema": {"allOf": [
        envelope, {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}]}}}}
        for status, codes in statuses.items()}


VERIFY_BODY = _component(matching, bodies.Verify, "validation")
VERIFY_ERRORS = {400: ["validation_error", "invalid_image"], 401: ["unauthorized"], 403: ["forbidden"],
                 404: ["person_not_found"], 408: ["request_timeout"], 413: ["payload_too_large"],
                 415: ["unsupported_media_type"], 422: ["no_face"], 429: ["rate_limited"], 503: ["store_unavailable"]}


@matching.post("/verify", summary="1:1: is the largest face this person?", security=SECURITY,
               operation_id="matching_verify",
               description="Key scope: `verify` (or `admin`). Keys without `admin` get the decision only "
                           "(`VerifyDecision`); admin keys also the similarity and threshold.",
               openapi_extensions={"requestBody": {"required": True, "content": {
                   "application/json": {"schema": VERIFY_BODY}, "multipart/form-data": {"schema": VERIFY_BODY}}}},
               responses={200: {"description": "Verify, in full. Or: the decision only.", "content": {
                   "application/json": {"schema": {"oneOf": [_component(matching, models.Verification),
                                                             _component(matching, models.VerifyDecision)]}}}},
                   **_errors(matching, VERIFY_ERRORS)})
@require("verify")
@per_target_person
def verify() -> Response:
    body = bodies.parse(bodies.Verify, inputs.fields())
    (image,) = inputs.images(at_most=1)
    verdict = get_recognizer().verify(body.person_id, image, threshold=body.threshold,
                                      reveal_unknown=reveals_enrollment())
    return jsonify(schemas.verification(verdict, reveal=reveals_scores()))


@persons.get("", summary="List persons, a page at a time", security=SECURITY, operation_id="persons_list_persons",
             description="Key scope: `admin`.",
             responses={200: models.PersonsPage, **_errors(persons, {
                 400: ["validation_error"], 401: ["unauthorized"], 403: ["forbidden"], 429: ["rate_limited"],
                 503: ["store_unavailable"]})})
@require("admin")  # the key before the query: validate_request() delays the library's validation to here
@validate_request()
def list_persons(query: bodies.PersonsQuery) -> Response:
    limit, offset = query.limit, query.offset
    after = _decode_cursor(query.cursor) if query.cursor else None
    people, total = get_recognizer().list_persons(limit=limit + 1, offset=offset, q=query.q, after=after)
    more, people = len(people) > limit, people[:limit]
    cursor = _encode_cursor(people[-1].created_at, people[-1].id) if more else None
    return jsonify(models.PersonsPage.of(items=people, total=total, limit=limit, offset=offset,
                                         next_cursor=cursor))


def make_app(settings: Any, service: Any) -> Flask:
    app = OpenAPI("trial_flask_openapi3", info=Info(title="Face ID service", version="1"),
                  security_schemes={"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
                  validation_error_status=400, validation_error_model=models.Error,
                  validation_error_callback=_refuse, doc_prefix="/openapi3")
    return assemble(app, settings, service, (matching, persons), register=app.register_api)


def library_spec(app: Flask) -> dict[str, Any]:
    return app.api_doc  # type: ignore[attr-defined,no-any-return]
