"""API keys (admin): list, create, revoke and rotate. A new key's secret is in the creating answer only."""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .. import errors as e
from ..errors import ValidationError
from . import bodies, fields, inputs, models, schemas
from .auth import require
from .context import get_keys
from .openapi import operation

bp = Blueprint("keys", __name__, url_prefix="/v1/keys")
audit = logging.getLogger("faceid.audit")
MAX_GRACE_S = 30 * 86400


def _seconds(values: dict[str, Any], name: str, high: int) -> int | None:
    if values.get(name) is None:
        return None
    return fields.integer(values, name, default=0, low=1, high=high)


@bp.get("")
@operation("API keys, active ones (or all)", query=bodies.KeysQuery, responses={200: models.KeyList},
           errors=[e.StoreUnavailable])
@require("admin")
def list_keys() -> Response:
    fields.known_only(request.args, bodies.KeysQuery.model_fields)
    include = fields.boolean(request.args, "include_inactive")
    return jsonify(schemas.api_keys(get_keys().list(include_inactive=include)))


@bp.post("")
@operation("Create an API key; its secret is in this answer only", json=bodies.KeyCreate,
           responses={201: models.KeyCreated}, errors=[e.StoreUnavailable])
@require("admin")
def create_key() -> tuple[Response, int]:
    values = inputs.json_body()
    scopes = values.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValidationError("'scopes' must be a list of strings", field="scopes")
    key, secret = get_keys().create(fields.required_text(values, "name"), scopes,
                                    expires_in_s=_seconds(values, "expires_in_s", 10 * 365 * 86400))
    audit.info("key_created", extra={"op": "create_key", "subject": key.id, "scopes": list(key.scopes)})
    return jsonify(schemas.key_created(key, secret)), 201


@bp.delete("/<key_id>")
@operation("Revoke a key, at once or after a grace", query=bodies.GraceQuery, responses={200: models.KeyReply},
           errors=[e.KeyNotFound, e.KeyInConfig, e.LastAdminKey, e.StoreUnavailable])
@require("admin")
def revoke_key(key_id: str) -> Response:
    values = request.args
    fields.known_only(values, bodies.GraceQuery.model_fields)
    key = get_keys().revoke(key_id, grace_s=_seconds(dict(values), "grace_s", MAX_GRACE_S) or 0)
    audit.info("key_revoked", extra={"op": "revoke_key", "subject": key.id})
    return jsonify(schemas.api_key(key))


@bp.post("/<key_id>/rotate")
@operation("Replace a key by a new one with the same name and scopes", json=bodies.RotateJson,
           body_required=False, responses={201: models.KeyRotated},
           errors=[e.KeyNotFound, e.KeyInConfig, e.StoreUnavailable])
@require("admin")
def rotate_key(key_id: str) -> tuple[Response, int]:
    values = inputs.json_body() if request.content_length else {}
    old, new, secret = get_keys().rotate(key_id, grace_s=_seconds(values, "grace_s", MAX_GRACE_S) or 0)
    audit.info("key_rotated", extra={"op": "rotate_key", "subject": old.id, "new_key": new.id})
    return jsonify(schemas.key_rotated(new, secret, old)), 201
