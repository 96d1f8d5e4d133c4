"""API keys (admin): list, create, revoke and rotate. A new key's secret is in the creating answer only."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request

from .. import errors as e
from . import bodies, inputs, models
from .auth import require
from .context import get_keys
from .openapi import operation

bp = Blueprint("keys", __name__, url_prefix="/v1/keys")
audit = logging.getLogger("faceid.audit")


@bp.get("")
@operation("API keys, active ones (or all)", query=bodies.KeysQuery, responses={200: models.KeyList},
           errors=[e.StoreUnavailable])
@require("admin")
def list_keys() -> Response:
    include = bodies.parse(bodies.KeysQuery, request.args).include_inactive
    return jsonify(models.KeyList.of(items=get_keys().list(include_inactive=include)))


@bp.post("")
@operation("Create an API key; its secret is in this answer only", body=bodies.KeyCreate,
           responses={201: models.KeyCreated}, errors=[e.StoreUnavailable])
@require("admin")
def create_key() -> tuple[Response, int]:
    body = bodies.parse(bodies.KeyCreate, inputs.json_body())
    key, secret = get_keys().create(body.name, body.scopes, expires_in_s=body.expires_in_s)
    audit.info("key_created", extra={"op": "create_key", "subject": key.id, "scopes": list(key.scopes)})
    return jsonify(models.KeyCreated.of(key=key, secret=secret)), 201


@bp.delete("/<key_id>")
@operation("Revoke a key, at once or after a grace", query=bodies.GraceQuery, responses={200: models.KeyReply},
           errors=[e.KeyNotFound, e.KeyInConfig, e.LastAdminKey, e.StoreUnavailable])
@require("admin")
def revoke_key(key_id: str) -> Response:
    key = get_keys().revoke(key_id, grace_s=bodies.parse(bodies.GraceQuery, request.args).grace_s or 0)
    audit.info("key_revoked", extra={"op": "revoke_key", "subject": key.id})
    return jsonify(models.KeyReply.of(key=key))


@bp.post("/<key_id>/rotate")
@operation("Replace a key by a new one with the same name and scopes", body=bodies.Rotate,
           body_required=False, responses={201: models.KeyRotated},
           errors=[e.KeyNotFound, e.KeyInConfig, e.StoreUnavailable])
@require("admin")
def rotate_key(key_id: str) -> tuple[Response, int]:
    body = bodies.parse(bodies.Rotate, inputs.json_body() if request.content_length else {})
    old, new, secret = get_keys().rotate(key_id, grace_s=body.grace_s or 0)
    audit.info("key_rotated", extra={"op": "rotate_key", "subject": old.id, "new_key": new.id})
    return jsonify(models.KeyRotated.of(key=new, secret=secret, replaced=old)), 201
