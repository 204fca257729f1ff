"""Majority vote over sparse labels (docs/SCORING.md section 3, the baseline and fallback)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class MajorityVote:
    """Per item: the winning class, the share of votes it got, and the number of labels.

    Items without labels get label -1, confidence 0 and n 0.
    """

    labels: NDArray[np.int64]
    confidence: NDArray[np.float64]
    counts: NDArray[np.int64]  # (n_items, n_classes) votes
    n: NDArray[np.int64]


def majority_vote(
    item_index: NDArray[np.integer], label: NDArray[np.integer], *, n_items: int, n_classes: int
) -> MajorityVote:
    """Plain majority per item. Ties go to the class that is more frequent over all labels
    (the better prior guess), then to the lowest class index, so the result is deterministic."""
    item_index = np.asarray(item_index, dtype=np.int64)
    label = np.asarray(label, dtype=np.int64)
    # Class-major counts: each class's votes are one contiguous row (see dawid_skene.py).
    by_class = np.bincount(label * n_items + item_index, minlength=n_classes * n_items).reshape(
        n_classes, n_items
    )
    class_frequency = by_class.sum(axis=1)
    # Visit classes by overall frequency (desc), then index (asc); a later class wins only
    # with strictly more votes, so ties go to the earlier one.
    order = np.lexsort((np.arange(n_classes), -class_frequency))
    winners = np.full(n_items, order[0], dtype=np.int64)
    top = by_class[order[0]].copy()
    n = top.copy()
    for candidate in order[1:]:
        votes = by_class[candidate]
        n += votes
        better = votes > top
        winners[better] = candidate
        np.maximum(top, votes, out=top)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(n > 0, top / np.maximum(n, 1), 0.0)
    winners[n == 0] = -1
    return MajorityVote(labels=winners, confidence=confidence, counts=by_class.T, n=n)
