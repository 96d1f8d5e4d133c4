"""Vector arithmetic with one definition each: normalisation, a person's template and model fusion.

The benchmark imports these too, so the calibration it measures is computed with exactly the formulas the
service serves with: if a fusion were written twice and drifted, thresholds would silently stop fitting.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def template(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """A person's template: the renormalised mean of their face embeddings (it verifies and identifies
    better than the best single face, see bench/results/identify.json)."""
    mean = np.mean(np.stack(embeddings), axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def fuse(parts: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Several models' embeddings (each ``(n, dim_i)``) as one: part i contributes sqrt(w_i) times its unit
    vector, so cos(fused_a, fused_b) = sum_i w_i * cos_i(a, b) with the weights summing to one."""
    total = sum(weights)
    pieces = [math.sqrt(w / total) * l2_normalize(np.asarray(p, np.float32)) for p, w in zip(parts, weights)]
    return l2_normalize(np.concatenate(pieces, axis=1).astype(np.float32))


def fusion_id(parts: Sequence[tuple[str, float]]) -> str:
    """Canonical id of a fusion: parts in the given order, weights normalised, 2 decimals."""
    total = sum(w for _, w in parts)
    return "+".join(f"{model_id}:{w / total:.2f}" for model_id, w in parts)


def parse_fusion(model_id: str) -> list[tuple[str, float]] | None:
    """``[(part, weight), ...]`` for a fusion id, None for a single model id."""
    if "+" not in model_id:
        return None
    parts = []
    for item in model_id.split("+"):
        name, _, weight = item.rpartition(":")
        try:
            w = float(weight)
        except ValueError:
            raise ConfigError(f"fusion part {item!r} needs a weight, e.g. sface:0.6+dlib:0.4",
                              details={"key": "model"}) from None
        if not name or w <= 0:
            raise ConfigError(f"invalid fusion part {item!r}", details={"key": "model"})
        parts.append((name, w))
    if len({name for name, _ in parts}) != len(parts):
        raise ConfigError(f"a fusion names a model twice: {model_id}", details={"key": "model"})
    return parts
