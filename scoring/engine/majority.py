"""Majority vote over sparse labels (SCORING.md section 3, the baseline and fallback)."""

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
    counts = np.bincount(item_index * n_classes + label, minlength=n_items * n_classes).reshape(
        n_items, n_classes
    )
    class_frequency = counts.sum(axis=0)
    # Rank classes by overall frequency (desc), then index (asc); the rank breaks ties.
    order = np.lexsort((np.arange(n_classes), -class_frequency))
    tie_rank = np.empty(n_classes, dtype=np.float64)
    tie_rank[order] = np.arange(n_classes)
    # Votes dominate; the tie-break term is < 1 so it never outweighs a single vote.
    score = counts - tie_rank / (n_classes + 1)
    winners = score.argmax(axis=1).astype(np.int64)
    n = counts.sum(axis=1)
    top = counts[np.arange(n_items), winners]
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.where(n > 0, top / np.maximum(n, 1), 0.0)
    winners = np.where(n > 0, winners, -1)
    return MajorityVote(labels=winners, confidence=confidence, counts=counts, n=n)
