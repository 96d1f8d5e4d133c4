"""Typed accessors for what the app holds (Flask tutorial's ``get_db`` shape): views never fetch parts by
string key."""
from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from ..config import Settings
from ..core.keys import Keys
from ..core.ports import AuditTrail
from ..core.recognizer import Recognizer

_RECOGNIZER, _KEYS, _SETTINGS, _AUDIT = "faceid.recognizer", "faceid.keys", "faceid.settings", "faceid.audit"


def init_app(app: Flask, settings: Settings, recognizer: Recognizer, keys: Keys,
             audit: AuditTrail | None) -> None:
    app.extensions[_SETTINGS] = settings
    app.extensions[_RECOGNIZER] = recognizer
    app.extensions[_KEYS] = keys
    app.extensions[_AUDIT] = audit


def get_recognizer(app: Flask | None = None) -> Recognizer:
    return cast(Recognizer, (app or current_app).extensions[_RECOGNIZER])


def get_keys(app: Flask | None = None) -> Keys:
    return cast(Keys, (app or current_app).extensions[_KEYS])


def get_settings() -> Settings:
    return cast(Settings, current_app.extensions[_SETTINGS])


def get_audit(app: Flask | None = None) -> AuditTrail | None:
    return cast("AuditTrail | None", (app or current_app).extensions[_AUDIT])
