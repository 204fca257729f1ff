"""Seeded synthetic preference crowds with a known answer, for the engine's tests and the
Shapley benchmark (one generator, so both exercise the same kind of problem).

A hidden direction signs every pairwise difference: honest contributors label by it; a noisy
contributor with an odd index inverts every preference, one with an even index answers at
random. The eval set is signed by the same direction.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import NDArray


def preference_crowd(
    *,
    contributors: int,
    per_contributor: int,
    dimension: int,
    noisy: Collection[int],
    seed: int,
    evaluation_size: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """(owner of each train row, train differences, eval differences)."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=dimension)
    evaluation = rng.normal(size=(evaluation_size, dimension))
    evaluation *= np.sign(evaluation @ direction)[:, None]
    train, owners = [], []
    for contributor in range(contributors):
        rows = rng.normal(size=(per_contributor, dimension))
        signs = np.sign(rows @ direction)
        if contributor in noisy:
            signs = -signs if contributor % 2 else rng.choice([-1.0, 1.0], size=per_contributor)
        train.append(rows * signs[:, None])
        owners += [contributor] * per_contributor
    return np.array(owners, dtype=np.int64), np.vstack(train), evaluation
