"""The benchmark data sets and their pair protocols. Imports nothing of the service, so the peers' separate
environment (bench/peers.py) can use it too."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass
class PairSet:
    name: str
    images: list[str]          # relative paths, unique
    a: np.ndarray              # indices into images
    b: np.ndarray
    same: np.ndarray
    folds: np.ndarray
    impostor_a: np.ndarray | None = None  # extra impostor pairs for a stable FAR threshold
    impostor_b: np.ndarray | None = None


def load_lfw(root: Path) -> PairSet:
    lines = (root / "pairs.txt").read_text().split("\n")
    n_folds, per = (int(v) for v in lines[0].split())
    rows = [line.split() for line in lines[1:] if line.strip()]
    pairs = []
    for i, r in enumerate(rows):
        fold = i // (2 * per)
        if len(r) == 3:
            pairs.append((f"{r[0]}/{int(r[1]):04d}.jpg", f"{r[0]}/{int(r[2]):04d}.jpg", 1, fold))
        else:
            pairs.append((f"{r[0]}/{int(r[1]):04d}.jpg", f"{r[2]}/{int(r[3]):04d}.jpg", 0, fold))
    return _pairset("lfw", pairs)


def load_celeba(root: Path) -> PairSet:
    rows = [line.split("\t") for line in (root / "pairs.tsv").read_text().splitlines()[1:] if line.strip()]
    pairs = [(a, b, int(same), int(fold)) for fold, same, a, b in rows]
    imp = [line.split("\t") for line in (root / "impostors.tsv").read_text().splitlines()[1:] if line.strip()]
    ps = _pairset("celeba_dev", pairs, extra=[p for pair in imp for p in pair])
    index = {p: i for i, p in enumerate(ps.images)}
    ps.impostor_a = np.array([index[a] for a, _ in imp])
    ps.impostor_b = np.array([index[b] for _, b in imp])
    return ps


def _pairset(name: str, pairs: list[tuple], extra: list[str] = ()) -> PairSet:
    images = sorted({p for a, b, *_ in pairs for p in (a, b)} | set(extra))
    index = {p: i for i, p in enumerate(images)}
    return PairSet(name, images, np.array([index[p[0]] for p in pairs]), np.array([index[p[1]] for p in pairs]),
                   np.array([p[2] for p in pairs]), np.array([p[3] for p in pairs]))
