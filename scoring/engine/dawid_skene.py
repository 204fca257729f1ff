"""Dawid-Skene EM on sparse labels (SCORING.md section 3).

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
from scipy.special import logsumexp

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


def _soft_majority(
    items: NDArray[np.int64], labels: NDArray[np.int64], n_items: int, n_classes: int
) -> NDArray[np.float64]:
    counts = (
        np.bincount(items * n_classes + labels, minlength=n_items * n_classes)
        .reshape(n_items, n_classes)
        .astype(np.float64)
    )
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / np.maximum(totals, 1), 1.0 / n_classes)


def _m_step(
    posteriors: NDArray[np.float64],
    items: NDArray[np.int64],
    workers: NDArray[np.int64],
    labels: NDArray[np.int64],
    n_workers: int,
    n_classes: int,
    pseudo_count: float = 0.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    priors = posteriors.mean(axis=0)
    confusion = np.empty((n_workers, n_classes, n_classes))
    keys = workers * n_classes + labels
    for true_class in range(n_classes):
        confusion[:, true_class, :] = np.bincount(
            keys, weights=posteriors[items, true_class], minlength=n_workers * n_classes
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
    workers: NDArray[np.int64],
    labels: NDArray[np.int64],
    n_items: int,
    n_classes: int,
) -> tuple[NDArray[np.float64], float]:
    log_confusion = np.log(np.maximum(confusion, PROBABILITY_FLOOR))
    log_posterior = np.tile(np.log(np.maximum(priors, PROBABILITY_FLOOR)), (n_items, 1))
    for true_class in range(n_classes):
        log_posterior[:, true_class] += np.bincount(
            items, weights=log_confusion[workers, true_class, labels], minlength=n_items
        )
    normaliser = logsumexp(log_posterior, axis=1, keepdims=True)
    return np.exp(log_posterior - normaliser), float(normaliser.sum())


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
    return rows, np.eye(n_classes)[known[rows]]


def _apply_clamp(
    posteriors: NDArray[np.float64],
    clamp: tuple[NDArray[np.int64], NDArray[np.float64]] | None,
) -> NDArray[np.float64]:
    if clamp is not None:
        rows, one_hot = clamp
        posteriors[rows] = one_hot
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
        anchored = np.zeros_like(posteriors)
        anchored[clamp[0]] = clamp[1]
        priors, confusion = _m_step(
            anchored, items, workers, labels, n_workers, n_classes, pseudo_count=1.0
        )
        priors = posteriors.mean(axis=0)
        posteriors, _ = _e_step(priors, confusion, items, workers, labels, n_items, n_classes)
        posteriors = _apply_clamp(posteriors, clamp)
    for iterations in range(1, max_iterations + 1):  # noqa: B007  (reported after the loop)
        priors, confusion = _m_step(posteriors, items, workers, labels, n_workers, n_classes)
        posteriors, log_likelihood = _e_step(
            priors, confusion, items, workers, labels, n_items, n_classes
        )
        posteriors = _apply_clamp(posteriors, clamp)
        if (log_likelihood - previous) / max(labels.size, 1) < tolerance:
            break
        previous = log_likelihood
    answered = np.bincount(items, minlength=n_items) > 0
    winners = posteriors.argmax(axis=1)
    return DawidSkeneResult(
        posteriors=posteriors,
        labels=np.where(answered, winners, -1).astype(np.int64),
        confidence=np.where(answered, posteriors.max(axis=1), 0.0),
        priors=priors,
        confusion=confusion,
        iterations=iterations,
        log_likelihood=log_likelihood,
    )
