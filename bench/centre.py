"""The index centre of the default model: the mean of its embeddings of LFW's training images, written to
``bench/results/centres.json`` (``index_centres_file``), which the index subtracts from every vector before
search (``service.store.chroma_index.Centre``; ranking only: decisions use the raw templates).

Fitted on the images of LFW folds 2-10 only: fold 1, every test measurement and celeba_dev are never used.

    .venv/bin/python -m bench.centre
"""
from __future__ import annotations

import json

import numpy as np

from service.config import load_settings

from .latency import RESULTS
from .scale import lfw_embeddings


def main() -> None:
    emb, ps, found = lfw_embeddings()
    training = np.zeros(len(ps.images), bool)
    for a, b, fold in zip(ps.a, ps.b, ps.folds):
        if fold != 0:
            training[a] = training[b] = True
    rows = training & found
    centre = emb[rows].mean(axis=0)
    model_id = load_settings().recognition.model
    path = RESULTS / "centres.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    known[model_id] = {"centre": [round(float(v), 7) for v in centre], "images": int(rows.sum()),
                       "fitted_on": "the default model's embeddings of LFW's images in folds 2-10 (fold 1 and "
                                    "celeba_dev never used)", "norm": round(float(np.linalg.norm(centre)), 4)}
    path.write_text(json.dumps(known, indent=1) + "\n")
    print(json.dumps({"model": model_id, "images": int(rows.sum()), "norm": known[model_id]["norm"]}))


if __name__ == "__main__":
    main()
