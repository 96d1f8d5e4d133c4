"""Every JSON shape of the API as a pydantic model: ``schemas`` builds each response body through these
models (so a body that does not fit its shape fails loudly, in the tests, rather than in a client), and
``openapi`` writes the same models into ``/openapi.json``. One definition, so the answers and their
description cannot drift apart.

Response models forbid extra fields: the description says exactly what an answer holds. A field that is
sometimes absent (``crop_url``) is optional; a field that is present but may be null is required and
nullable. The least-revealing answers a key without ``admin`` gets are models of their own (``VerifyDecision``,
``IdentifyDecision``), described as ``oneOf`` with the full answer an admin key gets.

Request models only describe the bodies: ``inputs`` and ``fields`` parse them (strict JSON, multipart or
JSON, each error naming its field), so the constraints written here are the ones those functions enforce.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import JsonDict, SkipJsonSchema

from ..core.keys import SCOPES
from ..core.recognizer import PERSON_ID
from ..errors import FaceIdError, client_errors

DATE_TIME: JsonDict = {"format": "date-time"}


class Reply(BaseModel):
    """A response body: exactly these fields."""
    model_config = ConfigDict(extra="forbid")


# --- shared pieces -----------------------------------------------------------------------------------------

class Box(Reply):
    """A face's box in pixels of the upright image (0.1 px)."""
    x: float
    y: float
    width: float
    height: float


Point = tuple[float, float]


class Landmarks(Reply):
    """MTCNN's five landmarks, [x, y] in pixels (0.1 px)."""
    left_eye: Point
    right_eye: Point
    nose: Point
    mouth_left: Point
    mouth_right: Point


class DetectedFace(Reply):
    box: Box
    landmarks: Landmarks
    probability: float = Field(ge=0, le=1)


class ImageSize(Reply):
    width: int
    height: int


class Detection(Reply):
    """Every face, largest first."""
    image: ImageSize
    faces: list[DetectedFace]


class FailedCheck(Reply):
    check: Literal["probability", "face_size", "blur", "pose_yaw", "pose_pitch", "pose_roll"]
    value: float
    limit: float | list[float] = Field(description="a bound, or [low, high] for pose_pitch")


class Problem(Reply):
    """The error registering the image would answer."""
    code: str
    message: str
    details: dict[str, Any]


class EnrollmentCheck(Reply):
    """One image as registration would judge it; nothing is stored or compared with anyone."""
    image: ImageSize
    faces: list[DetectedFace]
    face_index: int | None = Field(description="the face registration would take (an index into `faces`)")
    quality: dict[str, float] | None = Field(description="that face's measures")
    failed: list[FailedCheck] = Field(description="every quality check that face fails")
    enrollable: bool
    problem: Problem | None = Field(description="null when registering this image would pass")


class Thresholds(Reply):
    verify: float
    identify: float = Field(description="at the current gallery size")


class StoreKinds(Reply):
    records: str = Field(description="`sqlite` or the database URL's scheme, e.g. `postgresql`")
    index: Literal["embedded", "server"]


class Status(Reply):
    """What an operator wants on one line."""
    version: str
    model: str
    ready: bool
    gallery_size: int = Field(ge=0)
    thresholds: Thresholds
    store: StoreKinds


class Person(Reply):
    id: str
    name: str
    metadata: dict[str, Any]
    face_count: int = Field(ge=0)
    created_at: str = Field(json_schema_extra=DATE_TIME)
    updated_at: str = Field(json_schema_extra=DATE_TIME)


class StoredFace(Reply):
    id: str
    box: Box
    quality: dict[str, float] = Field(description="what the enrollment gate measured: probability, size, blur, "
                                                  "yaw, pitch, roll")
    created_at: str = Field(json_schema_extra=DATE_TIME)
    crop_url: str | SkipJsonSchema[None] = Field(
        default=None, description="the stored aligned crop (JPEG); absent when no crop is stored")


