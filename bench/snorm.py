"""Adaptive score normalisation (s-norm) against a fixed cohort, for ``bench.open_set``: the cohort, each
vector's cohort statistics, and normalised scores of real pairs and real galleries with every person's own
cohort entry left out. Measured and not adopted (README, "Cohort score normalisation"); the service does not
use it.

Why it was a candidate: a raw similarity means different things for different probes and templates. A probe
(or a template) that looks like many people scores high against everyone, strangers included. Adaptive s-norm
measures each side's neighbourhood on a fixed cohort of people who are never enrolled (the mean and spread of
its ``TOP`` best cohort scores) and expresses the score in those units, averaged over both sides:

    z = ((s - mean_probe) / std_probe + (s - mean_template) / std_template) / 2

The cohort is one photo (the first) of each training person of every data set. A deployed gallery and its
searchers are never in the cohort, so here a score between a photo of person a and a template of person b is
normalised with a's statistics computed without a's *and* b's cohort entries, and b's without b's and a's:
otherwise a look-alike pair's own cohort entries would raise both sides' means and hide exactly the pairs
that make false accepts. The cohort holds one photo per person, so leaving one more person out is exact:
their entry is dropped from the top ``TOP`` where it is among them, and the next score takes its place.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.core.calibration import IdentifyRule

TOP = 20          # cohort scores per side whose mean and spread normalise a score
MIN_STD = 1e-3    # a floor on the spread: a cohort of near-identical scores must not blow a score up


def cohort_stats(scores: np.ndarray, top: int = TOP) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of the ``top`` highest scores along the last axis (scores of vectors against the cohort)."""
    scores = np.asarray(scores, np.float64)
    best = -np.partition(-scores, top - 1, axis=-1)[..., :top]
    return best.mean(axis=-1), np.maximum(best.std(axis=-1), MIN_STD)


def snorm(score: np.ndarray, probe_mean: np.ndarray, probe_std: np.ndarray, template_mean: np.ndarray,
          template_std: np.ndarray) -> np.ndarray:
    """The normalised score."""
    return 0.5 * ((score - probe_mean) / probe_std + (score - template_mean) / template_std)


class SnormRule(IdentifyRule):
    """The margin rule's tables on normalised scores: ``s1``, ``s2`` are the best and second-best candidates'
    normalised scores (the floor of verify's threshold still on the raw one), which have no ceiling of 1."""

    def threshold(self, gallery_size: int, fpir: float, photos: int = 1) -> float:
        return self._at(self.tables[self.table_photos(photos)], gallery_size, fpir)

    def to_json(self) -> dict:
        return super().to_json() | {"normalisation": "snorm", "cohort_top": TOP}


@dataclass
class Cohort:
    emb: np.ndarray      # one vector per cohort person
    domain: np.ndarray   # the data set (index into the domains) of each
    person: np.ndarray   # the person (index within its data set) of each

    def column(self, d: int, n_people: int) -> np.ndarray:
        """Per person of data set ``d``: their cohort column, -1 where they are not in the cohort."""
        out = np.full(n_people, -1)
        mine = np.flatnonzero(self.domain == d)
        out[self.person[mine]] = mine
        return out


def build(doms: list, people: list[np.ndarray] | None = None) -> Cohort:
    """One photo of each training person (or of ``people[d]``, a mask per data set)."""
    emb, dom_of, who = [], [], []
    for d, dom in enumerate(doms):
        chosen = dom.train if people is None else people[d]
        for p, rows in enumerate(dom.photos()):
            if chosen[p]:
                emb.append(dom.emb[rows[0]])
                dom_of.append(d)
                who.append(p)
    return Cohort(np.stack(emb).astype(np.float32), np.array(dom_of), np.array(who))


@dataclass
class Stats:
    """Per vector: the sum and sum of squares of its TOP best cohort scores without its own person, the
    TOP-th and the next score, and its score against each person's cohort entry of its data set (-inf where
    that person is not in the cohort), to leave one more person out on demand."""
    total: np.ndarray
    squares: np.ndarray
    last: np.ndarray
    next: np.ndarray
    by_person: np.ndarray | None

    def mean_std(self, rows: np.ndarray, other: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of ``rows``' top cohort scores, each also without person ``other`` (-1: nobody)."""
        total, squares = self.total[rows], self.squares[rows]
        if other is not None and self.by_person is not None:
            x = np.where(other >= 0, self.by_person[rows, np.maximum(other, 0)], -np.inf)
            inside = x >= self.last[rows]
            nxt = self.next[rows]
            total = total - np.where(inside, x - nxt, 0.0)
            squares = squares - np.where(inside, x * x - nxt * nxt, 0.0)
        mean = total / TOP
        return mean, np.sqrt(np.maximum(squares / TOP - mean * mean, MIN_STD ** 2))


def stats(vectors: np.ndarray, cohort: Cohort, d: int | None = None, own: np.ndarray | None = None,
          n_people: int = 0) -> Stats:
    """Cohort statistics of ``vectors`` (of data set ``d``, person ``own`` each; None: synthetic, nobody)."""
    parts = []
    col = cohort.column(d, n_people) if d is not None else None
    by_person = np.full((len(vectors), n_people), -np.inf, np.float32) if col is not None else None
    for start in range(0, len(vectors), 4096):
        s = (vectors[start:start + 4096] @ cohort.emb.T).astype(np.float64)
        if col is not None and own is not None and by_person is not None:
            mine = own[start:start + 4096]
            has = col[mine] >= 0
            s[np.flatnonzero(has), col[mine][has]] = -np.inf
            present = np.flatnonzero(col >= 0)
            by_person[start:start + 4096, present] = s[:, col[present]]
            # the own entry stays -inf in by_person too: leaving it out again changes nothing
        top = -np.partition(-s, TOP, axis=1)[:, :TOP + 1]
        top = -np.sort(-top, axis=1)
        parts.append((top[:, :TOP].sum(axis=1), (top[:, :TOP] ** 2).sum(axis=1), top[:, TOP - 1], top[:, TOP]))
    total, squares, last, nxt = (np.concatenate(x) for x in zip(*parts))
    return Stats(total, squares, last, nxt, by_person)


def z_pairs(score: np.ndarray, a: Stats, a_rows: np.ndarray, a_person: np.ndarray, b: Stats, b_rows: np.ndarray,
            b_person: np.ndarray) -> np.ndarray:
    """Normalised scores of pairs (a photo of ``a_person``, a template of ``b_person``), each side's statistics
    without both people."""
    ma, sa = a.mean_std(a_rows, b_person)
    mb, sb = b.mean_std(b_rows, a_person)
    return snorm(score.astype(np.float64), ma, sa, mb, sb).astype(np.float32)


def z_matrix(scores: np.ndarray, probe: Stats, probe_person: np.ndarray, templates: Stats) -> np.ndarray:
    """Normalised photo x person scores of a real gallery (template ``p`` of person ``p``)."""
    out = np.empty(scores.shape, np.float32)
    people = np.arange(scores.shape[1])
    for start in range(0, len(scores), 512):
        rows = np.arange(start, min(start + 512, len(scores)))
        r, p = np.broadcast_arrays(rows[:, None], people[None, :])
        out[rows] = z_pairs(scores[rows], probe, r, p, templates, p, probe_person[r])
    return out
