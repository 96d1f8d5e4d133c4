"""How to score a probe against a template of several photos: the served cosine with the renormalised mean of
the photos, or the mean of the probe's cosines with each photo (the probe against the mean left unnormalised).

    .venv/bin/python -m bench.template_scoring      # seconds; needs bench.lfw's cached embeddings

Why ask: a renormalised mean of k photos sits nearer everyone, so strangers score higher against it as k grows,
and identify keeps a threshold table per template size (``bench.open_set``). The mean of cosines shrinks a
template's scores by the mean's length, which is shorter the more its photos differ: if that told a loose
template from a tight one better than a table per size does, it would separate more at the same false accepts.

Training people of ``bench.open_set``'s split only (the test half is never looked at). For each template size
k, every training person with k + 1 photos or more gets a template of k random photos and one held-out probe;
the genuine scores are probe against own template, the impostor scores probe against every other template of
that draw; ``DRAWS`` random draws pooled. Reported per data set, k and scoring: the threshold at FAR 1e-3 and
1e-4 and the share of genuine scores above it (TAR). ``bench/results/template_scoring.json``.
"""
from __future__ import annotations

import json

import numpy as np

from service.config import load_settings

from . import open_set as o
from .datasets import DATA, load_celeba, load_lfw
from .lfw import RESULTS

DRAWS = 5
FARS = (1e-3, 1e-4)
MIN_PEOPLE = 20


def scores(dom: o.Domain, k: int, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """(genuine, impostor) scores per scoring for templates of ``k`` photos, or None with too few people."""
    photos = dom.photos()
    people = [p for p in np.flatnonzero(dom.train) if len(photos[p]) > k]
    if len(people) < MIN_PEOPLE:
        return None
    found: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {"renormalised_mean": ([], []),
                                                                    "mean_of_cosines": ([], [])}
    own = np.eye(len(people), dtype=bool)
    for _ in range(DRAWS):
        drawn = [rng.permutation(photos[p]) for p in people]
        means = np.stack([dom.emb[rows[:k]].mean(axis=0) for rows in drawn])
        probes = dom.emb[[rows[k] for rows in drawn]]
        for name, templates in (("renormalised_mean", means / np.linalg.norm(means, axis=1, keepdims=True)),
                                ("mean_of_cosines", means)):
            s = probes @ templates.T
            found[name][0].append(s[own])
            found[name][1].append(s[~own])
    return {name: (np.concatenate(g), np.concatenate(i)) for name, (g, i) in found.items()}


def main() -> None:
    settings = load_settings()
    model_id = settings.recognition.model
    rng = np.random.default_rng(o.SEED)
    rows = []
    for dom in (o.load_domain(load_lfw(DATA / "lfw"), model_id, settings.recognition.flip_tta),
                o.load_domain(load_celeba(DATA / "celeba_dev"), model_id, settings.recognition.flip_tta)):
        for k in o.PHOTOS:
            found = scores(dom, k, rng)
            if found is None:
                continue
            for name, (genuine, impostor) in found.items():
                row = {"data": dom.name, "photos": k, "scoring": name, "genuine": len(genuine),
                       "impostor": len(impostor)}
                for far in FARS:
                    threshold = float(np.quantile(impostor, 1 - far))
                    row[f"threshold_at_{far:g}"] = round(threshold, 4)
                    row[f"tar_at_{far:g}"] = round(float((genuine > threshold).mean()), 4)
                rows.append(row)
                print(json.dumps(row), flush=True)
    (RESULTS / "template_scoring.json").write_text(json.dumps(
        {"model": model_id, "draws": DRAWS, "people": "training half of bench.open_set", "rows": rows},
        indent=1) + "\n")


if __name__ == "__main__":
    main()
