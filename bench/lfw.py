"""Accuracy and speed of every model id: LFW (deep-funneled) 10-fold and celeba_dev (real unaligned photos).

    make bench-lfw                         # or: .venv/bin/python -m bench.lfw [--experiments]

Writes ``bench/results/lfw.json`` (``{"default": MODEL_ID, "models": {MODEL_ID: {...}}}``), a ROC plot
``bench/results/lfw_roc.png`` and prints a Markdown table for the README. The service's default verify threshold
is ``threshold_at_far_1e-3`` from this file.

Detection failures are *counted as errors*: a pair with an image where MTCNN finds no face gets score -1
(a reject), exactly what the service would answer. On LFW the labelled person is the face nearest the centre,
so there the face with the largest area minus twice the squared centre offset is used (Sandberg's rule); on
celeba_dev the largest face, as the service does.
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from pathlib import Path

import numpy as np

from service.config import ROOT, load_settings, replace
from service.core.images import decode_image
from service.core.records import Face
from service.core.vectors import fuse, fusion_id, l2_normalize
from service.vision.align import crop_face
from service.vision.detector import FaceDetector
from service.vision.embedders.registry import available_models, create_embedder

from .datasets import DATA, PairSet, load_celeba, load_lfw
from .metrics import best_threshold, kfold_accuracy, partial_auc, roc_auc, roc_curve, tar_at_far

RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "var" / "bench"
# Cached detections and embeddings are keyed by the runtime that computed them (service/vision/runtime.py).
RUNTIME = "openvino"
LIMITS = {"max_bytes": 1 << 30, "max_pixels": 1 << 30}


def pick_face(faces: list[Face], shape: tuple[int, ...], centre_bias: bool) -> Face | None:
    if not faces:
        return None
    if not centre_bias:
        return faces[0]
    h, w = shape[:2]

    def score(f: Face) -> float:
        cx, cy = (f.box[0] + f.box[2]) / 2 - w / 2, (f.box[1] + f.box[3]) / 2 - h / 2
        return f.width * f.height - 2.0 * (cx * cx + cy * cy)
    return max(faces, key=score)


def detect_all(ps: PairSet, root: Path, detector: FaceDetector, centre_bias: bool) -> tuple[list, float]:
    """Chosen face per image (None where none was found), cached; and detection ms per image."""
    key = f"{ps.name}-{RUNTIME}-{detector.max_side}-{detector.min_face_size}-{'-'.join(map(str, detector.thresholds))}"
    cache = CACHE / f"detections-{key}.json"
    if cache.is_file():
        data = json.loads(cache.read_text())
        faces = [None if d is None else Face(np.array(d["box"]), np.array(d["landmarks"]), d["probability"])
                 for d in data["faces"]]
        return faces, data["ms_per_image"]
    faces, spent = [], 0.0
    for i, rel in enumerate(ps.images):
        rgb = decode_image((root / rel).read_bytes(), **LIMITS)
        t = time.perf_counter()
        found = detector.detect(rgb)
        spent += time.perf_counter() - t
        faces.append(pick_face(found, rgb.shape, centre_bias))
        if i % 1000 == 0:
            print(f"  detect {ps.name}: {i}/{len(ps.images)}", flush=True)
    ms = 1000 * spent / len(ps.images)
    CACHE.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"ms_per_image": ms, "faces": [
        None if f is None else {"box": f.box.tolist(), "landmarks": f.landmarks.tolist(),
                                "probability": f.probability} for f in faces]}))
    return faces, ms


def embed_all(ps: PairSet, root: Path, faces: list, embedder, crop=None, batch: int = 32) -> tuple:
    """(plain, mirrored) embeddings per image, NaN rows where no face was found. ``crop(rgb, face)``
    overrides the embedder's own alignment (experiments, never cached)."""
    prepared = getattr(embedder, "prepared", None)
    tag = f"{RUNTIME}-{prepared.sha256[:12] if prepared else 'pkg'}"
    if hasattr(embedder, "margin"):
        tag += f"-m{embedder.margin}"
    cache = CACHE / f"embeddings-{ps.name}-{embedder.model_id}-{tag}.npz"
    if crop is None and cache.is_file():
        data = np.load(cache)
        return data["plain"], data["mirrored"]
    dim = embedder.dim
    plain = np.full((len(ps.images), dim), np.nan, np.float32)
    mirrored = plain.copy()
    crops, rows = [], []

    def flush():
        if crops:
            plain[rows] = embedder.embed(crops)
            mirrored[rows] = embedder.embed([c[:, ::-1] for c in crops])
            crops.clear()
            rows.clear()
    for i, (rel, face) in enumerate(zip(ps.images, faces)):
        if face is None:
            continue
        rgb = decode_image((root / rel).read_bytes(), **LIMITS)
        crops.append(crop(rgb, face) if crop else embedder.align(rgb, face))
        rows.append(i)
        if len(crops) == batch:
            flush()
    flush()
    if crop is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez(cache, plain=plain, mirrored=mirrored)
    return plain, mirrored