class PersonWithFaces(Reply):
    person: Person
    faces: list[StoredFace]


class PersonReply(Reply):
    person: Person


class PersonsPage(Reply):
    items: list[Person]
    total: int = Field(ge=0, description="persons matching the query")
    limit: int
    offset: int
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")


class DeletedPerson(Reply):
    person_id: str
    faces: int = Field(ge=0, description="faces erased with the person")


class PersonDeleted(Reply):
    deleted: DeletedPerson


class DeletedFace(Reply):
    person_id: str
    face_id: str


class FaceDeleted(Reply):
    deleted: DeletedFace
    person: Person


# --- matching ----------------------------------------------------------------------------------------------

class Verification(Reply):
    """Verify, in full (admin keys, or ``least_revealing = false``)."""
    match: bool
    similarity: float
    threshold: float
    person_id: str
    box: Box


class VerifyDecision(Reply):
    """Verify for a key without `admin`: the decision, no score."""
    match: bool
    person_id: str
    box: Box


class Comparison(Reply):
    match: bool
    similarity: float
    threshold: float
    boxes: list[Box] = Field(min_length=2, max_length=2)


class Candidate(Reply):
    person_id: str
    name: str
    similarity: float


class IdentifiedFace(Reply):
    box: Box
    match: Candidate | None = Field(description="the best candidate when it clears the threshold, else null")
    candidates: list[Candidate] = Field(description="the top_k nearest persons, best first")


class Identification(Reply):
    """Identify, in full (admin keys, or ``least_revealing = false``)."""
    threshold: float = Field(description="the open-set threshold used for this gallery size")
    gallery_size: int = Field(ge=0)
    per_comparison_far: float
    target_open_set_far: float
    faces: list[IdentifiedFace]


class MatchRef(Reply):
    person_id: str
    name: str


class DecidedFace(Reply):
    box: Box
    match: MatchRef | None = Field(description="who this is when they clear the threshold, else null")


class IdentifyDecision(Reply):
    """Identify for a key without `admin`: who matched, nothing about who else is enrolled."""
    faces: list[DecidedFace]


# --- health ------------------------------------------------------------------------------------------------

class Alive(Reply):
    status: Literal["ok"]


class ReadyChecks(Reply):
    model: bool
    store: bool


class Ready(Reply):
    status: Literal["ready", "not_ready"]
    checks: ReadyChecks
    model: str = Field(description="the model id served")


# --- API keys and the audit trail (admin) -----------------------------------------------------------------

KeyScope = Literal[SCOPES]  # type: ignore[valid-type]


class ApiKey(Reply):
    """A key as admins see it: never its secret or the secret's hash."""
    id: str
    name: str
    scopes: list[KeyScope]
    source: Literal["database", "config"] = Field(description="`config`: from admin_keys/client_keys; change "
                                                              "it there")
    created_at: str | None = Field(json_schema_extra=DATE_TIME)
    expires_at: str | None = Field(json_schema_extra=DATE_TIME)
    last_used_at: str | None = Field(description="to the minute", json_schema_extra=DATE_TIME)
    revoked_at: str | None = Field(description="when it stops (stopped) working", json_schema_extra=DATE_TIME)
    replaces: str | None = Field(description="the id of the key this one rotated")


class KeyList(Reply):
    items: list[ApiKey]


class KeyReply(Reply):
    key: ApiKey


class KeyCreated(Reply):
    """The new key; its secret is in this answer and nowhere else, ever."""
    key: ApiKey
    secret: str


class KeyRotated(Reply):
    """The new key (its secret shown once) and the one it replaces, revoked now or after the grace."""
    key: ApiKey
    secret: str
    replaced: ApiKey


class AuditEvent(Reply):
    id: int
    at: str = Field(json_schema_extra=DATE_TIME)
    op: str
    actor: str | None = Field(description="the key's id, never the key")
    client_ip: str | None
    request_id: str | None
    person_id: str | None = Field(description="on whom")
    decision: str | None
    similarity: float | None
    details: str = Field(description="the rest of the event as JSON text (at most 2,000 characters)")


