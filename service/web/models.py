"""Every JSON shape of the API as a pydantic model: each response body is one of these models, built from
the core's records by attribute (``Reply.of``), so a body that does not fit its shape fails loudly, in the
tests, rather than in a client; ``openapi`` writes the same models into ``/openapi.json``. One definition, so
the answers and their description cannot drift apart. Scores are rounded to 4 decimals and pixels to 0.1 here
(``Score``, ``Box``) and nowhere else.

Response models forbid extra fields: the description says exactly what an answer holds. A field that is
sometimes absent (``crop_url``) is optional; a field that is present but may be null is required and
nullable. The least-revealing answers a key without ``admin`` gets are models of their own (``VerifyDecision``,
``IdentifyDecision``), described as ``oneOf`` with the full answer an admin key gets.

The request bodies are described in ``bodies``.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.json_schema import JsonDict, SkipJsonSchema

from ..core.keys import SCOPES
from ..core.records import LANDMARK_NAMES, Face
from ..errors import FaceIdError, client_errors

DATE_TIME: JsonDict = {"format": "date-time"}
Score = Annotated[float, AfterValidator(lambda x: round(float(x), 4))]


class Reply(BaseModel):
    """A response body: exactly these fields, read from the keyword arguments or, for a nested model, from the
    attributes of the core's record given in its place (extra attributes are not read)."""
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    @classmethod
    def of(cls, **fields: Any) -> dict[str, Any]:
        """The JSON body of these fields (core records welcome, by attribute; an optional field left out stays
        out). Checked when built, so a field the model lacks or a wrong type fails in the tests."""
        return cls.model_validate(fields).model_dump(mode="json", exclude_unset=True)


# --- shared pieces -----------------------------------------------------------------------------------------

class Box(Reply):
    """A face's box in pixels of the upright image (0.1 px)."""
    x: float
    y: float
    width: float
    height: float

    @model_validator(mode="before")
    @classmethod
    def _of_face(cls, value: Any) -> Any:
        return value.box_dict() if isinstance(value, Face) else value


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
    probability: Score = Field(ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _of_face(cls, value: Any) -> Any:
        if not isinstance(value, Face):
            return value
        return {"box": value, "probability": value.probability, "landmarks": {
            name: (round(float(x), 1), round(float(y), 1)) for name, (x, y) in zip(LANDMARK_NAMES, value.landmarks)}}


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
    verify: Score
    identify: Score = Field(description="at the current gallery size: the lowest similarity identify can accept "
                                        "(more when the second candidate is close or the best candidate's "
                                        "template holds several photos, see `identify_rule`)")


class OpenSetRule(Reply):
    """Identify's decision rule at the current gallery size and what it promises (bench/open_set.py)."""
    name: str = Field(description="`margin_<beta>_by_photos`, `plain_by_photos`, `margin_<beta>` or `plain` "
                                  "(one table for every template, from an older `open_set.json`), or "
                                  "`per_comparison_far` (no open-set calibration)")
    beta: float = Field(description="the share of the second candidate's similarity subtracted from the best's")
    score_threshold: Score = Field(description="what `best - beta * max(second, m0)` must reach when the best "
                                               "candidate's template holds one photo (the loosest: a template "
                                               "of several photos is nearer everyone, strangers included)")
    score_threshold_by_photos: dict[str, Score] = Field(
        description="what it must reach by the number of photos in the best candidate's template (keys `1`, "
                    "`2`, ...; a template of more photos than the largest uses the largest's)")
    target_fpir: float = Field(description="share of searches by people not enrolled that may return anyone")
    expected_fnir: float | None = Field(description="share of enrolled people's searches expected to miss "
                                                    "(real single-photo enrolment, modelled for this gallery size)")


class StoreKinds(Reply):
    records: str = Field(description="`sqlite` or the database URL's scheme, e.g. `postgresql`")
    index: Literal["embedded", "server"]
    index_generation: int = Field(ge=0, description="which generation of the index searches run on "
                                                    "(`enroll rebuild-index` makes the next)")
    index_lag: int = Field(ge=0, description="committed changes the index has not applied yet (search "
                                             "covers them from the records; more than a few means the index "
                                             "is down or full)")
    index_centred: bool = Field(description="the index ranks in the model's centred space")


class Status(Reply):
    """What an operator wants on one line."""
    version: str
    model: str
    ready: bool
    gallery_size: int = Field(ge=0)
    thresholds: Thresholds
    identify_rule: OpenSetRule
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
    source_sha256: str | SkipJsonSchema[None] = Field(
        default=None, description="sha256 (hex) of the uploaded photo this face came from; absent for faces "
                                  "enrolled before it was kept. `enroll import` skips photos a person has")


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
    similarity: Score
    threshold: Score
    person_id: str
    box: Box


class VerifyDecision(Reply):
    """Verify for a key without `admin`: the decision, no score."""
    match: bool
    person_id: str
    box: Box


class Comparison(Reply):
    """Compare, in full (admin keys, or ``least_revealing = false``)."""
    match: bool
    similarity: Score
    threshold: Score
    boxes: list[Box] = Field(min_length=2, max_length=2)


class CompareDecision(Reply):
    """Compare for a key without `admin`: the decision, no score."""
    match: bool
    boxes: list[Box] = Field(min_length=2, max_length=2)


class Candidate(Reply):
    person_id: str
    name: str
    similarity: Score


class IdentifiedFace(Reply):
    box: Box
    match: Candidate | None = Field(description="the best candidate when it clears the threshold, else null")
    candidates: list[Candidate] = Field(description="the top_k nearest persons, best first")
    threshold: Score = Field(description="the similarity the best candidate needed (the rule weighs how close "
                                         "the second candidate is)")


class Identification(Reply):
    """Identify, in full (admin keys, or ``least_revealing = false``)."""
    threshold: Score = Field(description="the lowest similarity the rule can accept at this gallery size; each "
                                         "face's own `threshold` says what its best candidate needed")
    gallery_size: int = Field(ge=0)
    per_comparison_far: float
    target_open_set_far: float
    rule: OpenSetRule
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
    created_at: Annotated[str | None, BeforeValidator(lambda v: v or None)] = Field(  # a config key: ""
        json_schema_extra=DATE_TIME)
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


class ImportRun(Reply):
    """An ``enroll import`` through the API, as its importer last reported it (``POST /v1/imports/{run_id}``)."""
    run_id: str
    actor: str | None = Field(description="the id of the key the importer uses")
    source: str | None = Field(description="what is imported (the folder or CSV name)")
    state: str = Field(description="running, finished, interrupted or failed, as last reported")
    started_at: str | None = Field(description="when the run started (the importer's clock)")
    updated_at: str = Field(json_schema_extra=DATE_TIME, description="when the service received the last report")
    quiet_s: float = Field(ge=0, description="seconds since that report: a running import reports every few "
                                             "seconds, so a long silence means it was stopped without a word")
    total: int = Field(ge=0)
    done: int = Field(ge=0)
    enrolled: int = Field(ge=0)
    added: int = Field(ge=0)
    already_there: int = Field(ge=0)
    rejected: int = Field(ge=0)
    not_enrolled: int = Field(ge=0)
    photos_per_s: float | None = Field(ge=0)
    eta_s: float | None = Field(ge=0, description="seconds left at the reported rate (running imports only)")


class ImportRuns(Reply):
    """The runs reported recently, the most recently reported first."""
    items: list[ImportRun]


class ImportReceived(Reply):
    run_id: str
    recorded: bool = Field(description="false when the audit table is off: the report is then in the audit "
                                       "file only, and the console cannot show it")


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