def pair_scores(emb: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    s = np.einsum("ij,ij->i", emb[a], emb[b])
    return np.where(np.isnan(s), -1.0, s)  # a missing face is a reject


def evaluate(ps: PairSet, emb: np.ndarray) -> dict:
    scores = pair_scores(emb, ps.a, ps.b)
    out = kfold_accuracy(scores, ps.same, ps.folds)
    genuine = scores[ps.same == 1]
    impostor = (pair_scores(emb, ps.impostor_a, ps.impostor_b) if ps.impostor_a is not None
                else scores[ps.same == 0])
    for far in (1e-2, 1e-3):
        tar, t = tar_at_far(genuine, impostor, far)
        out[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = tar
        out[f"threshold_at_far_{far:.0e}".replace("e-0", "e-")] = t
    out["roc_auc"] = roc_auc(scores, ps.same)
    out["impostor_pairs"] = int(len(impostor))
    out["_scores"] = scores
    return out


FAR_GRID = 10.0 ** np.arange(-8.0, -0.95, 0.1)


def all_impostor_scores(ps: PairSet, emb: np.ndarray) -> np.ndarray:
    """Every different-identity pair among the set's images (LFW: ~29 million): the tail of the impostor
    distribution that 1:N search lives in, far beyond what 3,000 protocol pairs can resolve."""
    ok = ~np.isnan(emb).any(axis=1)
    e = emb[ok].astype(np.float32)
    ids = np.array([rel.split("/")[0] for rel in ps.images])[ok]
    _, labels = np.unique(ids, return_inverse=True)
    chunks = []
    for start in range(0, len(e), 1024):
        sims = e[start:start + 1024] @ e.T
        rows = np.arange(start, min(start + 1024, len(e)))[:, None]
        keep = (np.arange(len(e))[None, :] > rows) & (labels[rows] != labels[None, :])
        chunks.append(sims[keep])
    return np.concatenate(chunks)


def identify_curve(impostor_sets: dict[str, np.ndarray], min_count: int = 10) -> list[list[float]]:
    """[far, threshold] for identify: at each FAR the strictest threshold of the data sets that resolve it
    (at least ``min_count`` impostor pairs above it): conservative across LFW and real photos."""
    ordered = [np.sort(s)[::-1] for s in impostor_sets.values()]  # threshold_at_far on each, sorted once
    curve = []
    for far in FAR_GRID:
        ts = [float(s[int(np.floor(far * len(s)))]) for s in ordered if far * len(s) >= min_count]
        if ts:
            curve.append([float(f"{far:.4g}"), round(max(ts), 5)])
    return curve


def combine(plain: np.ndarray, mirrored: np.ndarray, flip: bool) -> np.ndarray:
    return l2_normalize(plain + mirrored) if flip else plain


def speed(embedder, detector: FaceDetector, n: int = 60) -> dict:
    """Embedding ms per face at batch 1 (as configured, flip TTA included; alone, and with each model's own
    alignment from the full photo) and detection ms on a 1920x1440 photo (a real phone-size photo resized to
    exactly that)."""
    import cv2

    photo = sorted((DATA / "photos").glob("*/*.jpg"), key=lambda p: -p.stat().st_size)[0]
    rgb = cv2.resize(decode_image(photo.read_bytes(), **LIMITS), (1920, 1440), interpolation=cv2.INTER_AREA)
    faces = detector.detect(rgb)
    crop = embedder.align(rgb, faces[0])
    for _ in range(5):
        embedder.embed([crop])
        detector.detect(rgb)
    t = time.perf_counter()
    for _ in range(n):
        embedder.embed([crop])
    embed_ms = 1000 * (time.perf_counter() - t) / n
    t = time.perf_counter()
    for _ in range(n):
        embedder.get(rgb, faces[:1])
    align_embed_ms = 1000 * (time.perf_counter() - t) / n
    t = time.perf_counter()
    for _ in range(n // 3):
        detector.detect(rgb)
    detect_ms = 1000 * (time.perf_counter() - t) / (n // 3)
    return {"embed_ms_per_face": round(embed_ms, 2), "align_embed_ms_per_face": round(align_embed_ms, 2),
            "detect_ms_1920x1440": round(detect_ms, 1),
            "speed_photo": photo.name}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--models", nargs="*", help="single model ids (default: every available one)")
    parser.add_argument("--fusions", nargs="*", default=None,
                        help="fusions to evaluate, as part ids joined by '+' (default: every pair and the triple "
                             "of the models run); weights are chosen by nested cross-validation on LFW")
    parser.add_argument("--experiments", action="store_true",
                        help="also run the preprocessing experiments (gap to Sandberg's 99.05%%)")
    parser.add_argument("--speed-only", action="store_true",
                        help="re-measure only the speed fields of the models already in lfw.json (on a quiet machine)")
    args = parser.parse_args(argv)
    settings = load_settings()
    detector = FaceDetector(settings.models_dir, max_side=settings.detection.max_side,
                            min_face_size=settings.detection.min_face, thresholds=settings.detection.thresholds,
                            threads=settings.recognition.detect_threads).prepare()
    if args.speed_only:
        results = json.loads((RESULTS / "lfw.json").read_text())
        results["default"] = settings.recognition.model
        for model_id, entry in results["models"].items():
            entry.update(speed(create_embedder(settings, model_id).prepare(), detector))
            print(model_id, entry["embed_ms_per_face"], entry["detect_ms_1920x1440"], flush=True)
        (RESULTS / "lfw.json").write_text(json.dumps(results, indent=2) + "\n")
        print(markdown_table(results))
        return
    sets = [(load_lfw(args.data / "lfw"), args.data / "lfw", True),
            (load_celeba(args.data / "celeba_dev"), args.data / "celeba_dev", False)]
    detections = {}
    for ps, root, centre in sets:
        print(f"detecting {ps.name}: {len(ps.images)} images", flush=True)
        detections[ps.name] = detect_all(ps, root, detector, centre)

    results = {"default": settings.recognition.model, "models": {}, "machine": f"{platform.machine()}, "
               f"{__import__('os').cpu_count()} cores", "protocol": __doc__.split("\n\n")[2].strip()}
    rocs = {}
    single = args.models or available_models(settings)
    combined: dict[str, dict[str, np.ndarray]] = {}  # model -> set -> embeddings as served (flip applied)
    for model_id in single:
        embedder = create_embedder(replace(settings, flip_tta=False), model_id).prepare()
        entry: dict = {"flip_tta": settings.recognition.flip_tta}
        impostors = {}
        for ps, root, _ in sets:
            faces, detect_ms = detections[ps.name]
            print(f"embedding {ps.name} with {model_id}", flush=True)
            plain, mirrored = embed_all(ps, root, faces, embedder)
            variants = {flip: evaluate(ps, combine(plain, mirrored, flip)) for flip in (False, True)}
            chosen = variants[settings.recognition.flip_tta]
            prefix = "" if ps.name == "lfw" else "celeba_dev_"
            if ps.name == "lfw":
                rocs[model_id] = roc_curve(chosen["_scores"], ps.same)
            combined.setdefault(model_id, {})[ps.name] = combine(plain, mirrored, settings.recognition.flip_tta)
            impostors[ps.name] = all_impostor_scores(ps, combined[model_id][ps.name])
            # How many impostor pairs the protocol threshold really lets through, over all pairs of the set.
            entry[prefix + "far_at_threshold_1e-3_all_pairs"] = float(
                f"{(impostors[ps.name] > chosen['threshold_at_far_1e-3']).mean():.3g}")
            for k, v in chosen.items():
                if not k.startswith("_"):
                    entry[prefix + k] = v
            entry[prefix + "detect_failures"] = sum(f is None for f in faces)
            entry[prefix + "detect_ms_per_image"] = round(detect_ms, 1)
            entry[prefix + "flip_tta_effect"] = {
                ("on" if flip else "off"): {"accuracy_mean": v["accuracy_mean"],
                                            "tar_at_far_1e-3": v["tar_at_far_1e-3"]}
                for flip, v in variants.items()}
            if args.experiments and ps.name == "lfw":
                entry["experiments"] = experiments(ps, root, faces, embedder, settings)
        entry["identify_impostor_curve"] = identify_curve(impostors)
        entry["identify_impostor_pairs"] = {name: int(len(v)) for name, v in impostors.items()}
        entry.update(speed(create_embedder(settings, model_id).prepare(), detector))
        results["models"][model_id] = entry
        print(json.dumps({k: v for k, v in entry.items() if not isinstance(v, (list, dict))}, indent=1))

    fusions = args.fusions if args.fusions is not None else [
        "+".join(c) for n in (2, 3) for c in itertools.combinations(single, n)]
    lfw, celeba = sets[0][0], sets[1][0]
    for name in fusions:
        parts = name.split("+")
        model_id, entry, fused = evaluate_fusion(parts, lfw, celeba, combined)
        entry["detect_failures"] = sum(f is None for f in detections["lfw"][0])
        entry["celeba_dev_detect_failures"] = sum(f is None for f in detections["celeba_dev"][0])
        impostors = {ps.name: all_impostor_scores(ps, fused[ps.name]) for ps in (lfw, celeba)}
        entry["identify_impostor_curve"] = identify_curve(impostors)
        entry["identify_impostor_pairs"] = {k: int(len(v)) for k, v in impostors.items()}
        entry.update(speed(create_embedder(settings, model_id).prepare(), detector))
        rocs[model_id] = roc_curve(pair_scores(fused["lfw"], lfw.a, lfw.b), lfw.same)
        results["models"][model_id] = entry
        print(json.dumps({k: v for k, v in entry.items() if not isinstance(v, (list, dict))}, indent=1))

    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = json.loads((RESULTS / "lfw.json").read_text()) if (RESULTS / "lfw.json").is_file() else {}
    for model_id, entry in previous.get("models", {}).items():
        results["models"].setdefault(model_id, entry)  # keep models not re-run this time
        if "experiments" in entry and not args.experiments:
            results["models"][model_id].setdefault("experiments", entry["experiments"])
    (RESULTS / "lfw.json").write_text(json.dumps(results, indent=2) + "\n")
    plot_roc(rocs, RESULTS / "lfw_roc.png")
    print(markdown_table(results))


def weight_grid(n: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector on the simplex with the given step (each part at least one step)."""
    k = round(1 / step)
    return [tuple(c / k for c in combo) for combo in itertools.product(range(1, k), repeat=n)
            if sum(combo) == k]


def evaluate_fusion(parts: list[str], lfw: PairSet, celeba: PairSet, combined: dict) -> tuple[str, dict, dict]:
    """Weights by nested cross-validation on LFW: for each outer fold, the weights maximising the partial AUC
    (FAR <= 1e-2) on the 9 other folds, then that fold's accuracy with a threshold also picked on the other
    folds. TAR@FAR is pooled over the outer test folds' scores. celeba_dev is never used for choosing: it is
    scored with the weights chosen on all of LFW (those the service deploys)."""
    grid = weight_grid(len(parts), 0.05 if len(parts) == 2 else 0.1)
    per_part = np.stack([pair_scores(combined[p]["lfw"], lfw.a, lfw.b) for p in parts])  # parts x pairs
    valid = (per_part > -1).all(axis=0)

    def scores(w) -> np.ndarray:
        return np.where(valid, np.tensordot(np.asarray(w) / sum(w), per_part, axes=1), -1.0)

    def choose(mask: np.ndarray) -> tuple[float, ...]:
        return max(grid, key=lambda w: partial_auc(scores(w)[mask], lfw.same[mask], 1e-2))

    accs, chosen, test_scores = [], [], np.zeros(len(lfw.same))
    for f in np.unique(lfw.folds):
        train, test = lfw.folds != f, lfw.folds == f
        w = choose(train)
        s = scores(w)
        t = best_threshold(s[train], lfw.same[train])
        accs.append(float(((s[test] >= t) == lfw.same[test].astype(bool)).mean()))
        chosen.append([round(x, 2) for x in w])
        test_scores[test] = s[test]
    final = choose(np.ones(len(lfw.same), bool))
    model_id = fusion_id(list(zip(parts, final)))
    genuine, impostor = test_scores[lfw.same == 1], test_scores[lfw.same == 0]
    entry: dict = {"parts": parts, "weights": [round(x, 2) for x in final], "weights_per_outer_fold": chosen,
                   "selection": "nested 10-fold on LFW, partial AUC at FAR <= 1e-2; celeba_dev never used",
                   "accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
                   "accuracy_per_fold": [round(a, 4) for a in accs], "roc_auc": roc_auc(test_scores, lfw.same)}
    for far in (1e-2, 1e-3):
        entry[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = tar_at_far(genuine, impostor, far)[0]
    fused = {ps.name: fuse([combined[p][ps.name] for p in parts], final) for ps in (lfw, celeba)}
    # The deployed threshold: the final weights' scores over all LFW pairs, as for a single model.
    deployed = evaluate(lfw, fused["lfw"])
    entry["threshold_at_far_1e-3"] = deployed["threshold_at_far_1e-3"]
    entry["threshold_at_far_1e-2"] = deployed["threshold_at_far_1e-2"]
    for k, v in evaluate(celeba, fused["celeba_dev"]).items():
        if not k.startswith("_"):
            entry["celeba_dev_" + k] = v
    return model_id, entry, fused


def experiments(ps: PairSet, root: Path, faces: list, embedder, settings) -> dict:
    """Where does the gap to Sandberg's 99.05% come from? Each variant changes one preprocessing step."""
    out = {}

    def run(name: str, crop=None, subtract_mean: bool = False, fs=faces) -> None:
        plain, mirrored = embed_all(ps, root, fs, embedder, crop=crop)
        for flip in (False, True):
            emb = combine(plain, mirrored, flip)
            if subtract_mean:
                emb = subtract_train_mean(ps, emb)
            r = evaluate(ps, emb)
            out[f"{name}{' +flip' if flip else ''}"] = {
                "accuracy_mean": round(r["accuracy_mean"], 4), "accuracy_std": round(r["accuracy_std"], 4),
                "tar_at_far_1e-3": round(r["tar_at_far_1e-3"], 4)}
        print(f"  experiment {name}: {out[name]}", flush=True)

    size = embedder.input_size
    for margin in (16, 32, 44, 60):
        run(f"mtcnn, margin {margin} (relative)", crop=lambda rgb, f, m=margin: crop_face(rgb, f.box, size, m))

    def absolute(rgb: np.ndarray, face: Face, margin: int = 32) -> np.ndarray:
        # Sandberg's align_dataset_mtcnn: margin in source pixels, then resize to 160.
        import cv2
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = face.box
        box = [max(int(x1 - margin / 2), 0), max(int(y1 - margin / 2), 0),
               min(int(x2 + margin / 2), w), min(int(y2 + margin / 2), h)]
        return cv2.resize(rgb[box[1]:box[3], box[0]:box[2]], (size, size), interpolation=cv2.INTER_LINEAR)
    run("mtcnn, Sandberg absolute margin 32, bilinear", crop=absolute)
    run("mtcnn, margin 32 + subtract train-fold mean (Sandberg's validate_on_lfw)", subtract_mean=True)
    centre = Face(np.array([58.0, 58.0, 192.0, 192.0]), np.zeros((5, 2)), 1.0)
    all_centre = [centre] * len(ps.images)
    run("no detection: 160 px centre crop", fs=all_centre,
        crop=lambda rgb, f: rgb[45:205, 45:205].copy())
    fallback = [f if f is not None else centre for f in faces]
    run("mtcnn, centre box where detection failed", fs=fallback)
    return out


def subtract_train_mean(ps: PairSet, emb: np.ndarray) -> np.ndarray:
    """Sandberg's --subtract_mean: per test fold, subtract the mean embedding of the training folds' images.
    Returns embeddings renormalised; computed per fold, so the pair scores use the right fold's mean."""
    out = emb.copy()
    for f in np.unique(ps.folds):
        train_imgs = np.unique(np.concatenate([ps.a[ps.folds != f], ps.b[ps.folds != f]]))
        test_imgs = np.unique(np.concatenate([ps.a[ps.folds == f], ps.b[ps.folds == f]]))
        mean = np.nanmean(emb[train_imgs], axis=0)
        out[test_imgs] = l2_normalize(emb[test_imgs] - mean)
    return out


def plot_roc(rocs: dict, path: Path) -> None:
    if not rocs:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for model_id, (fpr, tpr) in rocs.items():
        ax.plot(np.maximum(fpr, 1e-4), tpr, label=model_id)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("LFW (deep-funneled), 6,000 pairs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown_table(results: dict) -> str:
    rows = ["| model | LFW acc (10-fold) | LFW TAR@FAR1e-3 | AUC | celeba_dev acc | celeba_dev TAR@FAR1e-3 "
            "| threshold (FAR 1e-3) | embed ms/face (with alignment) | detect ms (1920x1440) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for model_id, m in results["models"].items():
        rows.append(
            f"| {model_id}{' (default)' if model_id == results['default'] else ''} "
            f"| {100 * m['accuracy_mean']:.2f}% ± {100 * m['accuracy_std']:.2f} | {100 * m['tar_at_far_1e-3']:.1f}% "
            f"| {m['roc_auc']:.4f} | {100 * m.get('celeba_dev_accuracy_mean', float('nan')):.2f}% "
            f"| {100 * m.get('celeba_dev_tar_at_far_1e-3', float('nan')):.1f}% | {m['threshold_at_far_1e-3']:.3f} "
            f"| {m['embed_ms_per_face']} ({m.get('align_embed_ms_per_face', '-')}) | {m['detect_ms_1920x1440']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
