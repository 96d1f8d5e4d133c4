"""Who is who in the benchmark sets, after the known label errors are merged (``bench/identity_merges.json``).

LFW lists some people under two names, so a few of its "different person" pairs are one person; they are
the highest-scoring impostor pairs there are, so they decide the far tail that identify's threshold for
large galleries is read from. Every benchmark that counts impostors labels people through ``person_labels``.

Finding more of them (writes the highest-scoring remaining impostor pairs side by side, to look at by eye):

    .venv/bin/python -m bench.identities --top 40      # PNGs in var/bench/impostor_pairs/
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from service.config import ROOT, load_settings

from .datasets import DATA, PairSet, load_celeba, load_lfw

MERGES = ROOT / "bench" / "identity_merges.json"


def merges(path: Path = MERGES) -> dict[str, dict[str, str]]:
    """{set name: {alias: canonical name}} from the merges file."""
    data = json.loads(path.read_text())
    out: dict[str, dict[str, str]] = {}
    for set_name, entries in data["merged"].items():
        alias = out.setdefault(set_name, {})
        for entry in entries:
            first, *others = entry["names"]
            for other in others:
                alias[other] = first
    return out


def person_labels(ps: PairSet, path: Path = MERGES) -> np.ndarray:
    """The identity of each image of ``ps`` (its folder name), with merged aliases mapped to one name and
    misfiled photos moved to their person."""
    alias = merges(path).get(ps.name, {})
    moved = {rel: entry["to"] for rel, entry in json.loads(path.read_text())["relabelled"].get(ps.name, {}).items()}
    folder = [moved.get(rel, rel.split("/")[0]) for rel in ps.images]
    return np.array([alias.get(name, name) for name in folder])


def top_impostor_pairs(emb: np.ndarray, labels: np.ndarray, top: int) -> list[tuple[float, int, int]]:
    """The ``top`` highest-scoring pairs of images with different labels (rows with NaN skipped)."""
    ok = np.flatnonzero(~np.isnan(emb).any(axis=1))
    e, lab = emb[ok], labels[ok]
    best: list[tuple[float, int, int]] = []
    for start in range(0, len(e), 1024):
        sims = e[start:start + 1024] @ e.T
        rows = np.arange(start, min(start + 1024, len(e)))[:, None]
        sims[(np.arange(len(e))[None, :] <= rows) | (lab[rows] == lab[None, :])] = -2
        flat = np.argpartition(sims.ravel(), -top)[-top:]
        for f in flat:
            i, j = divmod(int(f), len(e))
            best.append((float(sims[i, j]), int(ok[start + i]), int(ok[j])))
        best = sorted(best, reverse=True)[:top]
    return best


def write_pairs(ps: PairSet, root: Path, pairs: list[tuple[float, int, int]], out: Path) -> None:
    """Each pair as one PNG (both photos at 250 px high, names and score on top), for looking at by eye."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    for rank, (score, a, b) in enumerate(pairs):
        tiles = []
        for i in (a, b):
            img = cv2.imread(str(root / ps.images[i]))
            img = cv2.resize(img, (round(img.shape[1] * 250 / img.shape[0]), 250))
            tiles.append(cv2.copyMakeBorder(img, 30, 0, 0, 4, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
            cv2.putText(tiles[-1], ps.images[i][:40], (2, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        row = np.concatenate(tiles, axis=1)
        cv2.putText(row, f"{score:.3f}", (row.shape[1] - 60, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1)
        cv2.imwrite(str(out / f"{ps.name}-{rank:02d}.png"), row)


def main(argv: list[str] | None = None) -> None:
    from .identify import embeddings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    settings = load_settings()
    out = ROOT / "var" / "bench" / "impostor_pairs"
    for ps, root in ((load_lfw(DATA / "lfw"), DATA / "lfw"), (load_celeba(DATA / "celeba_dev"), DATA / "celeba_dev")):
        emb = embeddings(ps, settings.recognition.model, settings.recognition.flip_tta)
        pairs = top_impostor_pairs(emb, person_labels(ps), args.top)
        for score, a, b in pairs:
            print(f"{ps.name}\t{score:.4f}\t{ps.images[a]}\t{ps.images[b]}")
        write_pairs(ps, root, pairs, out)


if __name__ == "__main__":
    main()
