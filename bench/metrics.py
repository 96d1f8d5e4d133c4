"""Verification metrics, the standard way: 10-fold accuracy with the threshold chosen on the 9 other folds,
ROC AUC, and TAR at a fixed FAR with the threshold taken from the impostor scores."""
from __future__ import annotations

import numpy as np


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold maximising accuracy on (scores, same): midpoints between sorted scores."""
    order = np.argsort(scores)
    s, y = scores[order], same[order].astype(bool)
    # accept if score >= t; sweeping t over the sorted scores
    positives_below = np.concatenate([[0], np.cumsum(y)])          # positives rejected when t = s[i]
    negatives_below = np.concatenate([[0], np.cumsum(~y)])         # negatives rejected when t = s[i]
    correct = negatives_below + (y.sum() - positives_below)
    i = int(np.argmax(correct))
    if i == 0:
        return float(s[0] - 1e-6)
    if i == len(s):
        return float(s[-1] + 1e-6)
    return float((s[i - 1] + s[i]) / 2)


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """Accuracy per fold with the threshold picked on the other folds: never tuned on the reported fold."""
    accs, thresholds = [], []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        t = best_threshold(scores[train], same[train])
        accs.append(float(((scores[test] >= t) == same[test].astype(bool)).mean()))
        thresholds.append(t)
    return {"accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
            "accuracy_per_fold": [round(a, 4) for a in accs], "threshold_best_acc_mean": float(np.mean(thresholds))}


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """The smallest threshold letting at most ``far`` of the impostors through (accept if score > t)."""
    s = np.sort(impostor_scores)[::-1]
    k = int(np.floor(far * len(s)))  # number of impostors allowed above the threshold
    return float(s[k]) if k < len(s) else float(s[-1] - 1e-6)


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    t = threshold_at_far(impostor, far)
    return float((genuine > t).mean()), t


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Probability that a random genuine pair scores above a random impostor pair (ties count half)."""
    y = same.astype(bool)
    ranks = _rankdata(scores)
    n_pos, n_neg = y.sum(), (~y).sum()
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = same.astype(bool)
    order = np.argsort(-scores)
    tp = np.cumsum(y[order]) / max(y.sum(), 1)
    fp = np.cumsum(~y[order]) / max((~y).sum(), 1)
    return np.concatenate([[0], fp]), np.concatenate([[0], tp])


def _rankdata(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def partial_auc(scores: np.ndarray, same: np.ndarray, max_far: float) -> float:
    """Area under the ROC curve for FAR in [0, max_far], normalised to [0, 1]: a smooth criterion that
    cares only about the low false-accept region a verification service runs in."""
    fpr, tpr = roc_curve(scores, same)
    keep = fpr <= max_far
    x = np.concatenate([fpr[keep], [max_far]])
    y = np.concatenate([tpr[keep], [tpr[keep][-1] if keep.any() else 0.0]])
    return float(np.trapezoid(y, x) / max_far)
