"""The progress of bulk imports that go through the API, for the admin console (issue 23).

``enroll import --url`` reports its counts every few seconds and at its end (``POST /v1/imports/{run_id}``,
the import's own ``enroll`` key); each report is an audit event (``import_progress``), so it lands in the audit
table of the records database and any worker or host can answer ``GET /v1/imports`` (admin) from it: the
latest report of each recent run. No state of its own, no table of its own: with the audit table off, the
reports are in the audit file only and the console says so. The counts are what the importer saw (it alone
knows how many photos a run has); the service vouches only for when it heard them.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .. import errors as e
from ..core.records import now_iso
from . import bodies, inputs, models
from .auth import require
from .context import get_audit
from .openapi import operation

bp = Blueprint("imports", __name__, url_prefix="/v1/imports")
audit = logging.getLogger("faceid.audit")
OP = "import_progress"
COUNTS = ("total", "done", "enrolled", "added", "already_there", "rejected", "not_enrolled")
# Reports read back to find the recent runs: an import reports every 5 s, so this is the last hours of imports.
SCANNED = 2000


@bp.post("/<run_id>")
@operation("Report the progress of an `enroll import` run (the admin console shows it)", body=bodies.ImportReport,
           responses={202: models.ImportReceived}, path_params={"run_id": "the run's id, chosen by the importer"})
@require("enroll")
def report(run_id: str) -> tuple[Response, int]:
    if not bodies.RUN_ID.fullmatch(run_id):
        raise e.ValidationError("run_id: 1-64 letters, digits, _ and -", field="run_id")
    body = bodies.parse(bodies.ImportReport, inputs.json_body())
    if body.done > body.total:
        raise e.ValidationError("'done' must be at most 'total'", field="done")
    audit.info(OP, extra={"op": OP, "decision": body.state, "run_id": run_id, "source": body.source,
                          "started_at": body.started_at, "photos_per_s": body.photos_per_s,
                          **{k: getattr(body, k) for k in COUNTS}})
    recorded = get_audit() is not None
    return jsonify(models.ImportReceived.of(run_id=run_id, recorded=recorded)), 202


@bp.get("")
@operation("Recent bulk imports through the API, as their importers last reported them", query=bodies.ImportsQuery,
           responses={200: models.ImportRuns}, errors=[e.NotFound, e.StoreUnavailable],
           description="404 `not_found` when the audit table is off (`audit_table = false`).")
@require("admin")
def runs() -> Response:
    handler = get_audit()
    if handler is None:
        raise e.NotFound("the audit table is off (audit_table = false): import reports are in the audit file only")
    limit = bodies.parse(bodies.ImportsQuery, request.args).limit
    handler.flush()  # this worker's queued reports first
    latest: dict[str, models.ImportRun] = {}
    now = datetime.fromisoformat(now_iso())
    for event in handler.page(limit=SCANNED, op=OP):  # newest first: the first seen of a run is its latest
        run = _run(event, now)
        if run is not None and run.run_id not in latest:
            latest[run.run_id] = run
            if len(latest) == limit:
                break
    return jsonify(models.ImportRuns.of(items=list(latest.values())))


def _run(event: dict[str, Any], now: datetime) -> models.ImportRun | None:
    """One report as a run; None for an event that is not one (a row the table truncated, say)."""
    try:
        details = json.loads(event["details"])
        counts = {k: int(details[k]) for k in COUNTS}
        rate = details.get("photos_per_s")
        rate = float(rate) if rate is not None else None
        state = str(event["decision"])
        left = counts["total"] - counts["done"]
        eta = round(left / rate, 1) if state == "running" and rate else None
        quiet = max(0.0, (now - datetime.fromisoformat(event["at"])).total_seconds())
        return models.ImportRun(run_id=str(details["run_id"]), actor=event["actor"], source=details.get("source"),
                                state=state, started_at=details.get("started_at"), updated_at=event["at"],
                                quiet_s=round(quiet, 1), photos_per_s=rate, eta_s=eta, **counts)
    except (ValueError, KeyError, TypeError):
        return None
