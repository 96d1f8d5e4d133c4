"""Open-set identification measured as NIST's 1:N track does: FNIR at a fixed FPIR, per gallery size.

    .venv/bin/python -m bench.open_set            # ~25 min on 2 shared cores; needs bench.lfw's cached embeddings

A *mated* search is a photo of an enrolled person; it misses (FNIR) unless its own person is the best
candidate and the decision rule accepts. A *non-mated* search is a photo of someone not enrolled; it is a false
positive (FPIR) when the rule accepts anyone. Labels are cleaned first (``bench/identity_merges.json``).

People are split in two by a hash of their name: everything tunable (the rule's parameter, its thresholds per
gallery size, the tail fits, the synthetic generator) is chosen on the *training* people only; every FNIR and
FPIR reported is on the *test* people (bootstrap 95% intervals over test people).

**Measured** (``measured: true``): real galleries of 100 to 4,000 LFW people and 100 celeba_dev people (random
draws of people, one photo enrolled, or up to 3 where the person has more than one, or a random 1 to 5 per
person, ``photos_enrolled: "1-5"``), every other photo of an enrolled person as a mated search, every photo
searched against the gallery without its own person as a non-mated search.

**Modelled** (``measured: false``): galleries of 1 to 1,000,000 synthetic people drawn from a Gaussian fitted
to the training people's single-photo embeddings (``bench.scale``'s generator), searched exactly with numpy
by every real photo. The generator's impostor tails are lighter than real ones, so every synthetic score is
mapped through the quantile map from the synthetic to the real impostor distribution of the probe's data set
(real: every different-person pair among training people; beyond the deepest quantile real pairs resolve, a
generalised Pareto tail fitted to them with the top few pairs censored, so a remaining label error cannot
drag it). A gallery of k-photo templates is mapped onto the real scores of photos against other training
people's templates of k photos (a mean of several photos sits nearer everyone, strangers included). A mated
search adds the real score against the person's real template.

The decision rule: a candidate is accepted when ``s1 >= verify threshold`` and ``s1 - beta * max(s2, m0) >=
T(N, FPIR, k)``, where s1, s2 are the best and second-best candidates' similarities, m0 the median impostor
score and k the number of photos in the best candidate's template (``beta = 0`` is a plain threshold; ``beta``
chosen on training people, one photo). ``T`` is tabulated per template size k = 1..5 (the strictest of the
modelled k-photo galleries and, where training people have k photos, real galleries of 30 to 300 of them;
never below the table for fewer photos), gallery size and FPIR in ``bench/results/open_set.json``
(``thresholds_by_photos``), which the service reads (``service/core/calibration.py``). The modelled galleries
the thresholds are fitted on map their scores onto a people bound of the real tails (``_people95``): at each
exceedance probability the 95% quantile over resamples of the training people, since a false accept is a
property of a pair of people (a look-alike enrolled) and celeba_dev's 73 training people say little about the
look-alikes among people not seen; every reported figure uses the point tails.
"""
from __future__ import annotations

import argparse
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import CensoredData, genpareto

from service.config import load_settings
from service.core.calibration import Calibration, IdentifyRule

from . import snorm as sn
from .datasets import DATA, load_celeba, load_lfw
from .identify import embeddings
from .identities import person_labels
from .lfw import RESULTS

GRID = [1, 3, 10, 30, 100, 300, 1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
BETAS = (0.0, 0.25, 0.5, 0.75, 1.0)
ZBETAS = (0.0, 0.25, 0.5)   # the margin on normalised scores, s-norm's rules
FPIRS = (0.03, 0.01, 0.003, 0.001)
REPORTED_FPIRS = (0.01, 0.003)
MEASURED = {"lfw": [100, 300, 1000, 2000, 4000], "celeba_dev": [100]}
PHOTOS = (1, 2, 3, 4, 5)   # template sizes the rule is tabulated for (a larger template uses the largest)
MIXED = "1-5"             # photos_enrolled of a gallery whose people have 1 to 5 photos each
BLOCK = 1000          # synthetic gallery processed in blocks; galleries of >= 1,000 are whole blocks
DRAWS = 20            # independent synthetic galleries per size (where the 1M people allow)
SEED = 22


@dataclass
class Domain:
    name: str
    emb: np.ndarray        # served embeddings of the images with a face
    person: np.ndarray     # person index per image
    names: list[str]
    train: np.ndarray      # per person: in the training half

    def photos(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.person == p) for p in range(len(self.names))]


def is_train(name: str) -> bool:
    return zlib.crc32(name.encode()) % 2 == 0


def load_domain(ps, model_id: str, flip: bool) -> Domain:
    emb = embeddings(ps, model_id, flip)
    ok = ~np.isnan(emb).any(axis=1)
    labels = person_labels(ps)[ok]
    names, person = np.unique(labels, return_inverse=True)
    return Domain(ps.name, emb[ok].astype(np.float32), person, list(names),
                  np.array([is_train(n) for n in names]))


