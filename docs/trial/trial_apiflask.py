"""APIFlask 3.1.2 (pydantic through its schema adapter; marshmallow is not needed for pydantic models but is
installed with it: APIFlask, apispec, webargs, flask-marshmallow, marshmallow, Flask-HTTPAuth): verify and
list_persons ported. ``@input(location="json_or_form")`` reads JSON or the form on one route (documented as
urlencoded, not multipart; files not read), ``location="query"`` the query; a failed validation is an
``HTTPError`` handed to ``error_processor``; scopes stay ours (``@require``: HTTPAuth's roles would not
audit a refusal nor check the key before the body)."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from apiflask import APIBlueprint, APIFlask
from apiflask.exceptions import HTTPError
from flask import Flask, Response
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from service import errors as e
from service.web import bodies, inputs, models, schemas
from service.web.auth import require, reveals_enrollment, reveals_scores
from service.web.context import get_recognizer
from service.web.errors import error_response
from service.web.limits import per_target_person
from service.web.persons import _decode_cursor, _encode_cursor

from .base import assemble
from .glue import StrictRequest, ours

REF = "#/components/schemas/{}"
matching = APIBlueprint("matching", __name__, url_prefix="/v1", tag="matching")
persons = APIBlueprint("persons", __name__, url_prefix="/v1/persons", tag="persons")
_COMPONENTS: dict[str, Any] = {}


def _component(model: type[BaseModel]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF.replace("{}", "{model}"), mode="serialization")
    _COMPONENTS.update(schema.pop("$defs", {}))
    _COMPONENTS[model.__name__] = schema
    return {"$ref": REF.format(model.__name__)}


def _errors(statuses: dict[int, list[str]]) -> dict[int, dict[str, Any]]:
    envelope = _component(models.Error)
    return {status: {"description": ", ".join(codes), "content": {"application/json": {"schema": {"allOf": [
        envelope, {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}]}}}}
        for status, codes in statuses.items()}


def _ours_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """415 before the library reads a form: ``json_or_form`` takes any other media type as a form."""
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        inputs._kind()
        return view(*args, **kwargs)
    return checked


VERIFY_ERRORS = {400: ["validation_error", "invalid_image"], 401: ["unauthorized"], 403: ["forbidden"],
                 404: ["person_not_found"], 408: ["request_timeout"], 413: ["payload_too_large"],
                 415: ["unsupported_media_type"], 422: ["no_face"], 429: ["rate_limited"], 503: ["store_unavailable"]}


@matching.post("/verify")
@matching.doc(summary="1:1: is the largest face this person?", security="apiKey", operation_id="matching_verify",
              description="Key scope: `verify` (or `admin`). Keys without `admin` get the decision only "
                          "(`VerifyDecision`); admin keys also the similarity and threshold.",
              responses={200: {"description": "Verify, in full. Or: the decision only.", "content": {
                  "application/json": {"schema": {"oneOf": [_component(models.Verification),
                                                            _component(models.VerifyDecision)]}}}},
                  **_errors(VERIFY_ERRORS)})
@require("verify")
@per_target_person
@_ours_only
@matching.input(bodies.Verify, location="json_or_form", arg_name="body")
def verify(body: bodies.Verify) -> Response:
    (image,) = inputs.images(at_most=1)
    verdict = get_recognizer().verify(body.person_id, image, threshold=body.threshold,
                                      reveal_unknown=reveals_enrollment())
    return schemas.verification(verdict, reveal=reveals_scores())  # type: ignore[return-value]


@persons.get("")
@persons.doc(summary="List persons, a page at a time", security="apiKey", operation_id="persons_list_persons",
             description="Key scope: `admin`.", responses=_errors({
                 400: ["validation_error"], 401: ["unauthorized"], 403: ["forbidden"], 429: ["rate_limited"],
                 503: ["store_unavailable"]}))
@require("admin")
@persons.input(bodies.PersonsQuery, location="query", arg_name="query")
@persons.output(models.PersonsPage)
def list_persons(query: bodies.PersonsQuery) -> dict[str, Any]:
    limit, offset = query.limit, query.offset
    after = _decode_cursor(query.cursor) if query.cursor else None
    people, total = get_recognizer().list_persons(limit=limit + 1, offset=offset, q=query.q, after=after)
    more, people = len(people) > limit, people[:limit]
    cursor = _encode_cursor(people[-1].created_at, people[-1].id) if more else None
    return models.PersonsPage.of(items=people, total=total, limit=limit, offset=offset, next_cursor=cursor)


def make_app(settings: Any, service: Any) -> Flask:
    app = APIFlask("trial_apiflask", title="Face ID service", version="1", spec_path=None, docs_path=None)
    app.config.update(AUTO_VALIDATION_ERROR_RESPONSE=False, AUTO_AUTH_ERROR_RESPONSE=False, AUTO_404_RESPONSE=False,
                      AUTO_200_RESPONSE=False, VALIDATION_ERROR_STATUS_CODE=400,
                      SECURITY_SCHEMES={"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}})
    app.request_class = StrictRequest

    @app.error_processor
    def _refused(error: HTTPError) -> tuple[Response, int]:
        cause = error.__cause__
        if isinstance(cause, PydanticError):
            return error_response(ours(cause, query="query" in (error.detail or {})))
        return error_response(e.FaceIdError(error.message))

    @app.spec_processor
    def _components(spec: dict[str, Any]) -> dict[str, Any]:
        spec.setdefault("components", {}).setdefault("schemas", {}).update(_COMPONENTS)
        return spec

    return assemble(app, settings, service, (matching, persons))


def library_spec(app: Flask) -> dict[str, Any]:
    with app.app_context():
        return app._get_spec("json", force_update=True)  # type: ignore[attr-defined,no-any-return]
