"""GET /v1/audit (admin): the audit trail from the records database, newest first, filtered by person, key
or operation: "who verified against this person, and from where?" without shell access to a log file."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import NotFound, StoreUnavailable
from . import bodies, models
from .auth import require
from .context import get_audit
from .openapi import operation

bp = Blueprint("audit", __name__, url_prefix="/v1/audit")


@bp.get("")
@operation("The audit trail, newest first, by person, key or operation", query=bodies.AuditQuery,
           responses={200: models.AuditPage}, errors=[NotFound, StoreUnavailable],
           description="404 `not_found` when the audit table is off (`audit_table = false`).")
@require("admin")
def list_events() -> Response:
    handler = get_audit()
    if handler is None:
        raise NotFound("the audit table is off (audit_table = false); the audit file has the events")
    handler.flush()  # this worker's queued events first, so an admin sees what just happened here
    query = bodies.parse(bodies.AuditQuery, request.args)
    limit = query.limit
    events = handler.page(limit=limit + 1, before=query.cursor, person_id=query.person_id, actor_id=query.actor,
                          op=query.op, since=query.since)
    more, events = len(events) > limit, events[:limit]
    return jsonify(models.AuditPage.of(items=events, next_cursor=str(events[-1]["id"]) if more else None))
