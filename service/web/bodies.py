"""The request bodies of the API as pydantic models, for ``/openapi.json`` only: ``inputs`` and ``fields``
parse the bodies themselves (strict JSON, multipart or JSON, each error naming its field), so the constraints
written here are the ones those functions enforce (``models`` holds the response shapes)."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import JsonDict, SkipJsonSchema

from ..core.recognizer import PERSON_ID
from .models import KeyScope

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
