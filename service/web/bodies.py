"""Every request's fields, declared once: the same pydantic model validates the request (``parse``) and, with
the images the endpoint takes, is written into ``/openapi.json`` as the JSON and the multipart body
(``openapi``). Field checks are the validators of ``fields``; a constraint the description states (``ge``,
``le``, a pattern) is the one the validator enforces. Response shapes are in ``models``."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, model_validator
from pydantic import ValidationError as PydanticError
from pydantic.json_schema import JsonDict, SkipJsonSchema

from ..core.keys import MAX_LIFETIME_S, SCOPES
from ..core.recognizer import PERSON_ID
from ..errors import ValidationError
from . import fields

# An optional field is ``X | Absent = None``: it may be left out, and null is not described as a value.
Absent = SkipJsonSchema[None]
Images = Literal[1, 2, "many"]
# A maximum that is a setting: ``openapi`` writes the app's value in its place.
SETTING_MAXIMUM = "x-maximum-setting"
THRESHOLD = "within [0, 1], stricter than the calibrated threshold, never looser (a looser one is a validation_error)"
MAX_GRACE_S = 30 * 86400


def _no_null_defaults(schema: JsonDict) -> None:
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for prop in properties.values():
            if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
                del prop["default"]


def _one_field_at_least(schema: JsonDict) -> None:
    _no_null_defaults(schema)
    schema["minProperties"] = 1


class Fields(BaseModel):
    model_config = ConfigDict(json_schema_extra=_no_null_defaults)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, values: Any) -> Any:
        """An empty form field or query parameter is one left out (what a browser form sends for an empty
        input): its default applies."""
        return {k: v for k, v in values.items() if v != ""} if isinstance(values, dict) else values


class Body(Fields):
    """A request body's fields; fields not listed are ignored by the service. ``IMAGES``: the images it
    carries besides (None: none; 1; 2: exactly two; "many": one or more)."""
    IMAGES: ClassVar[Images | None] = None


class Query(Fields):
    """Query parameters: an unknown one is refused (a misspelt ``limt=5`` would be a silent default)."""
    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_null_defaults)


B = TypeVar("B", bound=Fields)


def parse(shape: type[B], values: Mapping[str, Any], **limits: int) -> B:
    """``values`` (form fields, a JSON object or query parameters) as ``shape``; ``limits`` are the settings
    its validators bound by (``max_top_k``, ``max_metadata_bytes``). The first problem is the one answered,
    naming its field."""
    try:
        return shape.model_validate(dict(values), context=limits)
    except PydanticError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else "body"
        if problem["type"] == "extra_forbidden":
            unknown = sorted(set(values) - set(shape.model_fields))
            what = "parameter(s)" if issubclass(shape, Query) else "field(s)"
            raise ValidationError(f"unknown {what}: {', '.join(unknown)}", field=unknown[0]) from None
        if problem["type"] == "missing":
            raise ValidationError(f"'{field}' is required", field=field) from None
        raise ValidationError(f"'{field}': {problem['msg']}", field=field) from None


# --- the fields, typed once ---------------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S"),
                 fields.text(searched=True, required=True)]
OptionalName = Annotated[Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"\S")] | Absent,
                         fields.text(searched=True)]
NewPersonId = Annotated[Annotated[str, StringConstraints(pattern=PERSON_ID.pattern)] | Absent, fields.person_id()]
Threshold = Annotated[Annotated[float, Field(ge=0, le=1)] | Absent, fields.number()]
Flag = Annotated[bool, fields.boolean()]
Metadata = Annotated[dict[str, Any] | Absent, fields.metadata()]


def _integer(low: int, high: int, limit: str | None = None) -> Any:
    return Annotated[int, Field(ge=low, le=high), fields.integer(low, limit or high)]


def _filter(max_length: int, *, searched: bool = False) -> Any:
    return Annotated[Annotated[str, StringConstraints(max_length=max_length)] | Absent,
                     fields.text(max_length=max_length, searched=searched)]


# --- request bodies (fields; the images are added by ``openapi`` and read by ``inputs``) ----------------------

class OneImage(Body):
    IMAGES = 1


class Register(Body):
    IMAGES = "many"
    name: Name = Field(description="the person's name")
    person_id: NewPersonId = Field(None, description="chosen id (default: generated)")
    metadata: Metadata = Field(None, description="any JSON object (a few kB at most)")


class AddFaces(Body):
    IMAGES = "many"
    allow_mismatch: Flag = Field(False, description="admin keys only: add a face that does not match the person")


class Verify(Body):
    IMAGES = 1
    person_id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"\S"),
                         fields.person_id(required=True)] = Field(description="who the face should be")
    threshold: Threshold = Field(None, description=THRESHOLD)


class Identify(Body):
    IMAGES = 1
    top_k: Annotated[Annotated[int, Field(ge=1)] | Absent, fields.integer(1, "max_top_k")] = Field(
        None, description="candidates per face (default 5, at most max_top_k)",
        json_schema_extra={SETTING_MAXIMUM: "max_top_k"})
    all_faces: Flag = Field(False, description="every face in the image, not only the largest")
    threshold: Threshold = Field(None, description=THRESHOLD)


class Compare(Body):
    IMAGES = 2
    threshold: Threshold = Field(None, description=THRESHOLD)


class PersonPatch(Body):
    """Only these two fields; at least one."""
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_field_at_least)
    name: OptionalName = Field(None, description="the person's name")
    metadata: Metadata = Field(None, description="replaces the stored metadata")


class KeyCreate(Body):
    name: Name = Field(description="what the key is for, e.g. `kiosk 3`")
    # Which scopes exist is the core's to check (its error lists the unknown ones and the allowed).
    scopes: Annotated[list[str], fields.strings(), WithJsonSchema(
        {"type": "array", "items": {"enum": list(SCOPES), "type": "string"}, "minItems": 1})] = Field(
        description="`admin` grants all")
    expires_in_s: Annotated[Annotated[int, Field(ge=1, le=MAX_LIFETIME_S)] | Absent,
                            fields.integer(1, MAX_LIFETIME_S)] = Field(
        None, description="lifetime in seconds (default: none)")


GRACE = "seconds the old key keeps working (at most 30 days; default 0: at once)"
Grace = Annotated[Annotated[int, Field(ge=1, le=MAX_GRACE_S)] | Absent, fields.integer(1, MAX_GRACE_S)]


class Rotate(Body):
    grace_s: Grace = Field(None, description=GRACE)


RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # an import run's id (``enroll import`` makes one per run)
IMPORT_STATES = ("running", "finished", "interrupted", "failed")


class ImportReport(Body):
    """What ``enroll import`` reports of its run (counts of photos), every few seconds and at its end."""
    source: _filter(200) = Field(None, description="what is imported (the folder or CSV name)")  # type: ignore[valid-type]
    state: Annotated[Literal["running", "finished", "interrupted", "failed"], fields.choice(IMPORT_STATES)] = Field(
        description="the run's state")
    started_at: _filter(32) = Field(None, description="when the run started (ISO 8601, the importer's clock)")  # type: ignore[valid-type]
    total: _integer(0, 10**9) = Field(description="photos in the run")  # type: ignore[valid-type]
    done: _integer(0, 10**9) = Field(description="photos with an outcome so far")  # type: ignore[valid-type]
    enrolled: _integer(0, 10**9) = Field(0, description="photos that registered their person")  # type: ignore[valid-type]
    added: _integer(0, 10**9) = Field(0, description="photos added to a known person")  # type: ignore[valid-type]
    already_there: _integer(0, 10**9) = Field(0, description="photos the person already had")  # type: ignore[valid-type]
    rejected: _integer(0, 10**9) = Field(0, description="photos refused")  # type: ignore[valid-type]
    not_enrolled: _integer(0, 10**9) = Field(0, description="photos of a person refused as a whole")  # type: ignore[valid-type]
    photos_per_s: Annotated[Annotated[float, Field(ge=0, le=10**6)] | Absent, fields.number()] = Field(
        None, description="photos with an outcome per second since the start")


# --- query parameters ---------------------------------------------------------------------------------------

class PersonsQuery(Query):
    limit: _integer(1, 100) = Field(20, description="persons per page")  # type: ignore[valid-type]
    cursor: str | Absent = Field(None, description="`next_cursor` of the previous page")
    offset: _integer(0, 10**6) = Field(0, description="persons to skip (small jumps; prefer the cursor)")  # type: ignore[valid-type]
    q: _filter(200, searched=True) = Field(None, description="a substring of the name")  # type: ignore[valid-type]


class KeysQuery(Query):
    include_inactive: Flag = Field(False, description="also revoked and expired keys")


class GraceQuery(Query):
    grace_s: Grace = Field(None, description=GRACE)


class ImportsQuery(Query):
    limit: _integer(1, 50) = Field(10, description="runs, the most recently reported first")  # type: ignore[valid-type]


class AuditQuery(Query):
    limit: _integer(1, 200) = Field(50, description="events per page")  # type: ignore[valid-type]
    cursor: Annotated[int | Absent, fields.integer(1, 2**62),
                      WithJsonSchema({"type": "string", "pattern": r"^[0-9]+$"})] = Field(
        None, description="`next_cursor` of the previous page")
    since: _filter(32) = Field(None, description="events at or after this ISO 8601 time")  # type: ignore[valid-type]
    person_id: _filter(128) = Field(None, description="on whom")  # type: ignore[valid-type]
    actor: _filter(64) = Field(None, description="a key's id")  # type: ignore[valid-type]
    op: _filter(64) = Field(None, description="an operation, e.g. `verify` or `matching.verify` (refusals)")  # type: ignore[valid-type]


