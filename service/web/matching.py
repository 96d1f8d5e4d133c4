"""1:1 verify, 1:N identify, and compare (nothing stored)."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify

from ..errors import NoFace, PersonNotFound, StoreUnavailable, TooManyFaces, ValidationError
from . import bodies, inputs, models, schemas
from .auth import require, reveals_enrollment, reveals_scores
from .context import get_recognizer, get_settings
from .limits import per_target_person
from .openapi import operation

bp = Blueprint("matching", __name__, url_prefix="/v1")


@bp.post("/verify")
@operation("1:1: is the largest face this person?", body=bodies.Verify,
           responses={200: (models.Verification, models.VerifyDecision)},
           errors=[PersonNotFound, NoFace, StoreUnavailable],
           description="Keys without `admin` get the decision only (`VerifyDecision`); admin keys also the "
                       "similarity and threshold. A key without `identify` or `admin` gets an unknown id "
                       "answered as a non-match (`match: false`), never 404. Also limited per target person, "
                       "whatever the key.")
@require("verify")
@per_target_person
def verify() -> Response:
    body = bodies.parse(bodies.Verify, inputs.fields())
    (image,) = inputs.images(at_most=1)
    verdict = get_recognizer().verify(body.person_id, image, threshold=body.threshold,
                                      reveal_unknown=reveals_enrollment())
    return jsonify(schemas.verification(verdict, reveal=reveals_scores()))


@bp.post("/identify")
@operation("1:N: who is this? (open-set threshold for the gallery size)", body=bodies.Identify,
           responses={200: (models.Identification, models.IdentifyDecision)},
           errors=[NoFace, TooManyFaces, StoreUnavailable],
           description="Keys without `admin` get the match only, when it clears the threshold "
                       "(`IdentifyDecision`); admin keys also the scores, the threshold and the ranked candidates.")
@require("identify")
def identify() -> Response:
    recognizer = get_recognizer()
    body = bodies.parse(bodies.Identify, inputs.fields(), max_top_k=recognizer.policy.max_top_k)
    (image,) = inputs.images(at_most=1)
    result = recognizer.identify(image, top_k=body.top_k or recognizer.policy.default_top_k,
                                 all_faces=body.all_faces, threshold=body.threshold,
                                 max_faces=get_settings().limits.max_faces_per_request)
    return jsonify(schemas.identification(result, reveal=reveals_scores()))


@bp.post("/compare")
@operation("Two images: similarity and decision; nothing stored", body=bodies.Compare,
           responses={200: (models.Comparison, models.CompareDecision)}, errors=[NoFace],
           description="Keys without `admin` get the decision only (`CompareDecision`), as on verify.")
@require("verify")
def compare() -> Response:
    body = bodies.parse(bodies.Compare, inputs.fields())
    images = inputs.images(at_most=2)
    if len(images) != 2:
        raise ValidationError("compare needs exactly two images", field="image",
                              details={"got": len(images)})
    verdict = get_recognizer().compare(images[0], images[1], threshold=body.threshold)
    return jsonify(schemas.comparison(verdict, reveal=reveals_scores()))