class AuditPage(Reply):
    """Newest first."""
    items: list[AuditEvent]
    next_cursor: str | None = Field(description="pass as `cursor` for older events; null on the last page")


# --- errors ------------------------------------------------------------------------------------------------

# The codes a client can meet, and internal_error (a bug of ours: 500, never documented as an answer).
ERROR_CODES = (*(c.code for c in client_errors()), FaceIdError.code)
ErrorCode = Literal[ERROR_CODES]  # type: ignore[valid-type]


class ErrorBody(Reply):
    code: ErrorCode = Field(description="stable, machine-readable; never renamed")
    message: str = Field(description="for people; may change")
    details: dict[str, Any] = Field(description="what the code needs to be acted on, e.g. `field`")
    request_id: str | None = Field(description="also in the X-Request-ID header; quote it in a report")


class Error(Reply):
    """Every error, whatever the status."""
    error: ErrorBody


# --- request bodies (descriptions only: ``inputs``/``fields`` parse) ---------------------------------------
# An optional field is ``X | Absent = None``: it may be left out, and null is not described as a value.

Absent = SkipJsonSchema[None]


def _no_null_defaults(schema: JsonDict) -> None:
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for prop in properties.values():
            if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
                del prop["default"]


def _image_required(schema: JsonDict) -> None:
    _no_null_defaults(schema)
    schema["anyOf"] = [{"required": ["image"]}, {"required": ["images"]}]


def _one_field_at_least(schema: JsonDict) -> None:
    _no_null_defaults(schema)
    schema["minProperties"] = 1


class Body(BaseModel):
    """A request body's fields; fields not listed are ignored by the service."""
    model_config = ConfigDict(json_schema_extra=_no_null_defaults)


BASE64: JsonDict = {"contentEncoding": "base64"}
FILE: JsonDict = {"contentMediaType": "application/octet-stream"}
IMAGE_B64 = "an image, base64 (a data: URL is accepted)"
IMAGE_FILE = "an image file (JPEG, PNG, WEBP, HEIC, BMP, GIF, TIFF)"
THRESHOLD = "within [0, 1], stricter than the calibrated threshold, never looser (a looser one is a validation_error)"


# Constrained values (constraints inside the union of an optional field must sit on the type).
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")]
NewPersonId = Annotated[str, StringConstraints(pattern=PERSON_ID.pattern)]
Threshold = Annotated[float, Field(ge=0, le=1)]
TopK = Annotated[int, Field(ge=1, le=50)]
Base64Image = Annotated[str, Field(json_schema_extra=BASE64)]
ImageFile = Annotated[bytes, Field(json_schema_extra=FILE)]


class OneImageJson(Body):
    image: Base64Image = Field(description=IMAGE_B64)


class OneImageForm(Body):
    image: ImageFile = Field(description=IMAGE_FILE)


class ImagesJson(Body):
    """``image`` and/or ``images``: at least one image in all."""
    model_config = ConfigDict(json_schema_extra=_image_required)
    image: Base64Image | Absent = Field(None, description=IMAGE_B64)
    images: list[Base64Image] | Absent = Field(None, description="several images, base64 each")


class ImagesForm(Body):
    image: list[ImageFile] = Field(min_length=1, description=IMAGE_FILE + "; repeat the field for several")


class RegisterFields(Body):
    name: Name = Field(description="the person's name")
    person_id: NewPersonId | Absent = Field(None, description="chosen id (default: generated)")


class RegisterJson(ImagesJson, RegisterFields):
    metadata: dict[str, Any] | Absent = Field(None, description="any JSON object (a few kB at most)")


class RegisterForm(ImagesForm, RegisterFields):
    metadata: Annotated[str, Field(json_schema_extra={"contentMediaType": "application/json"})] | Absent = Field(
        None, description="a JSON object, as a string")


