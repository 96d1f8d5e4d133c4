"""The checks every request field goes through, as pydantic validators for the shapes of ``bodies``: each
error names its field, text and identifiers are put in their one canonical form (``core.text``) before the
limiter, a lookup or the store sees them, and a form field (always a string) and a JSON value are held to the
same rules."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from pydantic import BeforeValidator, ValidationInfo

from ..core.recognizer import PERSON_ID
from ..core.text import canonical, check_json_strings
from ..errors import ValidationError

MAX_JSON_DEPTH = 16
# What a number looks like in a form field or a query (Python's int() and float() also take "1_000", " 5",
# "infinity" and digits of other scripts, none of which the API description calls a number).
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
Check = Callable[[Any, ValidationInfo], Any]


def _name(info: ValidationInfo) -> str:
    return info.field_name or "body"


def _absent(value: Any) -> bool:
    """An empty form field is a field left out (what a browser form sends for an empty input)."""
    return value is None or value == ""


def _text(value: Any, name: str, *, max_length: int, searched: bool, required: bool) -> str | None:
    if _absent(value):
        if required:
            raise ValidationError(f"'{name}' is required", field=name)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"'{name}' must be a string", field=name)
    return canonical(value, name, max_length=max_length, searched=searched)


def text(*, max_length: int = 200, searched: bool = False, required: bool = False) -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> str | None:
        return _text(value, _name(info), max_length=max_length, searched=searched, required=required)
    return BeforeValidator(check)


def person_id(*, required: bool = False) -> BeforeValidator:
    """A person id as every use of it sees it (the per-person limiter, the lookup, the audit trail)."""
    def check(value: Any, info: ValidationInfo) -> str | None:
        found = _text(value, _name(info), max_length=128, searched=False, required=required)
        if found is not None and not PERSON_ID.match(found):
            raise ValidationError("'person_id' must be 1-128 characters: letters, digits and . _ : @ -",
                                  field="person_id")
        return found
    return BeforeValidator(check)


def _scalar(value: Any, name: str, convert: Callable[[Any], Any], what: str, written: re.Pattern[str]) -> Any:
    """``value`` converted, None when absent; booleans are not numbers here."""
    if _absent(value):
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str) and not written.fullmatch(value):
            raise ValueError
        return convert(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int() of 1e999, which JSON parses to inf
        raise ValidationError(f"'{name}' must be {what}", field=name) from None


def choice(options: tuple[str, ...]) -> BeforeValidator:
    """One of ``options``, written exactly."""
    def check(value: Any, info: ValidationInfo) -> str:
        name = _name(info)
        if _absent(value):
            raise ValidationError(f"'{name}' is required", field=name)
        if value not in options:
            raise ValidationError(f"'{name}' must be one of {', '.join(options)}", field=name)
        return str(value)
    return BeforeValidator(check)


def integer(low: int, high: int | str) -> BeforeValidator:
    """An integer within ``low``..``high``; ``high`` may name a limit the request is parsed with (a
    setting, such as ``max_top_k``)."""
    def check(value: Any, info: ValidationInfo) -> int | None:
        name = _name(info)
        if isinstance(value, float) and not value.is_integer():  # 5.5 is not 5
            raise ValidationError(f"'{name}' must be an integer", field=name)
        number = _scalar(value, name, int, "an integer", _INTEGER)
        top = (info.context or {})[high] if isinstance(high, str) else high
        if number is not None and not low <= number <= top:
            raise ValidationError(f"'{name}' must be within {low}..{top}", field=name)
        return number
    return BeforeValidator(check)


def number() -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> float | None:
        name = _name(info)
        found = _scalar(value, name, float, "a number", _NUMBER)
        if found is not None and not math.isfinite(found):
            raise ValidationError(f"'{name}' must be a finite number", field=name)
        return found
    return BeforeValidator(check)


def boolean() -> BeforeValidator:
    def check(value: Any, info: ValidationInfo) -> bool:
        if _absent(value) or isinstance(value, bool):
            return value is True
        if isinstance(value, str) and value.lower() in ("true", "1", "yes"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no"):
            return False
        raise ValidationError(f"'{_name(info)}' must be true or false", field=_name(info))
    return BeforeValidator(check)


def metadata() -> BeforeValidator:
    """A JSON object (multipart sends it as a JSON string) of at most ``max_metadata_bytes``."""
    def check(value: Any, info: ValidationInfo) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = strict_json(value, "metadata") if value.strip() else {}
        if not isinstance(value, dict):
            raise ValidationError("'metadata' must be a JSON object", field="metadata")
        check_json_strings(value, "metadata")
        size, most = len(json.dumps(value).encode()), (info.context or {})["max_metadata_bytes"]
        if size > most:
            raise ValidationError(f"'metadata' is {size} bytes; at most {most} allowed", field="metadata",
                                  details={"max_bytes": most})
        return value
    return BeforeValidator(check)


def strings() -> BeforeValidator:
    """A list of strings (what they may be is the core's to say, with its details)."""
    def check(value: Any, info: ValidationInfo) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise ValidationError(f"'{_name(info)}' must be a list of strings", field=_name(info))
        return value
    return BeforeValidator(check)


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
