"""spectree 3.0.0: verify and list_persons ported. spectree validates ``json=`` or ``form=`` by the request's
media type (multipart or JSON on one route: yes), puts the models in its spec, and hands a failed
validation to ``before``; everything else (scopes, images, the per-person limit, the answers) stays ours."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request
from pydantic import RootModel
from pydantic import ValidationError as PydanticError
from spectree import Response as Answers
from spectree import SecurityScheme, SecuritySchemeData, SpecTree
from spectree.plugins.flask_plugin import FlaskPlugin

from service.web import bodies, inputs, models, schemas
from service.web.auth import require, reveals_enrollment, reveals_scores
from service.web.context import get_recognizer
from service.web.limits import per_target_person
from service.web.persons import _decode_cursor, _encode_cursor

from .base import assemble
from .glue import StrictRequest, ours


def _refuse(req: Any, resp: Any, error: Exception | None, instance: Any, adapter: Any) -> None:
    if isinstance(error, PydanticError):  # spectree's own 422 body is replaced by our envelope
        raise ours(error, query=req.method == "GET")


class _Plugin(FlaskPlugin):
    def fill_form(self, request: Any) -> dict[str, Any]:
        """Main's reading: the text fields, the first of a repeated one (spectree's own also puts the files
        into the data, and then fails to JSON-encode its error for a missing field: a 500). A urlencoded form is
        spectree's form, not ours: 415 before any field is looked at."""
        inputs._kind()
        return {k: request.form.get(k) for k in request.form}


spec = SpecTree("flask", backend=_Plugin, title="Face ID service", version="1", openapi_version="3.1.0", before=_refuse,
                validation_error_status=400, annotations=False, path="apidoc", mode="strict",
                naming_strategy=lambda model: model.__name__, nested_naming_strategy=lambda _parent, child: child,
                security_schemes=[SecurityScheme(name="apiKey", data=SecuritySchemeData(
                    type="apiKey", field_in="header", name="X-API-Key"))])
ERRORS = {f"HTTP_{status}": models.Error for status in (400, 401, 403, 429, 503)}  # one model per status


class VerifyAnswer(RootModel[models.Verification | models.VerifyDecision]):
    """One model per status: the two answers as a union (anyOf, not main's oneOf)."""


matching = Blueprint("matching", __name__, url_prefix="/v1")
persons = Blueprint("persons", __name__, url_prefix="/v1/persons")


@matching.post("/verify")
@require("verify")
@per_target_person
@spec.validate(json=bodies.Verify, form=bodies.Verify, tags=["matching"], security=[{"apiKey": []}],
               operation_id="matching_verify",
               resp=Answers(HTTP_200=VerifyAnswer, HTTP_404=models.Error, HTTP_408=models.Error,
                            HTTP_413=models.Error, HTTP_415=models.Error, HTTP_422=models.Error, **ERRORS))
def verify() -> Response:
    """1:1: is the largest face this person?

    Key scope: `verify` (or `admin`). Keys without `admin` get the decision only (`VerifyDecision`); admin keys
    also the similarity and threshold. A key without `identify` or `admin` gets an unknown id answered as a
    non-match (`match: false`), never 404. Also limited per target person, whatever the key."""
    body: bodies.Verify = request.context.json or request.context.form  # type: ignore[attr-defined]
    (image,) = inputs.images(at_most=1)
    verdict = get_recognizer().verify(body.person_id, image, threshold=body.threshold,
                                      reveal_unknown=reveals_enrollment())
    return jsonify(schemas.verification(verdict, reveal=reveals_scores()))


@persons.get("")
@require("admin")
@spec.validate(query=bodies.PersonsQuery, tags=["persons"], security=[{"apiKey": []}],
               operation_id="persons_list_persons", resp=Answers(HTTP_200=models.PersonsPage, **ERRORS))
def list_persons() -> Response:
    """List persons, a page at a time

    Key scope: `admin`."""
    query: bodies.PersonsQuery = request.context.query  # type: ignore[attr-defined]
    limit, offset = query.limit, query.offset
    after = _decode_cursor(query.cursor) if query.cursor else None
    people, total = get_recognizer().list_persons(limit=limit + 1, offset=offset, q=query.q, after=after)
    more, people = len(people) > limit, people[:limit]
    cursor = _encode_cursor(people[-1].created_at, people[-1].id) if more else None
    return jsonify(models.PersonsPage.of(items=people, total=total, limit=limit, offset=offset,
                                         next_cursor=cursor))


def make_app(settings: Any, service: Any) -> Flask:
    app = Flask("trial_spectree")
    app.request_class = StrictRequest
    assemble(app, settings, service, (matching, persons))
    spec.register(app)
    return app


def library_spec(app: Flask) -> dict[str, Any]:
    with app.app_context():
        return spec.spec