class AddFacesFields(Body):
    allow_mismatch: bool = Field(False, description="admin keys only: add a face that does not match the person")


class AddFacesJson(ImagesJson, AddFacesFields):
    pass


class AddFacesForm(ImagesForm, AddFacesFields):
    pass


class VerifyFields(Body):
    person_id: str = Field(min_length=1, max_length=128, pattern=r"\S", description="who the face should be")
    threshold: Threshold | Absent = Field(None, description=THRESHOLD)


class VerifyJson(OneImageJson, VerifyFields):
    pass


class VerifyForm(OneImageForm, VerifyFields):
    pass


class IdentifyFields(Body):
    top_k: TopK | Absent = Field(None, description="candidates per face (default 5, at most max_top_k)")
    all_faces: bool = Field(False, description="every face in the image, not only the largest")
    threshold: Threshold | Absent = Field(None, description=THRESHOLD)


class IdentifyJson(OneImageJson, IdentifyFields):
    pass


class IdentifyForm(OneImageForm, IdentifyFields):
    pass


class CompareFields(Body):
    threshold: Threshold | Absent = Field(None, description=THRESHOLD)


class CompareJson(CompareFields):
    """Two images: ``images`` with two, or ``image`` and one in ``images``."""
    model_config = ConfigDict(json_schema_extra=_image_required)
    image: Base64Image | Absent = Field(None, description=IMAGE_B64)
    images: Annotated[list[Base64Image], Field(max_length=2)] | Absent = Field(None, description="base64 each")


class CompareForm(CompareFields):
    image: list[ImageFile] = Field(min_length=2, max_length=2, description="two image files")


class PersonPatch(Body):
    """Only these two fields; at least one."""
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_field_at_least)
    name: Name | Absent = Field(None, description="the person's name")
    metadata: dict[str, Any] | Absent = Field(None, description="replaces the stored metadata")


class PersonsQuery(Body):
    limit: int = Field(20, ge=1, le=100, description="persons per page")
    cursor: str | Absent = Field(None, description="`next_cursor` of the previous page")
    offset: int = Field(0, ge=0, le=10**6, description="persons to skip (small jumps; prefer the cursor)")
    q: Annotated[str, StringConstraints(max_length=200)] | Absent = Field(None, description="a substring of the name")


class KeysQuery(Body):
    include_inactive: bool = Field(False, description="also revoked and expired keys")


class KeyCreate(Body):
    name: Name = Field(description="what the key is for, e.g. `kiosk 3`")
    scopes: list[KeyScope] = Field(min_length=1, description="`admin` grants all")
    expires_in_s: Annotated[int, Field(ge=1, le=10 * 365 * 86400)] | Absent = Field(
        None, description="lifetime in seconds (default: none)")


GRACE = "seconds the old key keeps working (at most 30 days; default 0: at once)"


class GraceQuery(Body):
    grace_s: Annotated[int, Field(ge=1, le=30 * 86400)] | Absent = Field(None, description=GRACE)


class RotateJson(Body):
    grace_s: Annotated[int, Field(ge=1, le=30 * 86400)] | Absent = Field(None, description=GRACE)


class AuditQuery(Body):
    limit: int = Field(50, ge=1, le=200, description="events per page")
    cursor: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] | Absent = Field(
        None, description="`next_cursor` of the previous page")
    since: Annotated[str, StringConstraints(max_length=32)] | Absent = Field(
        None, description="events at or after this ISO 8601 time")
    person_id: Annotated[str, StringConstraints(max_length=128)] | Absent = Field(None, description="on whom")
    actor: Annotated[str, StringConstraints(max_length=64)] | Absent = Field(None, description="a key's id")
    op: Annotated[str, StringConstraints(max_length=64)] | Absent = Field(
        None, description="an operation, e.g. `verify` or `matching.verify` (refusals)")
