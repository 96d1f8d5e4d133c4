"""Validation of the non-image request fields, each error naming its field."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ValidationError

T = TypeVar("T")


def text(values: Mapping[str, Any], name: str, *, required: bool = False, max_length: int = 200) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"'{name}' is required", field=name)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"'{name}' must be a string", field=name)
    value = value.strip()
    if not value or len(value) > max_length:
        raise ValidationError(f"'{name}' must have 1-{max_length} characters", field=name)
    return value


def required_text(values: Mapping[str, Any], name: str, *, max_length: int = 200) -> str:
    value = text(values, name, required=True, max_length=max_length)
    if value is None:  # text() raises for a missing required field; this keeps the type honest
        raise ValidationError(f"'{name}' is required", field=name)
    return value


def metadata(values: Mapping[str, Any], *, max_bytes: int) -> dict[str, Any] | None:
    value = values.get("metadata")
    if value is None:
        return None
    if isinstance(value, str):  # multipart sends it as a JSON string
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise ValidationError(f"'metadata' is not valid JSON: {exc}", field="metadata") from exc
    if not isinstance(value, dict):
        raise ValidationError("'metadata' must be a JSON object", field="metadata")
    size = len(json.dumps(value).encode())
    if size > max_bytes:
        raise ValidationError(f"'metadata' is {size} bytes; at most {max_bytes} allowed", field="metadata",
                              details={"max_bytes": max_bytes})
    return value


def _scalar(values: Mapping[str, Any], name: str, convert: Callable[[Any], T], what: str) -> T | None:
    """``values[name]`` converted, None when absent; booleans are not numbers here."""
    value = values.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return convert(value)
    except (TypeError, ValueError):
        raise ValidationError(f"'{name}' must be {what}", field=name) from None


def integer(values: Mapping[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    number = _scalar(values, name, int, "an integer")
    if number is None:
        return default
    if not low <= number <= high:
        raise ValidationError(f"'{name}' must be within {low}..{high}", field=name)
    return number


def number(values: Mapping[str, Any], name: str) -> float | None:
    return _scalar(values, name, float, "a number")


def boolean(values: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    value = values.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "0", "no"):
        return False
    raise ValidationError(f"'{name}' must be true or false", field=name)
