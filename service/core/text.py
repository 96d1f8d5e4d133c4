"""The one canonical form of every identifier and text field a client sends, applied before anything uses
it: the rate limiter, a lookup, storage or the audit trail. Two spellings of one id must be one id (a
space-padded ``person_id`` counted apart from the stored one sidestepped the per-person verify limit), and
nothing may reach a database that it cannot store (PostgreSQL refuses NUL in text; a lone surrogate cannot be
encoded at all).

In order, cheapest first: the length (a bound on the raw input, before any Unicode work, so an 8 MB id costs
one ``len``), then no control characters (NUL included) and no lone surrogates, then outer whitespace
stripped and NFC normalisation (a composed and a decomposed "é" are the same name and the same search), then
not empty once invisible characters are left out (a name of zero-width spaces names no one), then the length
again, and for text that is searched, the length of its lower-cased search key too ("İ" lower-cases to two
characters, so 200 of them made a 400-character key for a 200-character column).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError

# C0 and C1 controls (NUL, tabs and line breaks among them) and the surrogate range: a str holding one of the
# latter came from a lone "\ud800" escape in JSON, since a pair is decoded into one character.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Characters that draw nothing: format characters (zero-width space and joiners, bidi marks), separators,
# lone combining marks, and the Hangul and Braille blanks that render as empty space.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Cc", "Cs", "Co", "Cn"})
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
MAX_NAME = 200  # a person's or a key's name (the records' columns hold 200)
# Raw input may be longer than the limit only by what NFC can fold (a base and its combining marks).
_RAW_FACTOR = 4


def visible(text: str) -> bool:
    return any(ch not in _BLANKS and unicodedata.category(ch) not in _INVISIBLE_CATEGORIES for ch in text)


def canonical(value: str, field: str, *, max_length: int, searched: bool = False) -> str:
    """``value`` in its canonical form, or ``validation_error`` naming ``field`` and the reason."""
    def refuse(why: str, **details: Any) -> ValidationError:
        return ValidationError(f"'{field}' {why}", field=field, details=details)
    if len(value) > _RAW_FACTOR * max_length:
        raise refuse(f"must have at most {max_length} characters", max_length=max_length)
    bad = _FORBIDDEN.search(value)
    if bad is not None:
        what = "a lone surrogate" if "\ud800" <= bad.group() <= "\udfff" else "a control character"
        raise refuse(f"contains {what} (U+{ord(bad.group()):04X})", position=bad.start())
    value = unicodedata.normalize("NFC", value.strip())
    if not visible(value):
        raise refuse("is empty, or only invisible characters")
    if len(value) > max_length or (searched and len(value.lower()) > max_length):
        raise refuse(f"must have at most {max_length} characters" + (" (lower-cased)" if searched else ""),
                     max_length=max_length)
    return value


def identifier(value: str, field: str, *, max_length: int = 128) -> str | None:
    """The canonical form of an id that is looked up (a path segment or a filter), None when no stored id
    can have that spelling: a lookup of it finds nothing, whatever the database."""
    if len(value) > _RAW_FACTOR * max_length or _FORBIDDEN.search(value):
        return None
    value = unicodedata.normalize("NFC", value.strip())
    return value if value and len(value) <= max_length else None


def check_json_strings(value: Any, field: str) -> None:
    """Every string in a JSON value (object keys too) storable everywhere: no NUL, no lone surrogate. Other
    characters are the client's data and are kept as sent."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            bad = re.search("[\x00\ud800-\udfff]", item)
            if bad is not None:
                raise ValidationError(f"'{field}' contains U+{ord(bad.group()):04X}, which cannot be stored",
                                      field=field)
