"""Calibrated decision thresholds, measured by the benchmark (``bench/results/lfw.json``) and nowhere else.

The verify threshold of a model id is the cosine similarity at which 1 in 1,000 impostor pairs is accepted,
the stricter of LFW's (``threshold_at_far_1e-3``) and the real-photo set's (``celeba_dev_threshold_at_far_1e-3``,
from its 50,000 impostor pairs): LFW's faces are easier, and its threshold alone lets several times more
real-photo impostors through. Keeping the numbers in the benchmark's output means a re-run of the benchmark
re-calibrates the service, and the README's table and the service can never disagree. Which file is read is
a setting (``calibration_file``; default: the one shipped beside the code).
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError


@cache
def _results(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read calibration {path}: {exc}") from exc


class Calibration:
    """The thresholds of every benchmarked model id, read from one results file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def verify_threshold(self, model_id: str) -> float:
        """Cosine threshold at FAR 1e-3 for ``model_id`` (the stricter data set's); a model without a
        benchmark entry cannot be served with a default threshold (an uncalibrated threshold is a guess)."""
        entry = _results(self.path).get("models", {}).get(model_id)
        if not entry or "threshold_at_far_1e-3" not in entry:
            raise ConfigError(f"no calibrated threshold for model {model_id!r} in {self.path}: run "
                              f"`make bench-lfw` or set verify_threshold explicitly", details={"model_id": model_id})
        return max(float(entry["threshold_at_far_1e-3"]),
                   float(entry.get("celeba_dev_threshold_at_far_1e-3", -1.0)))

    def threshold_for_far(self, model_id: str, far: float) -> float:
        """Cosine threshold at which a fraction ``far`` of impostor pairs pass, interpolated (in log FAR) on
        the benchmark's identify curve: every different-person pair of LFW (~29 million) and celeba_dev, the
        stricter of the two wherever both resolve a FAR. Below the curve's smallest FAR (galleries of
        millions) the last segment is extrapolated."""
        entry = _results(self.path).get("models", {}).get(model_id, {})
        curve = entry.get("identify_impostor_curve")
        if not curve:
            raise ConfigError(f"no impostor curve for model {model_id!r} in {self.path}: run `make bench-lfw`",
                              details={"model_id": model_id})
        fars = np.log10([p[0] for p in curve])
        thresholds = np.array([p[1] for p in curve])
        x = np.log10(max(far, 1e-12))
        if x < fars[0]:
            slope = (thresholds[1] - thresholds[0]) / (fars[1] - fars[0])
            return float(min(thresholds[0] + slope * (x - fars[0]), 0.999))
        return float(np.interp(x, fars, thresholds))

    def identify_threshold(self, model_id: str, gallery_size: int, target_open_set_far: float,
                           verify: float) -> tuple[float, float]:
        """(threshold, per-comparison FAR) for a 1:N search over ``gallery_size`` people; never below
        verify's."""
        far = per_comparison_far(target_open_set_far, gallery_size)
        return max(verify, self.threshold_for_far(model_id, far)), far


def per_comparison_far(target_open_set_far: float, gallery_size: int) -> float:
    """The per-comparison false-accept rate that keeps P(a stranger matches any of ``gallery_size`` enrolled
    people) at ``target_open_set_far``, treating comparisons as independent: 1 - (1 - target)^(1/n)."""
    return 1.0 - (1.0 - target_open_set_far) ** (1.0 / max(gallery_size, 1))
