"""Validation of the non-image request fields, each error naming its field."""
from __future__ import annotations

import json
from typing import Any

from ..errors import ValidationError


def text(values: dict[str, Any], name: str, *, required: bool = False, max_length: int = 200) -> str | None:
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


def metadata(values: dict[str, Any], *, max_bytes: int) -> dict[str, Any] | None:
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


def integer(values: dict[str, Any], name: str, *, default: int | None, low: int, high: int) -> int | None:
    value = values.get(name)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"'{name}' must be an integer", field=name) from None
    if not low <= number <= high:
        raise ValidationError(f"'{name}' must be within {low}..{high}", field=name)
    return number


def number(values: dict[str, Any], name: str) -> float | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"'{name}' must be a number", field=name) from None


def boolean(values: dict[str, Any], name: str, *, default: bool = False) -> bool:
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
