"""Validation of the non-image request fields, each error naming its field. Text and identifiers are put in
their one canonical form here (``core.text``), before the limiter, a lookup or the store sees them."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ..core.recognizer import PERSON_ID
from ..core.text import canonical, check_json_strings
from ..errors import ValidationError

T = TypeVar("T")


def text(values: Mapping[str, Any], name: str, *, required: bool = False, max_length: int = 200,
         searched: bool = False) -> str | None:
    """The field in its canonical form (``core.text.canonical``; ``searched``: its search key is bounded
    too), None when absent."""
    value = values.get(name)
    if value is None or value == "":
        if required:
            raise ValidationError(f"'{name}' is required", field=name)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"'{name}' must be a string", field=name)
    return canonical(value, name, max_length=max_length, searched=searched)


def required_text(values: Mapping[str, Any], name: str, *, max_length: int = 200,
                  searched: bool = False) -> str:
    value = text(values, name, required=True, max_length=max_length, searched=searched)
    if value is None:  # text() raises for a missing required field; this keeps the type honest
        raise ValidationError(f"'{name}' is required", field=name)
    return value


def person_id(values: Mapping[str, Any]) -> str | None:
    """A person id as every use of it sees it (the per-person limiter, the lookup, the audit trail)."""
    value = text(values, "person_id", max_length=128)
    if value is not None and not PERSON_ID.match(value):
        raise ValidationError("'person_id' must be 1-128 characters: letters, digits and . _ : @ -",
                              field="person_id")
    return value


def required_person_id(values: Mapping[str, Any]) -> str:
    value = person_id(values)
    if value is None:
        raise ValidationError("'person_id' is required", field="person_id")
    return value


MAX_JSON_DEPTH = 16


def strict_json(text: str | bytes, field: str) -> Any:
    """JSON as RFC 8259 has it: NaN and Infinity are refused (they are not JSON, and a stored NaN breaks
    every client that reads it back), and so is nesting deeper than MAX_JSON_DEPTH (Python's parser would
    otherwise recurse until it fails)."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON value")
    try:
        value = json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValidationError(f"'{field}' is nested too deeply", field=field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"'{field}' is not valid JSON: {exc}", field=field) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValidationError(f"'{field}' is nested deeper than {MAX_JSON_DEPTH} levels", field=field,
                              details={"max_depth": MAX_JSON_DEPTH})
    return value


def _depth(value: Any) -> int:
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            level.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def known_only(values: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuses parameters the endpoint does not take: a misspelt one (`limt=5`) would be a silent default."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValidationError(f"unknown parameter(s): {', '.join(unknown)}", field=unknown[0])


def metadata(values: Mapping[str, Any], *, max_bytes: int) -> dict[str, Any] | None:
    value = values.get("metadata")
    if value is None:
        return None
    if isinstance(value, str):  # multipart sends it as a JSON string
        value = strict_json(value, "metadata") if value.strip() else {}
    if not isinstance(value, dict):
        raise ValidationError("'metadata' must be a JSON object", field="metadata")
    check_json_strings(value, "metadata")
    size = len(json.dumps(value).encode())
    if size > max_bytes:
        raise ValidationError(f"'metadata' is {size} bytes; at most {max_bytes} allowed", field="metadata",
                              details={"max_bytes": max_bytes})
    return value


# What a number looks like in a form field or a query (Python's int() and float() also take "1_000", " 5",
# "infinity" and digits of other scripts, none of which the API description calls a number).
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


def _scalar(values: Mapping[str, Any], name: str, convert: Callable[[Any], T], what: str,
            written: re.Pattern[str]) -> T | None:
    """``values[name]`` converted, None when absent; booleans are not numbers here."""
    value = values.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str) and not written.fullmatch(value):
            raise ValueError
        return convert(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int() of 1e999, which JSON parses to inf
        raise ValidationError(f"'{name}' must be {what}", field=name) from None


def integer(values: Mapping[str, Any], name: str, *, default: int, low: int, high: int) -> int:
    if isinstance(values.get(name), float) and not values[name].is_integer():  # 5.5 is not 5
        raise ValidationError(f"'{name}' must be an integer", field=name)
    number = _scalar(values, name, int, "an integer", _INTEGER)
    if number is None:
        return default
    if not low <= number <= high:
        raise ValidationError(f"'{name}' must be within {low}..{high}", field=name)
    return number


def number(values: Mapping[str, Any], name: str) -> float | None:
    value = _scalar(values, name, float, "a number", _NUMBER)
    if value is not None and not math.isfinite(value):
        raise ValidationError(f"'{name}' must be a finite number", field=name)
    return value


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
