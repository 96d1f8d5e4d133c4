"""Open-set identification and person templates, on the embeddings ``bench.lfw`` computed (run it first).

    .venv/bin/python -m bench.identify

1. **Template**: a person is all their enrolled faces. On LFW people with >= 3 photos: enroll all but one
   photo, probe with the held-out one; score a probe against a person either by its best-matching face
   (``best_face``) or by the renormalised mean of their faces (``mean_template``). TAR at FAR 1e-3 / 1e-2
   over genuine probes vs every other person's template.
2. **Open-set false accepts**: identify's threshold comes from ``identify_target_far`` and the gallery size
   (``service/core/calibration.py``). We enroll N people, send strangers (people not enrolled), and count how often
   a stranger is matched to anyone, for galleries of several sizes, on LFW (out of sample: the threshold curve
   is measured on celeba_dev) and on celeba_dev. Also reported: how often enrolled people's other photos are
   identified correctly (rank-1 above threshold), and what verify's fixed threshold would have done.

Writes ``bench/results/identify.json``.
"""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from service.config import load_settings
from service.core.calibration import Calibration
from service.core.vectors import fuse, l2_normalize, parse_fusion

from .datasets import DATA, load_celeba, load_lfw
from .lfw import CACHE, RESULTS, combine
from .metrics import tar_at_far

RNG_SEED = 7


def embeddings(ps, model_id: str, flip: bool) -> np.ndarray:
    """The set's embeddings for ``model_id`` as served; a fusion is built from its parts' embeddings."""
    parts = parse_fusion(model_id)
    if parts is not None:
        return fuse([embeddings(ps, name, flip) for name, _ in parts], [w for _, w in parts])
    files = sorted(CACHE.glob(f"embeddings-{ps.name}-{model_id}-*.npz"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise SystemExit(f"no cached embeddings for {ps.name}/{model_id}: run `python -m bench.lfw` first")
    data = np.load(files[-1])
    return combine(data["plain"], data["mirrored"], flip)


def by_person(images: list[str], emb: np.ndarray) -> dict[str, list[int]]:
    people: dict[str, list[int]] = defaultdict(list)
    for i, rel in enumerate(images):
        if not np.isnan(emb[i]).any():
            people[rel.split("/")[0]].append(i)
    return people


def templates(images: list[str], emb: np.ndarray) -> dict:
    people = {p: ix for p, ix in by_person(images, emb).items() if len(ix) >= 3}
    names = sorted(people)
    probes = np.array([people[p][-1] for p in names])
    enrolled = [people[p][:-1] for p in names]
    mean_t = l2_normalize(np.stack([emb[ix].mean(0) for ix in enrolled]))
    sims_probe_faces = emb[probes] @ emb.T  # probe x all images
    best = np.stack([sims_probe_faces[:, ix].max(1) for ix in enrolled], axis=1)  # probe x person
    mean = emb[probes] @ mean_t.T
    out = {"people": len(names), "enrolled_faces_per_person_mean": round(float(np.mean([len(e) for e in enrolled])), 2)}
    eye = np.eye(len(names), dtype=bool)
    for label, scores in (("best_face", best), ("mean_template", mean)):
        genuine, impostor = scores[eye], scores[~eye]
        r = {}
        for far in (1e-2, 1e-3):
            tar, _ = tar_at_far(genuine, impostor, far)
            r[f"tar_at_far_{far:.0e}".replace("e-0", "e-")] = round(tar, 4)
        r["rank1"] = round(float((scores.argmax(1) == np.arange(len(names))).mean()), 4)
        out[label] = r
    out["winner"] = max(("mean_template", "best_face"),
                        key=lambda k: (out[k]["tar_at_far_1e-3"], out[k]["rank1"], out[k]["tar_at_far_1e-2"]))
    return out


def open_set(images: list[str], emb: np.ndarray, model_id: str, sizes: list[int], target: float, verify: float,
             faces_per_person: int = 1, trials: int = 5) -> list[dict]:
    people = {p: ix for p, ix in by_person(images, emb).items()}
    rng = np.random.default_rng(RNG_SEED)
    names = sorted(people)
    rows = []
    calibration = Calibration(load_settings().decisions.calibration_file)
    for size in sizes:
        if size >= len(names):
            continue
        fa, fa_verify, strangers, hits, mates = 0, 0, 0, 0, 0
        threshold = None
        for _ in range(trials):
            order = rng.permutation(len(names))
            gallery_people = [names[i] for i in order[:size]]
            stranger_people = [names[i] for i in order[size:]]
            g_index, g_owner = [], []
            for k, p in enumerate(gallery_people):
                chosen = people[p][:faces_per_person]
                g_index += chosen
                g_owner += [k] * len(chosen)
            g_emb, g_owner = emb[g_index], np.array(g_owner)
            threshold, _ = calibration.identify_threshold(model_id, len(g_index), target, verify)
            s_index = [people[p][0] for p in stranger_people]
            s_best = (emb[s_index] @ g_emb.T).max(1)
            fa += int((s_best >= threshold).sum())
            fa_verify += int((s_best >= verify).sum())
            strangers += len(s_index)
            m_probe, m_owner = [], []
            for k, p in enumerate(gallery_people):
                for i in people[p][faces_per_person:]:
                    m_probe.append(i)
                    m_owner.append(k)
            if m_probe:
                sims = emb[m_probe] @ g_emb.T
                top = sims.argmax(1)
                ok = (g_owner[top] == np.array(m_owner)) & (sims.max(1) >= threshold)
                hits += int(ok.sum())
                mates += len(m_probe)
        rows.append({"gallery_people": size, "faces_per_person": faces_per_person, "trials": trials,
                     "identify_threshold": round(float(threshold), 4), "target_open_set_far": target,
                     "stranger_probes": strangers, "open_set_far": round(fa / strangers, 4),
                     "open_set_far_at_verify_threshold": round(fa_verify / strangers, 4),
                     "enrolled_probes": mates, "identified_correctly": round(hits / mates, 4) if mates else None})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    settings = load_settings()
    model_id = settings.recognition.model
    verify = Calibration(settings.decisions.calibration_file).verify_threshold(model_id)
    lfw = load_lfw(DATA / "lfw")
    celeba = load_celeba(DATA / "celeba_dev")
    e_lfw = embeddings(lfw, model_id, settings.recognition.flip_tta)
    e_celeba = embeddings(celeba, model_id, settings.recognition.flip_tta)
    result = {"model": model_id, "verify_threshold": round(verify, 4),
              "templates_lfw": templates(lfw.images, e_lfw),
              "templates_celeba_dev": templates(celeba.images, e_celeba),
              "open_set_lfw": open_set(lfw.images, e_lfw, model_id, [10, 100, 1000, 3000],
                                       settings.decisions.identify_target_far, verify),
              "open_set_celeba_dev": open_set(celeba.images, e_celeba, model_id, [25, 75, 125],
                                              settings.decisions.identify_target_far, verify, trials=20)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "identify.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("templates_lfw", "templates_celeba_dev")}, indent=1))


if __name__ == "__main__":
    main()
