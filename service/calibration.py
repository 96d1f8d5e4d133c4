"""Calibrated decision thresholds, measured by the benchmark (``bench/results/lfw.json``) and nowhere else.

The verify threshold of a model id is the cosine similarity at which 1 in 1,000 LFW impostor pairs is
accepted (``threshold_at_far_1e-3``). Keeping the number in the benchmark's output means a re-run of the
benchmark re-calibrates the service, and the README's table and the service can never disagree.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .config import ROOT
from .errors import ConfigError

BENCH_RESULTS = ROOT / "bench" / "results" / "lfw.json"


@lru_cache(maxsize=None)
def _results(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read calibration {path}: {exc}") from exc


def verify_threshold(model_id: str, path: Path = BENCH_RESULTS) -> float:
    """Cosine threshold at FAR 1e-3 for ``model_id``; a model without a benchmark entry cannot be served
    with a default threshold (an uncalibrated threshold is a guess)."""
    entry = _results(path).get("models", {}).get(model_id)
    if not entry or "threshold_at_far_1e-3" not in entry:
        raise ConfigError(f"no calibrated threshold for model {model_id!r} in {path}: run `make bench-lfw` "
                          f"or set verify_threshold explicitly", details={"model_id": model_id})
    return float(entry["threshold_at_far_1e-3"])