def enrol(dom: Domain, k: int | np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(templates per person, mated-probe flag per image, photos in each template): up to ``k`` photos (one
    number, or one per person) enrolled (the mean template the service keeps), always leaving one out where the
    person has two or more; the rest are mated probes."""
    templates = np.zeros((len(dom.names), dom.emb.shape[1]), np.float32)
    probe = np.zeros(len(dom.emb), bool)
    kept = np.ones(len(dom.names), np.int64)
    wanted = np.broadcast_to(np.asarray(k), (len(dom.names),))
    for p, rows in enumerate(dom.photos()):
        rows = rng.permutation(rows)
        n = min(int(wanted[p]), len(rows) - 1) if len(rows) > 1 else 1
        t = dom.emb[rows[:n]].mean(axis=0)
        templates[p] = t / np.linalg.norm(t)
        probe[rows[n:]] = True
        kept[p] = n
    return templates, probe, kept


def first_photos(dom: Domain, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(templates, photos in each): ``k`` random photos per person (all of them where they have fewer), none
    left out: galleries for non-mated searches only."""
    templates = np.zeros((len(dom.names), dom.emb.shape[1]), np.float32)
    kept = np.zeros(len(dom.names), np.int64)
    for p, rows in enumerate(dom.photos()):
        rows = rng.permutation(rows)[:k]
        t = dom.emb[rows].mean(axis=0)
        templates[p], kept[p] = t / np.linalg.norm(t), len(rows)
    return templates, kept


@dataclass
class Searches:
    """One row per (gallery draw, probe photo): the mate's score (NaN when the person is not enrolled or
    the photo is one of their enrolled ones) and the best two scores over the gallery without the person; and
    how many photos the mate's template and the best other candidate's template hold (the threshold depends
    on the template the decision is about)."""
    mate: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    person: np.ndarray
    mate_photos: np.ndarray
    s1_photos: np.ndarray
    # the raw similarities of the mate and of the best other candidate, which verify's floor applies to (the
    # same as mate and s1 unless those are normalised scores; +inf where a model does not know it)
    raw_mate: np.ndarray = None  # type: ignore[assignment]
    raw1: np.ndarray = None  # type: ignore[assignment]

    FIELDS = ("mate", "s1", "s2", "person", "mate_photos", "s1_photos", "raw_mate", "raw1")

    def __post_init__(self) -> None:
        if self.raw_mate is None:
            self.raw_mate = self.mate
        if self.raw1 is None:
            self.raw1 = self.s1

    def take(self, mask: np.ndarray) -> Searches:
        return Searches(*(getattr(self, f)[mask] for f in self.FIELDS))

    @staticmethod
    def concat(parts: list[Searches]) -> Searches:
        return Searches(*(np.concatenate([getattr(s, f) for s in parts]) for f in Searches.FIELDS))


def top2(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[-1] == 1:
        return scores[..., 0], np.full(scores.shape[:-1], -1.0, np.float32)
    part = np.partition(scores, -2, axis=-1)[..., -2:]
    return part[..., 1], part[..., 0]


def real_searches(dom: Domain, templates: np.ndarray, probe: np.ndarray, kept: np.ndarray, size: int, trials: int,
                  rng: np.random.Generator, eligible: np.ndarray | None = None,
                  searchers: np.ndarray | None = None,
                  z: np.ndarray | None = None) -> Searches | tuple[Searches, Searches]:
    """Searches of every photo (of ``searchers``' people, default all) against ``trials`` random galleries of
    ``size`` people (drawn from ``eligible``, default all). With ``z`` (every photo x person's normalised
    score), also the same galleries decided on normalised scores (the best candidate the best normalised)."""
    pool = len(dom.names) if eligible is None else eligible  # (an int draws as before: the same galleries)
    rows = np.arange(len(dom.emb)) if searchers is None else np.flatnonzero(np.isin(dom.person, searchers))
    emb, person = dom.emb[rows], dom.person[rows]
    scores = emb @ templates.T  # photo x person
    zs = None if z is None else z[rows]
    out, out_z = [], []
    at = np.arange(len(rows))
    for _ in range(trials):
        gallery = rng.choice(pool, size=size, replace=False)
        own = person[:, None] == gallery[None, :]
        enrolled = own.any(axis=1)
        mate = np.where(enrolled & probe[rows], scores[at, person], np.nan)
        others = np.where(own, -2.0, scores[:, gallery])
        s1, s2 = top2(others)
        best = gallery[np.argmax(others, axis=1)]
        out.append(Searches(mate, s1, s2, person, kept[person], kept[best]))
        if zs is not None:
            zo = np.where(own, -np.inf, zs[:, gallery])
            z1, z2 = top2(zo)
            pick = np.argmax(zo, axis=1)
            out_z.append(Searches(np.where(np.isnan(mate), np.nan, zs[at, person]), z1, z2, person, kept[person],
                                  kept[gallery[pick]], mate, others[at, pick]))
    if zs is None:
        return Searches.concat(out)
    return Searches.concat(out), Searches.concat(out_z)


# --- the synthetic gallery --------------------------------------------------------------------------------

def generator(doms: list[Domain], rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` synthetic people: a Gaussian fitted to one photo of each training person of LFW (bench.scale's
    generator, on single photos because a one-photo gallery holds single photos), renormalised."""
    lfw = doms[0]
    first = [rows[0] for p, rows in enumerate(lfw.photos()) if lfw.train[p]]
    x = lfw.emb[first].astype(np.float64)
    out = rng.multivariate_normal(x.mean(axis=0), np.cov(x, rowvar=False), size=size, method="cholesky")
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


BINS = np.linspace(0.0, 1.0, 4001)


def _walk(probes: np.ndarray, domain_of: np.ndarray, synth: np.ndarray,
          score: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
          top: Callable[[np.ndarray, np.ndarray], np.ndarray], width: int,
          bin_of: Callable[[np.ndarray], np.ndarray], n_bins: int,
          label: str) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """The walk over the synthetic gallery that raw and normalised scores share. ``score(people)`` is (the
    probes' scores against those people, their raw similarities); ``top(scores, raw)`` the ``width`` numbers kept
    per probe and gallery (over the last axis). Per probe and block of BLOCK people: ``top``; per data set, a
    histogram of every score in ``n_bins`` bins (``bin_of``, for the quantile map); and, for galleries smaller
    than a block, ``top`` of DRAWS disjoint small galleries taken from the first block."""
    n_blocks = len(synth) // BLOCK
    best = np.zeros((len(probes), n_blocks, width), np.float32)
    hist = np.zeros((int(domain_of.max()) + 1, n_bins), np.int64)
    step = 5
    started = time.monotonic()
    for b in range(0, n_blocks, step):
        scores, raw = score(synth[b * BLOCK:(b + step) * BLOCK])
        nb = scores.shape[1] // BLOCK
        best[:, b:b + nb] = top(scores.reshape(len(probes), nb, BLOCK), raw.reshape(len(probes), nb, BLOCK))
        binned = bin_of(scores)
        for d in range(hist.shape[0]):
            hist[d] += np.bincount(binned[domain_of == d].ravel(), minlength=n_bins)
        if b % 100 == 0:
            print(f"  synthetic{label} {b * BLOCK:,}/{len(synth):,} ({time.monotonic() - started:.0f} s)", flush=True)
    small = {}
    for n in (g for g in GRID if g < BLOCK):
        draws = min(DRAWS, BLOCK // n)
        scores, raw = score(synth[:draws * n])
        small[n] = top(scores.reshape(len(probes), draws, n), raw.reshape(len(probes), draws, n))
    return best, hist, small


def synthetic_blocks(probes: np.ndarray, domain_of: np.ndarray, synth: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                               dict[int, tuple]]:
    """Per probe and block of BLOCK synthetic people: the best two scores; per data set, a histogram of every
    synthetic score (for the quantile map); and, for galleries smaller than a block, the best two of DRAWS
    disjoint small galleries taken from the first block."""
    def raw_scores(people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = probes @ people.T
        return scores, scores

    def bin_of(scores: np.ndarray) -> np.ndarray:
        return np.clip((scores * (len(BINS) - 1)).astype(np.int64), 0, len(BINS) - 2)

    best, hist, small = _walk(probes, domain_of, synth, raw_scores, lambda s, _: np.stack(top2(s), axis=-1), 2,
                              bin_of, len(BINS) - 1, "")
    return best, hist, {n: (t[..., 0], t[..., 1]) for n, t in small.items()}


ZBINS = np.linspace(-10.0, 15.0, 10001)  # histogram of normalised (s-norm) scores


def _zbin(z: np.ndarray) -> np.ndarray:
    return np.clip(((z - ZBINS[0]) / (ZBINS[-1] - ZBINS[0]) * (len(ZBINS) - 1)).astype(np.int64), 0, len(ZBINS) - 2)


def _ztop(z: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """(..., 3): the best two normalised scores over the last axis and the raw score of the best."""
    z1, z2 = top2(z)
    if z.shape[-1] == 1:
        z2 = np.full(z1.shape, ZBINS[0], np.float32)
    at = np.take_along_axis(raw, np.argmax(z, axis=-1)[..., None], axis=-1)[..., 0]
    return np.stack([z1, z2, at], axis=-1)


def synthetic_blocks_z(probes: np.ndarray, domain_of: np.ndarray, synth: np.ndarray, cohort: sn.Cohort,
                       probe_mean: np.ndarray, probe_std: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """``synthetic_blocks`` for s-norm: per probe and block the best two normalised scores and the raw score of
    the best (the verify floor is on it); per data set a histogram of every normalised synthetic score; and
    the small galleries. A synthetic person's cohort statistics are its scores against the same cohort."""
    pa, pb = (0.5 / probe_std)[:, None].astype(np.float32), (0.5 * probe_mean / probe_std)[:, None].astype(np.float32)

    def normalised(people: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = sn.cohort_stats(people @ cohort.emb.T)
        raw = probes @ people.T
        ta, tb = (0.5 / std)[None, :].astype(np.float32), (0.5 * mean / std)[None, :].astype(np.float32)
        return raw * (pa + ta) - (pb + tb), raw

    return _walk(probes, domain_of, synth, normalised, _ztop, 3, _zbin, len(ZBINS) - 1, " s-norm")


def gallery_top_z(best: np.ndarray, small: dict, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(draws x probes) best two normalised scores over ``n`` synthetic people and the raw score of the best."""
    if n < BLOCK:
        t = small[n]
    else:
        per = n // BLOCK
        draws = min(DRAWS, best.shape[1] // per)
        merged = best[:, :draws * per].reshape(len(best), draws, per, 3)
        z1, z2 = top2(np.concatenate([merged[..., 0], merged[..., 1]], axis=-1))
        at = np.take_along_axis(merged[..., 2], np.argmax(merged[..., 0], axis=-1)[..., None], axis=-1)[..., 0]
        t = np.stack([z1, z2, at], axis=-1)
    return t[..., 0].T, t[..., 1].T, t[..., 2].T


def gallery_top2(best: np.ndarray, small: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(draws x probes) best two scores over ``n`` synthetic people, in up to DRAWS disjoint galleries."""
    if n < BLOCK:
        s1, s2 = small[n]
        return s1.T, s2.T
    per = n // BLOCK
    draws = min(DRAWS, best.shape[1] // per)
    merged = best[:, :draws * per].reshape(len(best), draws, per * 2)
    s1, s2 = top2(merged)
    return s1.T, s2.T


def impostor_pairs(dom: Domain, train: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, person of one photo, person of the other) of every different-person pair among the (training
    or test) people's photos."""
    keep = dom.train[dom.person] == train
    e, who = dom.emb[keep], dom.person[keep]
    out, first, second = [], [], []
    for start in range(0, len(e), 1024):
        s = e[start:start + 1024] @ e.T
        rows = np.arange(start, min(start + 1024, len(e)))[:, None]
        pick = (np.arange(len(e))[None, :] > rows) & (who[rows] != who[None, :])
        out.append(s[pick])
        i, j = np.nonzero(pick)
        first.append(who[start + i].astype(np.int32))
        second.append(who[j].astype(np.int32))
    return np.concatenate(out), np.concatenate(first), np.concatenate(second)


def impostor_scores(dom: Domain, train: bool) -> np.ndarray:
    """Every different-person pair among the (training or test) people's photos."""
    return impostor_pairs(dom, train)[0]


def template_impostor_pairs(dom: Domain, k: int, train: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, the photo's person, the template's person) of every (photo, template of ``k`` photos of someone
    else) pair among the (training or test) people with at least ``k`` photos: what a stranger scores against a
    gallery of k-photo templates. A mean of several photos sits nearer its person's centre, and strangers score
    higher against it than against one photo. ``k = 1`` is every different-person pair of photos."""
    if k == 1:
        return impostor_pairs(dom, train)
    order = np.random.default_rng(SEED + 100 + k)
    photos = dom.photos()
    people = [p for p, rows in enumerate(photos) if dom.train[p] == train and len(rows) >= k]
    t = np.stack([dom.emb[order.permutation(photos[p])[:k]].mean(axis=0) for p in people])
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    keep = dom.train[dom.person] == train
    scores = dom.emb[keep] @ t.T
    who, owner = np.broadcast_arrays(dom.person[keep][:, None], np.array(people)[None, :])
    pick = who != owner
    return scores[pick], who[pick].astype(np.int32), owner[pick].astype(np.int32)


def template_impostor_pairs_z(dom: Domain, k: int, train: bool, cohort: sn.Cohort, d: int,
                              photo_stats: sn.Stats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``template_impostor_pairs`` (the same templates) with normalised scores: each side's cohort statistics
    without both people (``bench.snorm``). ``photo_stats``: every photo of ``dom``'s, own person left out."""
    keep = np.flatnonzero(dom.train[dom.person] == train)
    if k == 1:
        e, who = dom.emb[keep], dom.person[keep]
        out, first, second = [], [], []
        for start in range(0, len(e), 1024):
            s = e[start:start + 1024] @ e.T
            rows = np.arange(start, min(start + 1024, len(e)))[:, None]
            i, j = np.nonzero((np.arange(len(e))[None, :] > rows) & (who[rows] != who[None, :]))
            i += start
            out.append(sn.z_pairs(s[i - start, j], photo_stats, keep[i], who[i], photo_stats, keep[j], who[j]))
            first.append(who[i].astype(np.int32))
            second.append(who[j].astype(np.int32))
        return np.concatenate(out), np.concatenate(first), np.concatenate(second)
    order = np.random.default_rng(SEED + 100 + k)
    photos = dom.photos()
    people = np.array([p for p, rows in enumerate(photos) if dom.train[p] == train and len(rows) >= k])
    t = np.stack([dom.emb[order.permutation(photos[p])[:k]].mean(axis=0) for p in people])
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    t_stats = sn.stats(t, cohort, d, people, len(dom.names))
    scores = dom.emb[keep] @ t.T
    r, c = np.broadcast_arrays(np.arange(len(keep))[:, None], np.arange(len(people))[None, :])
    pick = dom.person[keep][r] != people[c]
    r, c = r[pick], c[pick]
    z = sn.z_pairs(scores[r, c], photo_stats, keep[r], dom.person[keep][r], t_stats, c, people[c])
    return z, dom.person[keep][r].astype(np.int32), people[c].astype(np.int32)


def template_stats(dom: Domain, templates: np.ndarray, cohort: sn.Cohort, d: int) -> sn.Stats:
    """Cohort statistics of a gallery's templates (template ``p`` is person ``p``'s)."""
    return sn.stats(templates, cohort, d, np.arange(len(dom.names)), len(dom.names))


def template_impostor_scores(dom: Domain, k: int, train: bool) -> np.ndarray:
    """The scores of ``template_impostor_pairs``."""
    return template_impostor_pairs(dom, k, train)[0]


@dataclass
class Tail:
    """The real impostor distribution's upper tail: empirical down to ``p_u``, a generalised Pareto beyond,
    fitted to the exceedances of ``u`` with the top ``censored`` pairs counted but their values not trusted."""
    scores: np.ndarray   # sorted descending
    u: float
    p_u: float
    shape: float
    scale: float
    censored: int
    spread: dict[str, list[float]]  # 95% intervals of deep quantiles, refitting resampled exceedances

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """The score exceeded by a fraction ``p`` of impostor pairs."""
        p = np.asarray(p, float)
        k = np.clip(np.floor(p * len(self.scores)).astype(int), 0, len(self.scores) - 1)
        tail = self.u + genpareto.ppf(1 - np.clip(p / self.p_u, 1e-300, 1), self.shape, scale=self.scale)
        return np.where(p >= self.p_u, self.scores[k], tail)

    def summary(self) -> dict:
        return {"pairs": int(len(self.scores)), "u": round(self.u, 4), "p_u": self.p_u,
                "shape": round(self.shape, 4), "scale": round(self.scale, 5), "censored_top_pairs": self.censored,
                "q1e-6": round(float(self.quantile(np.array(1e-6))), 4),
                "q1e-8": round(float(self.quantile(np.array(1e-8))), 4)} | self.spread


def _gpd(y: np.ndarray, censored: int) -> tuple[float, float]:
    """(shape, scale) by maximum likelihood, the ``censored`` largest of ``y`` known only to exceed the next."""
    y = np.sort(y)[::-1]
    data = CensoredData(uncensored=y[censored:], right=np.full(censored, y[censored]))
    shape, _, scale = genpareto.fit(data, floc=0)
    return float(shape), float(scale)


def fit_tail(scores: np.ndarray, exceedances: int = 1000, censored: int = 5, resamples: int = 100) -> Tail:
    """The tail above the ``exceedances``-th highest score. Its uncertainty: the fit repeated on resampled
    exceedances (pairs treated as independent, so the intervals are if anything too narrow)."""
    s = np.sort(scores)[::-1]
    u = float(s[exceedances])
    y = s[:exceedances] - u
    shape, scale = _gpd(y, censored)
    tail = Tail(s, u, exceedances / len(s), shape, scale, censored, {})
    rng = np.random.default_rng(SEED)
    deep = {"q1e-6": [], "q1e-8": []}
    for _ in range(resamples):
        b_shape, b_scale = _gpd(rng.choice(y, size=len(y), replace=True), censored)
        for key, p in (("q1e-6", 1e-6), ("q1e-8", 1e-8)):
            deep[key].append(u + genpareto.ppf(1 - p / tail.p_u, b_shape, scale=b_scale))
    if resamples:
        tail.spread.update({f"{k}_ci95": [round(float(v), 4) for v in np.quantile(q, [0.025, 0.975])]
                            for k, q in deep.items()})
    return tail


PROBS = np.logspace(-12, 0, 481)  # exceedance probabilities on which a people-resampled tail is tabulated
TOP = 0.05                         # above this exceedance probability the point estimate serves (the bulk)


@dataclass
class UpperTail:
    """The impostor tail as it may be among people the training half did not see: at every exceedance
    probability the training pairs resolve (down to ``p_lo``, ten pairs deep), the ``level`` quantile over
    resamples of the training *people* of the score exceeded, never below the point fit (``point``); deeper,
    the point fit raised by the margin it needed at ``p_lo`` (a handful of people cannot say more about the
    shape of the far tail than the fit on all of them).

    Why people, not pairs: a stranger's false accept is a property of a pair of people (a look-alike
    enrolled), and all their photo pairs rise or fall together. celeba_dev's training half is 73 people; its
    test half held more look-alike pairs, and with the point fit its galleries of 1 to 5 photos per person let
    3% of strangers through at a 1% target. Resampling pairs, as ``Tail.spread`` does, sees none of that."""
    point: Tail
    envelope: np.ndarray   # the level quantile at PROBS (where >= p_lo)
    p_lo: float
    level: float
    resamples: int

    def quantile(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, float)
        logs = np.log10(PROBS)
        upper = np.interp(np.log10(np.clip(p, self.p_lo, 1)), logs, self.envelope)
        at_lo = float(np.interp(np.log10(self.p_lo), logs, self.envelope))
        lift = max(at_lo - float(self.point.quantile(np.array(self.p_lo))), 0.0)
        point = self.point.quantile(p)
        return np.where(p >= TOP, point, np.where(p >= self.p_lo, np.maximum(upper, point), point + lift))

    def summary(self) -> dict:
        return {"level": self.level, "people_resamples": self.resamples, "p_lo": float(f"{self.p_lo:.3g}"),
                **{f"q1e-{e}": round(float(self.quantile(np.array(10.0 ** -e))), 4) for e in (4, 6, 8)}}


def people_upper_tail(pairs: tuple[np.ndarray, np.ndarray, np.ndarray], point: Tail, level: float = 0.95,
                      resamples: int = 200) -> UpperTail:
    """``point`` bounded from above by ``resamples`` resamples of the people of ``pairs`` (score, person,
    person): in a resample a pair counts as often as the product of its two people's multiplicities."""
    scores, a, b = pairs
    order = np.argsort(-scores, kind="stable")
    n_top = int(np.ceil(TOP * len(scores)))
    top, a_top, b_top = scores[order[:n_top]], a[order[:n_top]], b[order[:n_top]]
    people = np.unique(np.concatenate([a, b]))
    rng = np.random.default_rng(SEED + 200)
    curves = np.empty((resamples, len(PROBS)))
    for r in range(resamples):
        w = np.bincount(rng.choice(people, size=len(people)), minlength=int(people.max()) + 1).astype(np.float64)
        c = np.cumsum(w[a_top] * w[b_top]) / float(np.dot(w[a], w[b]))
        curves[r] = top[np.minimum(np.searchsorted(c, PROBS), n_top - 1)]
    envelope = np.maximum.accumulate(np.quantile(curves, level, axis=0)[::-1])[::-1]
    return UpperTail(point, envelope, 10 / len(scores), level, resamples)


def quantile_map(hist: np.ndarray, tail: Tail | UpperTail,
                 edges: np.ndarray = BINS) -> tuple[np.ndarray, np.ndarray]:
    """(synthetic score, real score at the same exceedance probability) on the histogram's bin edges."""
    above = np.concatenate([np.cumsum(hist[::-1])[::-1], [0]]) / hist.sum()
    keep = above > 0
    return edges[keep], tail.quantile(above[keep])


def apply_map(scores: np.ndarray, mapping: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.interp(scores, mapping[0], mapping[1]).astype(np.float32)


# --- rules and their calibration ---------------------------------------------------------------------------

def decision(beta: float, m0: float, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    return IdentifyRule.score(beta, m0, s1, s2)


def threshold_for(s: Searches, beta: float, m0: float, floor: float, fpir: float) -> float:
    """The lowest decision threshold at which at most ``fpir`` of these non-mated searches accept anyone
    (-inf where verify's threshold alone keeps them below it)."""
    d = np.sort(decision(beta, m0, s.s1, s.s2)[s.raw1 >= floor])[::-1]
    allowed = int(np.floor(fpir * len(s.s1)))
    return float(np.nextafter(d[allowed], np.float32(np.inf))) if allowed < len(d) else float("-inf")


Thresholds = Callable[[np.ndarray], np.ndarray]   # photos in the decided-on template -> its threshold
Decide = Callable[[int, float], tuple[float, float, Thresholds]]  # (N, FPIR) -> (beta, m0, thresholds)


def outcome(s: Searches, beta: float, m0: float, floor: float,
            thresholds: Thresholds) -> tuple[np.ndarray, np.ndarray]:
    """(mated hit per mated row, non-mated false positive per row): each decided with the threshold of the
    template it is about (the mate's, or the best other candidate's), as the service decides."""
    mated = ~np.isnan(s.mate)
    mate = s.mate[mated]
    hit = ((mate > s.s1[mated]) & (s.raw_mate[mated] >= floor)
           & (decision(beta, m0, mate, s.s1[mated]) >= thresholds(s.mate_photos[mated])))
    fp = (s.raw1 >= floor) & (decision(beta, m0, s.s1, s.s2) >= thresholds(s.s1_photos))
    return hit, fp


def bootstrap(values: np.ndarray, person: np.ndarray, rng: np.random.Generator, n: int = 200) -> list[float]:
    """95% interval of the mean of ``values`` resampling people (their searches are not independent)."""
    if len(values) == 0:
        return [float("nan")] * 2
    people, inverse = np.unique(person, return_inverse=True)
    sums = np.bincount(inverse, weights=values.astype(float), minlength=len(people))
    counts = np.bincount(inverse, minlength=len(people))
    w = rng.multinomial(len(people), np.full(len(people), 1 / len(people)), size=n)
    means = (w @ sums) / np.maximum(w @ counts, 1)
    return [round(float(v), 4) for v in np.quantile(means, [0.025, 0.975])]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=1_000_000, help="largest synthetic gallery")
    parser.add_argument("--trials", type=int, default=5, help="random real galleries per size")
    parser.add_argument("--out", type=Path, default=RESULTS / "open_set.json",
                        help="results file (the service reads the default one; a trial run belongs elsewhere)")
    args = parser.parse_args(argv)
    settings = load_settings()
    model_id = settings.recognition.model
    calibration = Calibration(settings.decisions.calibration_file)
    verify = calibration.verify_threshold(model_id)
    rng = np.random.default_rng(SEED)
    doms = [load_domain(load_lfw(DATA / "lfw"), model_id, settings.recognition.flip_tta),
            load_domain(load_celeba(DATA / "celeba_dev"), model_id, settings.recognition.flip_tta)]
    grid = [n for n in GRID if n <= args.synthetic]

    # Real impostor tails (training people only), per template size, and the synthetic scores of every photo.
    # The thresholds are fitted to the people-bound tails (UpperTail: what people the training half did not
    # see may score); every reported figure uses the point tails (the best estimate of the real distribution).
    tails_k: dict[tuple[str, int], Tail] = {}
    upper_k: dict[tuple[str, int], UpperTail] = {}
    for d in doms:
        for k in PHOTOS:
            pairs = template_impostor_pairs(d, k, True)
            tails_k[(d.name, k)] = fit_tail(pairs[0], exceedances=1000 if d.name == "lfw" else 300)
            upper_k[(d.name, k)] = people_upper_tail(pairs, tails_k[(d.name, k)])
            del pairs
    tails = {d.name: tails_k[(d.name, 1)] for d in doms}
    m0 = round(float(np.median(impostor_scores(doms[0], True))), 4)
    print(json.dumps({f"{name} k={k}": t.summary() for (name, k), t in tails_k.items()}), flush=True)
    synth = generator(doms, rng, args.synthetic)
    probes = np.concatenate([d.emb for d in doms])
    domain_of = np.concatenate([np.full(len(d.emb), i) for i, d in enumerate(doms)])
    best, hist, small = synthetic_blocks(probes, domain_of, synth)
    # s-norm: the cohort (one photo of each training person), every photo's cohort statistics (own person left
    # out), the real normalised impostor tails per template size (point and people bound, as for raw scores),
    # and the synthetic galleries' normalised scores, mapped onto those tails as raw scores are onto theirs
    cohort = sn.build(doms)
    photo_stats = [sn.stats(d.emb, cohort, i, d.person, len(d.names)) for i, d in enumerate(doms)]
    ztails_k: dict[tuple[str, int], Tail] = {}
    zupper_k: dict[tuple[str, int], UpperTail] = {}
    zm0 = 0.0
    for i, d in enumerate(doms):
        for k in PHOTOS:
            pairs = template_impostor_pairs_z(d, k, True, cohort, i, photo_stats[i])
            if i == 0 and k == 1:
                zm0 = round(float(np.median(pairs[0])), 4)
            ztails_k[(d.name, k)] = fit_tail(pairs[0], exceedances=1000 if d.name == "lfw" else 300, resamples=0)
            zupper_k[(d.name, k)] = people_upper_tail(pairs, ztails_k[(d.name, k)])
            del pairs
    print("s-norm tails:", json.dumps({f"{name} k={k}": t.summary() for (name, k), t in zupper_k.items()}),
          flush=True)
    moments = [st.mean_std(np.arange(len(d.emb))) for st, d in zip(photo_stats, doms)]
    zbest, zhist, zsmall = synthetic_blocks_z(probes, domain_of, synth, cohort,
                                              np.concatenate([m for m, _ in moments]),
                                              np.concatenate([v for _, v in moments]))
    del synth
    zmaps = {(d.name, k): quantile_map(zhist[i], ztails_k[(d.name, k)], ZBINS) for i, d in enumerate(doms)
             for k in PHOTOS}
    zupper_maps = {(d.name, k): quantile_map(zhist[i], zupper_k[(d.name, k)], ZBINS) for i, d in enumerate(doms)
                   for k in PHOTOS}
    # the synthetic gallery's scores mapped onto the real impostor scores against templates of k photos
    maps = {(d.name, k): quantile_map(hist[i], tails_k[(d.name, k)]) for i, d in enumerate(doms) for k in PHOTOS}
    upper_maps = {(d.name, k): quantile_map(hist[i], upper_k[(d.name, k)]) for i, d in enumerate(doms)
                  for k in PHOTOS}
    realism = {d.name: {"synthetic_q1e-5": round(float(maps[(d.name, 1)][0][np.searchsorted(
        -np.concatenate([np.cumsum(hist[i][::-1])[::-1], [0]]) / hist[i].sum(), -1e-5)]), 4),
        "real_q1e-5": round(float(tails[d.name].quantile(np.array(1e-5))), 4)} for i, d in enumerate(doms)}
    print(json.dumps(realism), flush=True)

    # Every search: (domain, photos enrolled, gallery size, measured?) -> Searches. Modelled galleries hold
    # templates of k photos each; measured ones up to k (most LFW people have one photo), or 1 to 5 (MIXED).
    searches: dict[tuple[str, int | str, int, bool], Searches] = {}
    bound: dict[tuple[str, int, int], Searches] = {}  # the modelled galleries again, mapped onto the people bound
    # the same searches decided on normalised scores (s-norm)
    zsearches: dict[tuple[str, int | str, int, bool], Searches] = {}
    zbound: dict[tuple[str, int, int], Searches] = {}
    synthetic: dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]] = {}  # (draws x photos) best two, mapped
    for i, dom in enumerate(doms):
        mine = domain_of == i
        for k in PHOTOS:
            templates, probe, kept = enrol(dom, k, np.random.default_rng(SEED + k))
            zfull = sn.z_matrix(dom.emb @ templates.T, photo_stats[i], dom.person,
                                template_stats(dom, templates, cohort, i))
            if k in (1, 3):
                for n in MEASURED[dom.name]:
                    searches[(dom.name, k, n, True)], zsearches[(dom.name, k, n, True)] = real_searches(
                        dom, templates, probe, kept, n, args.trials, rng, z=zfull)  # type: ignore[misc]
            mate_all = np.where(probe, np.einsum("ij,ij->i", dom.emb, templates[dom.person]), np.nan)
            zmate = np.where(probe, zfull[np.arange(len(dom.emb)), dom.person], np.nan)
            del zfull
            for n in grid:
                if (dom.name, k, n) not in synthetic:
                    s1, s2 = gallery_top2(best[mine], {g: (v[0][mine], v[1][mine]) for g, v in small.items()}, n)
                    synthetic[(dom.name, k, n)] = (apply_map(s1, maps[(dom.name, k)]),
                                                   apply_map(s2, maps[(dom.name, k)]))
                s1, s2 = synthetic[(dom.name, k, n)]
                draws = len(s1)
                # a mated search's second best is its best impostor; a non-mated search's, as drawn
                searches[(dom.name, k, n, False)] = Searches(
                    np.tile(mate_all, draws), s1.ravel(), s2.ravel(), np.tile(dom.person, draws),
                    np.tile(kept[dom.person], draws), np.full(s1.size, k))
                # (training people only, as non-mated searches: the thresholds are fitted on strangers)
                raw1, raw2 = gallery_top2(best[mine], {g: (v[0][mine], v[1][mine]) for g, v in small.items()}, n)
                train = np.tile(dom.train[dom.person], draws)
                bound[(dom.name, k, n)] = Searches(
                    np.full(int(train.sum()), np.nan), apply_map(raw1, upper_maps[(dom.name, k)]).ravel()[train],
                    apply_map(raw2, upper_maps[(dom.name, k)]).ravel()[train], np.tile(dom.person, draws)[train],
                    np.tile(kept[dom.person], draws)[train], np.full(int(train.sum()), k))
                z1, z2, r1 = gallery_top_z(zbest[mine], {g: v[mine] for g, v in zsmall.items()}, n)
                zsearches[(dom.name, k, n, False)] = Searches(
                    np.tile(zmate, draws), apply_map(z1, zmaps[(dom.name, k)]).ravel(),
                    apply_map(z2, zmaps[(dom.name, k)]).ravel(), np.tile(dom.person, draws),
                    np.tile(kept[dom.person], draws), np.full(z1.size, k), np.tile(mate_all, draws),
                    apply_map(r1, maps[(dom.name, k)]).ravel())
                zbound[(dom.name, k, n)] = Searches(
                    np.full(int(train.sum()), np.nan), apply_map(z1, zupper_maps[(dom.name, k)]).ravel()[train],
                    apply_map(z2, zupper_maps[(dom.name, k)]).ravel()[train], np.tile(dom.person, draws)[train],
                    np.tile(kept[dom.person], draws)[train], np.full(int(train.sum()), k),
                    np.full(int(train.sum()), np.nan), apply_map(r1, upper_maps[(dom.name, k)]).ravel()[train])
        print(f"searches of {dom.name} ready", flush=True)
    # Measured galleries of people with 1 to 5 photos each (as many as they have, one always left to search).
    mixed_rng = np.random.default_rng(SEED + 50)
    for i, dom in enumerate(doms):
        templates, probe, kept = enrol(dom, mixed_rng.integers(1, 6, len(dom.names)), mixed_rng)
        zfull = sn.z_matrix(dom.emb @ templates.T, photo_stats[i], dom.person,
                            template_stats(dom, templates, cohort, i))
        for n in MEASURED[dom.name]:
            searches[(dom.name, MIXED, n, True)], zsearches[(dom.name, MIXED, n, True)] = real_searches(
                dom, templates, probe, kept, n, args.trials, mixed_rng, z=zfull)  # type: ignore[misc]
    # Real galleries of training people whose templates all hold exactly k photos, searched by training people:
    # where the data allows (30 people up to 80% of those with k photos), they bound the thresholds for k.
    calib: dict[tuple[str, int, int], Searches] = {}
    zcalib: dict[tuple[str, int, int], Searches] = {}
    calib_rng = np.random.default_rng(SEED + 60)
    for i, dom in enumerate(doms):
        training = np.flatnonzero(dom.train)
        for k in PHOTOS[1:]:
            templates, kept = first_photos(dom, k, np.random.default_rng(SEED + 70 + k))
            eligible = np.flatnonzero(dom.train & (kept == k))
            zfull = sn.z_matrix(dom.emb @ templates.T, photo_stats[i], dom.person,
                                template_stats(dom, templates, cohort, i))
            for n in (n for n in grid if 30 <= n <= 0.8 * len(eligible)):
                calib[(dom.name, k, n)], zcalib[(dom.name, k, n)] = real_searches(  # type: ignore[misc]
                    dom, templates, np.zeros(len(dom.emb), bool), kept, n, args.trials, calib_rng, eligible,
                    training, z=zfull)
    print("real k-photo calibration galleries:", sorted(calib), flush=True)

    def split(s: Searches, dom: Domain, train: bool) -> Searches:
        return s.take(dom.train[s.person] == train)

    # Thresholds per rule and template size from the training people's non-mated searches: the strictest of
    # the data sets, of the modelled galleries (mapped onto the point tails, or onto the people bound) and,
    # where real galleries exist, of the measured ones.
    families = {"raw": (searches, bound, calib, m0), "snorm": (zsearches, zbound, zcalib, zm0)}

    def nothing(beta: float, family: str) -> float:
        """The rule's threshold that adds nothing to verify's floor (the second candidate no better than m0)."""
        return verify - beta * m0 if family == "raw" else float(ZBINS[0])

    def table(beta: float, fpir: float, k: int, people_bound: bool, family: str = "raw") -> np.ndarray:
        fs, fb, fc, fm0 = families[family]
        out = []
        for n in grid:
            ts = [threshold_for(fb[(d.name, k, n)] if people_bound else
                                split(fs[(d.name, k, n, False)], d, True), beta, fm0, verify, fpir)
                  for d in doms]
            if k == 1:
                ts += [threshold_for(split(fs[(d.name, 1, n, True)], d, True), beta, fm0, verify, fpir)
                       for d in doms if (d.name, 1, n, True) in fs]
            else:
                ts += [threshold_for(fc[(d.name, k, n)], beta, fm0, verify, fpir)
                       for d in doms if (d.name, k, n) in fc]
            out.append(max(ts))
        # where verify's threshold alone holds the FPIR, the rule's own threshold is the one that adds nothing
        # when the second candidate is no better than m0; and a larger gallery never gets a lower threshold
        return np.maximum.accumulate([t if np.isfinite(t) else nothing(beta, family) for t in out])

    def tables(beta: float, people_bound: bool, family: str = "raw") -> dict[int, dict[float, list[list[float]]]]:
        """Per template size and FPIR; a template of more photos never gets a lower threshold."""
        out: dict[int, dict[float, list[list[float]]]] = {k: {} for k in PHOTOS}
        for f in FPIRS:
            below = np.full(len(grid), -np.inf)
            for k in PHOTOS:
                below = np.maximum(below, table(beta, f, k, people_bound, family))
                # a fitted threshold rounded up (rounded down, it would let the ties at it through); verify's
                # floor rounded down (s1 must reach verify's threshold anyway)
                out[k][f] = [[n, float(np.ceil(t * 1e5) / 1e5 if t > nothing(beta, family) + 1e-9 else
                                       np.floor(t * 1e5) / 1e5)] for n, t in zip(grid, below)]
        return out

    def rule_name(beta: float, people_bound: bool) -> str:
        return (f"margin_{beta:g}_by_photos" if beta else "plain_by_photos") + ("_people95" if people_bound else "")

    # the rule served until the people bound (point tails), and the rules fitted to the people bound
    point_rules = {beta: IdentifyRule(rule_name(beta, False), beta, m0, tables(beta, False)) for beta in BETAS}
    rules = {beta: IdentifyRule(rule_name(beta, True), beta, m0, tables(beta, True)) for beta in BETAS}
    # s-norm rules: the same fit (people bound, real galleries, per template size) on normalised scores
    zrules = {beta: sn.SnormRule(f"snorm_{beta:g}_by_photos_people95", beta, zm0, tables(beta, True, "snorm"))
              for beta in ZBETAS}
    family_of = {r.name: "snorm" for r in zrules.values()}

    def fixed(threshold: float) -> Thresholds:
        return lambda photos: np.full(len(photos), threshold)

    def by_photos(rule: IdentifyRule, n: int, fpir: float) -> Thresholds:
        lookup = np.array([rule.threshold(n, fpir, max(k, 1)) for k in range(max(PHOTOS) + 1)])
        return lambda photos: lookup[np.minimum(photos, max(PHOTOS))]

    def evaluate(rule_name: str, decide: Decide, dom: Domain, k: int | str, n: int, measured: bool, fpir: float,
                 train: bool = False) -> dict:
        fs = families[family_of.get(rule_name, "raw")][0]
        s = split(fs[(dom.name, k, n, measured)], dom, train)
        beta, m0_, thresholds = decide(n, fpir)
        hit, fp = outcome(s, beta, m0_, verify, thresholds)
        mated = ~np.isnan(s.mate)
        rank1 = s.mate[mated] > s.s1[mated]
        row = {"gallery": n, "fpir": fpir, "photos_enrolled": k, "fnir": round(1 - float(hit.mean()), 4),
               "measured": measured, "rule": rule_name, "data": dom.name,
               "fnir_ci95": None if train else [round(1 - v, 4) for v in
                                                bootstrap(hit, s.person[mated], rng)[::-1]],
               "fpir_measured": round(float(fp.mean()), 5),
               "fpir_ci95": None if train else bootstrap(fp, s.person, rng),
               "rank1_miss": round(1 - float(rank1.mean()), 4),
               "mated_searches": int(mated.sum()), "non_mated_searches": int(len(fp)),
               "threshold": round(float(thresholds(np.array([k if isinstance(k, int) else 1]))[0]), 4)}
        if measured and not train:  # the same galleries searched by the training people (who set the thresholds)
            row["fpir_measured_training_people"] = round(float(outcome(
                split(fs[(dom.name, k, n, measured)], dom, True), beta, m0_, verify, thresholds)[1].mean()), 5)
        if not isinstance(k, int):  # whose template the false positives were
            row["false_positives_by_photos"] = {str(p): int(fp[s.s1_photos == p].sum())
                                                for p in np.unique(s.s1_photos)}
        return row

    # Choose beta on the training people: mean FNIR at FPIR 0.01 over the data sets and 1k..1M, one photo.
    selection = {}
    for rule in rules.values():
        fnirs = [evaluate(rule.name, lambda n, f, r=rule: (r.beta, r.m0, by_photos(r, n, f)), d, 1, n, False, 0.01,
                          train=True)["fnir"] for d in doms for n in grid if n >= 1000]
        selection[rule.name] = round(float(np.mean(fnirs)), 4)
    chosen = rules[min(BETAS, key=lambda b: selection[rules[b].name])]
    for rule in zrules.values():
        fnirs = [evaluate(rule.name, lambda n, f, r=rule: (r.beta, r.m0, by_photos(r, n, f)), d, 1, n, False, 0.01,
                          train=True)["fnir"] for d in doms for n in grid if n >= 1000]
        selection[rule.name] = round(float(np.mean(fnirs)), 4)
    zchosen = zrules[min(ZBETAS, key=lambda b: selection[zrules[b].name])]
    print("selection (training people, mean FNIR at FPIR 0.01):", selection, "->", chosen.name, flush=True)
    # the rule served until the people bound: the same rule on the point tails; and until thresholds per
    # template size: that rule's one-photo table for everyone
    served = point_rules[chosen.beta]
    one_table = IdentifyRule(f"margin_{chosen.beta:g}" if chosen.beta else "plain", chosen.beta, chosen.m0,
                             {1: served.tables[1]})

    def previous(n: int, fpir: float) -> tuple[float, float, Thresholds]:
        return 0.0, m0, fixed(calibration.identify_threshold(model_id, n, fpir, verify)[0])

    compared: dict[str, Decide] = {
        "previous": previous,
        one_table.name: lambda n, f: (one_table.beta, one_table.m0, by_photos(one_table, n, f)),
        served.name: lambda n, f: (served.beta, served.m0, by_photos(served, n, f)),
        chosen.name: lambda n, f: (chosen.beta, chosen.m0, by_photos(chosen, n, f))}
    if chosen.beta:
        plain = rules[0.0]
        compared[plain.name] = lambda n, f: (0.0, plain.m0, by_photos(plain, n, f))
    compared[zchosen.name] = lambda n, f: (zchosen.beta, zchosen.m0, by_photos(zchosen, n, f))
    rows = []
    for name, decide in compared.items():
        for (dname, k, n, measured) in searches:
            dom = next(d for d in doms if d.name == dname)
            for fpir in REPORTED_FPIRS:
                rows.append(evaluate(name, decide, dom, k, n, measured, fpir))
    multi = multi_photo(doms, synthetic, chosen, verify, [n for n in grid if n >= 1000], rng)
    expected = {str(f): [[n, next(r["fnir"] for r in rows if r["rule"] == chosen.name and r["data"] == "celeba_dev"
                                  and r["photos_enrolled"] == 1 and r["gallery"] == n and not r["measured"]
                                  and r["fpir"] == f)] for n in grid] for f in REPORTED_FPIRS}
    result = {
        "model": model_id, "command": "python -m bench.open_set", "protocol": __doc__.split("\n\n", 2)[2].strip(),
        "rule": chosen.to_json() | {"expected_fnir_celeba_dev_one_photo": expected},
        "selection": {"criterion": "mean FNIR at FPIR 0.01 on training people, both data sets, N = 1k..1M, "
                                   "one photo, among the rules fitted to the people bound",
                      "fnir_by_rule": selection, "chosen": chosen.name},
        "impostor_tails": {k: t.summary() for k, t in tails.items()},
        "impostor_tails_by_photos": {d.name: {str(k): tails_k[(d.name, k)].summary() for k in PHOTOS} for d in doms},
        "impostor_tails_by_photos_people95": {d.name: {str(k): upper_k[(d.name, k)].summary() for k in PHOTOS}
                                              for d in doms},
        "calibration_galleries": {f"{d} k={k} N={n}": int(len(c.s1)) for (d, k, n), c in sorted(calib.items())},
        "synthetic_realism": realism,
        "snorm": {"rule": zchosen.to_json(), "cohort_people": int(len(cohort.emb)), "top": sn.TOP,
                  "impostor_tails_by_photos": {d.name: {str(k): ztails_k[(d.name, k)].summary() for k in PHOTOS}
                                               for d in doms},
                  "impostor_tails_by_photos_people95": {d.name: {str(k): zupper_k[(d.name, k)].summary()
                                                                 for k in PHOTOS} for d in doms}},
        "verify_threshold": round(verify, 4), "multi_photo": multi, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(result))
    plot(rows, args.out.with_suffix(".png"), chosen.name)
    print(markdown(rows, [one_table.name, served.name, chosen.name, zchosen.name]))


def dump(result: dict) -> str:
    """The results as JSON with one row per line (a file to read and diff, not 15,000 lines)."""
    lines = []
    for key, value in result.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join("  " + json.dumps(r) for r in value)
            lines.append(f"{json.dumps(key)}: [\n{rows}\n ]")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(lines) + "\n}\n"


def multi_photo(doms: list[Domain], synthetic: dict, rule: IdentifyRule, verify: float, sizes: list[int],
                rng: np.random.Generator) -> list[dict]:
    """The gain of enrolling 1, 2, 3 and 5 photos (celeba_dev: up to 4, its people have 5), on the same
    searches: test people with more photos than the most enrolled, the same held-out photos as probes, in
    galleries of templates of as many photos (their strangers' scores and the rule's threshold for that size)."""
    out = []
    for dom in doms:
        most = 5 if dom.name == "lfw" else 4
        order = np.random.default_rng(SEED)
        people = [(p, order.permutation(rows)) for p, rows in enumerate(dom.photos())
                  if len(rows) > most and not dom.train[p]]
        probes = np.concatenate([rows[most:] for _, rows in people])
        owner = np.concatenate([[i] * (len(rows) - most) for i, (_, rows) in enumerate(people)])
        for k in sorted({1, 2, 3, most}):
            t = np.stack([dom.emb[rows[:k]].mean(axis=0) for _, rows in people])
            t /= np.linalg.norm(t, axis=1, keepdims=True)
            mate = np.einsum("ij,ij->i", dom.emb[probes], t[owner])
            for n in sizes:
                s1 = synthetic[(dom.name, k, n)][0][:, probes]
                for fpir in REPORTED_FPIRS:
                    hit = ((mate > s1) & (mate >= verify) &
                           (rule.score(rule.beta, rule.m0, mate, s1) >= rule.threshold(n, fpir, k))).ravel()
                    who = np.tile(owner, len(s1))
                    out.append({"data": dom.name, "people": len(people), "probes": int(len(probes)),
                                "photos_enrolled": k, "gallery": n, "fpir": fpir, "rule": rule.name,
                                "fnir": round(1 - float(hit.mean()), 4),
                                "fnir_ci95": [round(1 - v, 4) for v in bootstrap(hit, who, rng)[::-1]],
                                "measured": False})
    return out


def plot(rows: list[dict], path: Path, rule: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"lfw": "tab:blue", "celeba_dev": "tab:red"}
    for name, dash in (("previous", ":"), (rule, "-")):
        for data, colour in styles.items():
            for k, marker in ((1, "o"), (3, "s")):
                pick = [r for r in rows if r["data"] == data and r["photos_enrolled"] == k and r["fpir"] == 0.01
                        and r["rule"] == name
                        and r["gallery"] >= 100]
                if not pick:
                    continue
                label = f"{data}, {k} photo{'s' if k > 1 else ''}, {pick[0]['rule']}"
                for measured in (False, True):
                    pts = sorted((r["gallery"], r["fnir"]) for r in pick if r["measured"] == measured)
                    if pts:
                        x, y = zip(*pts)
                        ax.plot(x, y, dash, marker=marker, color=colour, alpha=1 if k == 1 else 0.6,
                                markerfacecolor=colour if measured else "white",
                                label=label if not measured else None)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("gallery size N (filled: measured on real galleries; hollow: modelled)")
    ax.set_ylabel("FNIR at FPIR 0.01")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(rows: list[dict], rules: list[str]) -> str:
    """The README's tables: FNIR per size (previous rule, then ``rules``), and the measured FPIR per template
    size."""
    out = ["| data | photos | rule | N | FNIR @ FPIR 0.01 | FNIR @ FPIR 0.003 | |",
           "|---|---|---|---|---|---|---|"]
    for data in ("celeba_dev", "lfw"):
        for k in (1, 3):
            for name in ("previous", *rules):
                for n in (1000, 10_000, 100_000, 1_000_000):
                    cells = []
                    for f in REPORTED_FPIRS:
                        r = [r for r in rows if (r["data"], r["photos_enrolled"], r["rule"], r["gallery"], r["fpir"])
                             == (data, k, name, n, f)]
                        r.sort(key=lambda r: not r["measured"])  # measured first where both exist
                        cells.append(f"{r[0]['fnir']:.1%}" if r else "")
                    kind = "measured" if any(r["measured"] and r["gallery"] == n and r["data"] == data
                                             for r in rows) else "modelled"
                    out.append(f"| {data} | {k} | {name} | {n:,} | {cells[0]} | {cells[1]} | {kind} |")
    out += ["", "| data | photos | rule | N | FPIR @ 0.01 (95% CI; training people) | FPIR @ 0.003 (same) "
                "| FNIR @ 0.01 | FNIR @ 0.003 |", "|---|---|---|---|---|---|---|---|"]

    def fpir(r: dict) -> str:
        low, high = r["fpir_ci95"]
        return f"{r['fpir_measured']:.2%} ({low:.2%}–{high:.2%}; {r['fpir_measured_training_people']:.2%})"
    for data in ("celeba_dev", "lfw"):
        for k in (1, 3, MIXED):
            for name in ("previous", *rules):
                for n in MEASURED[data]:
                    key = (data, k, name, n)
                    found = {r["fpir"]: r for r in rows
                             if r["measured"] and (r["data"], r["photos_enrolled"], r["rule"], r["gallery"]) == key}
                    if all(f in found for f in REPORTED_FPIRS):
                        a, b = found[0.01], found[0.003]
                        out.append(f"| {data} | {k} | {name} | {n:,} | {fpir(a)} | {fpir(b)} | {a['fnir']:.1%} "
                                   f"| {b['fnir']:.1%} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
