"""Calibrated decision thresholds, measured by the benchmark (``bench/results/lfw.json``) and nowhere else.

The verify threshold of a model id is the cosine similarity at which 1 in 1,000 impostor pairs is accepted,
the stricter of LFW's (``threshold_at_far_1e-3``) and the real-photo set's (``celeba_dev_threshold_at_far_1e-3``,
from its 50,000 impostor pairs): LFW's faces are easier, and its threshold alone lets several times more
real-photo impostors through. Keeping the numbers in the benchmark's output means a re-run of the benchmark
re-calibrates the service, and the README's table and the service can never disagree. Which file is read is
a setting (``calibration_file``; default: the one shipped beside the code).

Identify's decision rule comes from ``open_set.json`` beside that file (``bench/open_set.py``): thresholds
tabulated per gallery size, false-positive identification rate (FPIR: the share of searches by people who
are not enrolled that return anyone) and photos in the candidate's template, measured on real galleries and
modelled up to a million people on impostor scores with clean labels, fitted to a bound of those scores over
resamples of the people they come from (``_people95``: a stranger's false accept is a look-alike enrolled, a
property of a pair of people, and a point fit on a few dozen people let several times the target through on
people it had not seen). A model without such an entry falls back to the per-comparison rule
(``threshold_for_far``).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError


@cache
def _results(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read calibration {path}: {exc}") from exc


def _interp_log(x: float, points: list[list[float]]) -> float:
    """Linear in log10 of x through ``[[x, y], ...]`` (sorted by x); the end segments extended beyond."""
    xs = [math.log10(max(p[0], 1e-12)) for p in points]
    ys = [p[1] for p in points]
    lx = math.log10(max(x, 1e-12))
    if len(points) == 1:
        return float(ys[0])
    i = 1 if lx <= xs[1] else len(xs) - 1 if lx >= xs[-2] else next(j for j in range(1, len(xs)) if lx <= xs[j])
    return float(ys[i - 1] + (ys[i] - ys[i - 1]) * (lx - xs[i - 1]) / (xs[i] - xs[i - 1]))


@dataclass(frozen=True)
class IdentifyRule:
    """How identify decides, for a model id: the best candidate (similarity s1) is accepted when s1 clears
    verify's threshold and ``s1 - beta * max(s2, m0)`` clears the rule's threshold for the gallery size, the
    FPIR and the number of photos in that candidate's template, s2 being the second-best candidate's
    similarity and m0 the median impostor similarity.

    Why the second candidate: a stranger's best and second-best candidates are both the top of the same
    impostor crowd and lie close together, while an enrolled person's own template usually stands clear of
    the crowd; subtracting part of s2 takes out how crowded this probe's neighbourhood is (a probe that looks
    like many people scores high against everyone). ``beta = 0`` is a plain threshold.

    Why the template's photos: a template is the mean of a person's photos, and a mean of several sits nearer
    the person's centre than any one photo, so strangers score higher against it too: with the one-photo table
    for all, celeba_dev's galleries of 3-photo templates let 3.9% of strangers through at a 1% target. A
    template of more photos than tabulated uses the largest size's table; one between two tabulated sizes the
    larger's (the stricter)."""
    name: str
    beta: float
    m0: float
    tables: dict[int, dict[float, list[list[float]]]] = field(repr=False)  # photos -> FPIR -> [[N, threshold]]
    expected_fnir: dict[float, list[list[float]]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if 1 not in self.tables:
            raise ConfigError(f"identify rule {self.name!r} has no thresholds for one-photo templates")

    @staticmethod
    def score(beta: float, m0: float, s1: Any, s2: Any) -> Any:
        """The rule's score, for floats or numpy arrays alike (the benchmark calibrates with this one)."""
        return s1 - beta * np.maximum(s2, m0)

    def table_photos(self, photos: int) -> int:
        """Which tabulated template size decides for a template of ``photos`` photos."""
        sizes = sorted(self.tables)
        return next((k for k in sizes if k >= photos), sizes[-1])

    def _at(self, tables: dict[float, list[list[float]]], gallery_size: int, fpir: float) -> float:
        fpirs = sorted(tables)
        if not fpirs[0] <= fpir <= fpirs[-1]:
            raise ConfigError(f"identify_target_far {fpir} is outside the calibrated FPIRs {fpirs[0]}..{fpirs[-1]} "
                              f"of rule {self.name!r}", details={"key": "identify_target_far"})
        n = max(gallery_size, 1)
        at = [[f, _interp_log(n, tables[f])] for f in fpirs]
        return _interp_log(fpir, at)

    def threshold(self, gallery_size: int, fpir: float, photos: int = 1) -> float:
        """The rule's threshold for a candidate whose template holds ``photos`` photos, in a gallery of
        ``gallery_size`` people at this FPIR, interpolated in log N and log FPIR (beyond the largest tabulated
        gallery, the last segment extended)."""
        return min(self._at(self.tables[self.table_photos(photos)], gallery_size, fpir), 0.999)

    def expected(self, gallery_size: int, fpir: float) -> float | None:
        """The FNIR the benchmark expects at this size and FPIR (real single photos), where tabulated."""
        if not self.expected_fnir or fpir not in self.expected_fnir and not (
                min(self.expected_fnir) <= fpir <= max(self.expected_fnir)):
            return None
        return round(min(max(self._at(self.expected_fnir, gallery_size, fpir), 0.0), 1.0), 4)

    @classmethod
    def from_json(cls, data: dict) -> IdentifyRule:
        """``thresholds_by_photos`` where the benchmark tabulated template sizes; a file from before that has
        only ``thresholds`` (one-photo galleries), which then decide for every template."""
        def fpirs(table: dict) -> dict[float, list[list[float]]]:
            return {float(f): t for f, t in table.items()}
        by_photos = data.get("thresholds_by_photos") or {"1": data["thresholds"]}
        return cls(data["name"], float(data["beta"]), float(data["m0"]),
                   {int(k): fpirs(t) for k, t in by_photos.items()},
                   fpirs(data.get("expected_fnir_celeba_dev_one_photo", {})))

    def to_json(self) -> dict[str, Any]:
        """``thresholds`` (one photo) stays for readers from before ``thresholds_by_photos``."""
        return {"name": self.name, "beta": self.beta, "m0": self.m0,
                "thresholds": {str(f): t for f, t in self.tables[1].items()},
                "thresholds_by_photos": {str(k): {str(f): t for f, t in fs.items()}
                                         for k, fs in sorted(self.tables.items())}}


@dataclass(frozen=True)
class OpenSetDecision:
    """Identify's decision for one gallery size: what the rule needs and what it promises. ``threshold`` is
    the rule's threshold for a one-photo template (the loosest); ``threshold_for`` gives any template's."""
    rule: IdentifyRule
    threshold: float        # on the rule's score, for a one-photo template
    floor: float            # s1 must also reach this (verify's threshold, or a stricter requested one)
    gallery_size: int
    target_fpir: float
    per_comparison_far: float
    expected_fnir: float | None

    def threshold_for(self, photos: int) -> float:
        """The rule's threshold for a candidate whose template holds ``photos`` photos."""
        if not self.rule.tables[1]:  # the per-comparison fallback: one threshold for every template
            return self.threshold
        return max(self.threshold, self.rule.threshold(self.gallery_size, self.target_fpir, photos))

    def thresholds_by_photos(self) -> dict[int, float]:
        """The rule's threshold per tabulated template size (what ``/v1/status`` shows)."""
        return {k: self.threshold_for(k) for k in sorted(self.rule.tables)}

    def similarity_needed(self, second: float | None, photos: int = 1) -> float:
        """The similarity the best candidate needs, given the second-best's (None: no second candidate) and
        the photos in the best candidate's template."""
        s2 = self.rule.m0 if second is None else second
        return max(self.floor, self.threshold_for(photos) + self.rule.beta * max(s2, self.rule.m0))

    def accepts(self, best: float, second: float | None, photos: int = 1) -> bool:
        return best >= self.similarity_needed(second, photos)

    @property
    def least_similarity(self) -> float:
        """The lowest similarity that can ever be accepted at this gallery size (no crowd near the probe, a
        one-photo template)."""
        return self.similarity_needed(None)


class Calibration:
    """The thresholds of every benchmarked model id, read from one results file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def identify_rule(self, model_id: str) -> IdentifyRule | None:
        """The open-set rule calibrated for ``model_id`` by ``bench/open_set.py``, if any."""
        path = self.path.parent / "open_set.json"
        if not path.is_file():
            return None
        data = _results(path)
        if data.get("model") != model_id or "rule" not in data:
            return None
        return IdentifyRule.from_json(data["rule"])

    def open_set_decision(self, model_id: str, gallery_size: int, target_fpir: float,
                          verify: float) -> OpenSetDecision:
        """How identify decides in a gallery of ``gallery_size`` people at FPIR ``target_fpir``: the
        benchmarked rule where there is one, else a plain threshold at the per-comparison FAR."""
        far = per_comparison_far(target_fpir, gallery_size)
        rule = self.identify_rule(model_id)
        if rule is None:
            fallback = IdentifyRule("per_comparison_far", 0.0, 0.0, {1: {}})
            return OpenSetDecision(fallback, self.threshold_for_far(model_id, far), verify, gallery_size,
                                   target_fpir, far, None)
        return OpenSetDecision(rule, rule.threshold(gallery_size, target_fpir), verify, gallery_size, target_fpir,
                               far, rule.expected(gallery_size, target_fpir))

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
