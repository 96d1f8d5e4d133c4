"""1:1 verify, 1:N identify, and compare (nothing stored)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import NoFace, PersonNotFound, StoreUnavailable, TooManyFaces, ValidationError
from . import bodies, fields, inputs, models, schemas
from .auth import require, reveals_enrollment, reveals_scores
from .context import get_recognizer, get_settings
from .openapi import operation

bp = Blueprint("matching", __name__, url_prefix="/v1")


@bp.post("/verify")
@operation("1:1: is the largest face this person?", json=bodies.VerifyJson, form=bodies.VerifyForm,
           responses={200: (models.Verification, models.VerifyDecision)},
           errors=[PersonNotFound, NoFace, StoreUnavailable],
           description="Keys without `admin` get the decision only (`VerifyDecision`); admin keys also the "
                       "similarity and threshold. A key without `identify` or `admin` gets an unknown id "
                       "answered as a non-match (`match: false`), never 404. Also limited per target person, "
                       "whatever the key.")
@require("verify")
def verify() -> Response:
    values = inputs.fields()
    person_id = fields.required_person_id(values)
    (image,) = inputs.images(at_most=1)
    verdict = get_recognizer().verify(person_id, image, threshold=fields.number(values, "threshold"),
                                      reveal_unknown=reveals_enrollment())
    return jsonify(schemas.verification(verdict, reveal=reveals_scores()))


@bp.post("/identify")
@operation("1:N: who is this? (open-set threshold for the gallery size)", json=bodies.IdentifyJson,
           form=bodies.IdentifyForm, responses={200: (models.Identification, models.IdentifyDecision)},
           errors=[NoFace, TooManyFaces, StoreUnavailable],
           description="Keys without `admin` get the match only, when it clears the threshold "
                       "(`IdentifyDecision`); admin keys also the scores, the threshold and the ranked candidates.")
@require("identify")
def identify() -> Response:
    recognizer = get_recognizer()
    values = inputs.fields()
    (image,) = inputs.images(at_most=1)
    top_k = fields.integer(values, "top_k", default=recognizer.policy.default_top_k, low=1,
                           high=recognizer.policy.max_top_k)
    result = recognizer.identify(image, top_k=top_k, all_faces=fields.boolean(values, "all_faces"),
                                 threshold=fields.number(values, "threshold"),
                                 max_faces=get_settings().max_faces_per_request)
    return jsonify(schemas.identification(result, reveal=reveals_scores()))


@bp.post("/compare")
@operation("Two images: similarity and decision; nothing stored", json=bodies.CompareJson,
           form=bodies.CompareForm, responses={200: (models.Comparison, models.CompareDecision)}, errors=[NoFace],
           description="Keys without `admin` get the decision only (`CompareDecision`), as on verify.")
@require("verify")
def compare() -> Response:
    values = inputs.fields()
    images = inputs.images(at_most=2)
    if len(images) != 2:
        raise ValidationError("compare needs exactly two images", field="image",
                              details={"got": len(images)})
    verdict = get_recognizer().compare(images[0], images[1], threshold=fields.number(values, "threshold"))
    return jsonify(schemas.comparison(verdict, reveal=reveals_scores()))
