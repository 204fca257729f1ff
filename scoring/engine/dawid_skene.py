"""Dawid-Skene EM on sparse labels (docs/SCORING.md section 3).

One confusion matrix per contributor, initialised from (soft) majority vote, log-space E-step,
and crowd-kit's stopping rule (at most `max_iterations`; stop as soon as the log-likelihood per
answer improves by less than `tolerance`), so results are comparable with crowd-kit's
DawidSkene. Work is O(answers x
classes) per iteration with `np.bincount`; nothing is dense in items x contributors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Probabilities are floored before the log: a contributor who never used a label must not
# make a class impossible for every item they touched (log 0 = -inf).
PROBABILITY_FLOOR = 1e-10


@dataclass(frozen=True)
class DawidSkeneResult:
    posteriors: NDArray[np.float64]  # (n_items, n_classes); rows of unlabelled items are priors
    labels: NDArray[np.int64]  # arg-max; -1 for items without answers
    confidence: NDArray[np.float64]  # posterior of the arg-max
    priors: NDArray[np.float64]  # (n_classes,)
    confusion: NDArray[np.float64]  # (n_workers, n_classes true, n_classes given)
    iterations: int
    log_likelihood: float


# Internally posteriors are class-major, (n_classes, n_items): every per-class step then reads
# and writes one contiguous row, and reductions over classes are elementwise over K rows
# instead of a strided reduction over a narrow (n_items, K) array.


def _soft_majority(
    items: NDArray[np.int64], labels: NDArray[np.int64], n_items: int, n_classes: int
) -> NDArray[np.float64]:
    counts = (
        np.bincount(labels * n_items + items, minlength=n_classes * n_items)
        .reshape(n_classes, n_items)
        .astype(np.float64)
    )
    totals = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / n_classes)


def _m_step(
    posteriors: NDArray[np.float64],
    items: NDArray[np.int64],
    keys: NDArray[np.int64],
    n_workers: int,
    n_classes: int,
    pseudo_count: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """`keys` = worker * n_classes + given label, per answer."""
    priors = posteriors.mean(axis=1)
    confusion = np.empty((n_workers, n_classes, n_classes))
    for true_class in range(n_classes):
        confusion[:, true_class, :] = np.bincount(
            keys, weights=posteriors[true_class].take(items), minlength=n_workers * n_classes
        ).reshape(n_workers, n_classes)
    confusion += pseudo_count
    totals = confusion.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        confusion = np.where(totals > 0, confusion / np.maximum(totals, 1e-300), 1.0 / n_classes)
    return priors, confusion


def _e_step(
    priors: NDArray[np.float64],
    confusion: NDArray[np.float64],
    items: NDArray[np.int64],
    cells: NDArray[np.int64],
    n_items: int,
    n_classes: int,
) -> tuple[NDArray[np.float64], float]:
    """`cells` = worker * K * K + given label, per answer: the flat index of the confusion cell
    for true class 0 (add true_class * K for the others)."""
    log_confusion = np.log(np.maximum(confusion, PROBABILITY_FLOOR)).ravel()
    log_priors = np.log(np.maximum(priors, PROBABILITY_FLOOR))
    log_posterior = np.empty((n_classes, n_items))
    for true_class in range(n_classes):
        weights = log_confusion.take(cells + true_class * n_classes)
        log_posterior[true_class] = np.bincount(items, weights=weights, minlength=n_items)
        log_posterior[true_class] += log_priors[true_class]
    # log-sum-exp over the K class rows, elementwise.
    peak = np.maximum.reduce(log_posterior, axis=0)
    log_posterior -= peak
    np.exp(log_posterior, out=log_posterior)
    total = np.add.reduce(log_posterior, axis=0)
    log_posterior /= total
    return log_posterior, float(peak.sum() + np.log(total).sum())


def _clamp(
    known: NDArray[np.integer] | None, n_items: int, n_classes: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]] | None:
    if known is None:
        return None
    known = np.asarray(known, dtype=np.int64)
    if known.shape != (n_items,):
        raise ValueError("known needs one entry per item (-1 where unknown)")
    rows = np.flatnonzero(known >= 0)
    if rows.size == 0:
        return None
    return rows, np.eye(n_classes)[known[rows]].T


def _apply_clamp(
    posteriors: NDArray[np.float64],
    clamp: tuple[NDArray[np.int64], NDArray[np.float64]] | None,
) -> NDArray[np.float64]:
    if clamp is not None:
        rows, one_hot = clamp
        posteriors[:, rows] = one_hot
    return posteriors


def dawid_skene(
    item_index: NDArray[np.integer],
    worker_index: NDArray[np.integer],
    label: NDArray[np.integer],
    *,
    n_items: int,
    n_workers: int,
    n_classes: int,
    max_iterations: int = 100,
    tolerance: float = 1e-5,
    known: NDArray[np.integer] | None = None,
) -> DawidSkeneResult:
    """`known` (optional, one entry per item, -1 where unknown) fixes the class of items whose
    truth is known, such as gold items: their posteriors stay one-hot, so every contributor's
    confusion matrix is anchored by their gold answers (semi-supervised Dawid-Skene). Without
    it the algorithm is exactly crowd-kit's."""
    items = np.asarray(item_index, dtype=np.int64)
    workers = np.asarray(worker_index, dtype=np.int64)
    labels = np.asarray(label, dtype=np.int64)
    clamp = _clamp(known, n_items, n_classes)
    keys = workers * n_classes + labels
    cells = workers * (n_classes * n_classes) + labels
    posteriors = _apply_clamp(_soft_majority(items, labels, n_items, n_classes), clamp)
    previous = -np.inf
    log_likelihood = -np.inf
    iterations = 0
    priors = np.full(n_classes, 1.0 / n_classes)
    confusion = np.full((n_workers, n_classes, n_classes), 1.0 / n_classes)
    if clamp is not None:
        # Start from what the known items say about each contributor, not from majority vote:
        # otherwise a majority that is wrong on the unknown items outweighs the gold evidence.
        # One pseudo-count per cell keeps a few perfect gold answers from making anyone look
        # infallible (a zero in a confusion matrix vetoes every other label on an item).
        anchored = _apply_clamp(np.zeros_like(posteriors), clamp)
        priors, confusion = _m_step(anchored, items, keys, n_workers, n_classes, pseudo_count=1.0)
        priors = posteriors.mean(axis=1)
        posteriors, _ = _e_step(priors, confusion, items, cells, n_items, n_classes)
        posteriors = _apply_clamp(posteriors, clamp)
    for iterations in range(1, max_iterations + 1):  # noqa: B007  (reported after the loop)
        priors, confusion = _m_step(posteriors, items, keys, n_workers, n_classes)
        posteriors, log_likelihood = _e_step(priors, confusion, items, cells, n_items, n_classes)
        posteriors = _apply_clamp(posteriors, clamp)
        if (log_likelihood - previous) / max(labels.size, 1) < tolerance:
            break
        previous = log_likelihood
    answered = np.bincount(items, minlength=n_items) > 0
    winners = posteriors.argmax(axis=0)
    return DawidSkeneResult(
        posteriors=np.ascontiguousarray(posteriors.T),
        labels=np.where(answered, winners, -1).astype(np.int64),
        confidence=np.where(answered, np.maximum.reduce(posteriors, axis=0), 0.0),
        priors=priors,
        confusion=confusion,
        iterations=iterations,
        log_likelihood=log_likelihood,
    )
