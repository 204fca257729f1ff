"""Bradley-Terry item strengths from pairwise comparisons (minorise-maximise, Hunter 2004).

Sparse: per iteration O(comparisons) with `np.bincount`; memory linear in comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class BradleyTerryResult:
    strength: NDArray[np.float64]  # normalised to geometric mean 1
    iterations: int
    converged: bool


def bradley_terry(
    winner: NDArray[np.integer],
    loser: NDArray[np.integer],
    *,
    n_items: int,
    max_iterations: int = 500,
    tolerance: float = 1e-8,
    prior_games: float = 0.1,
) -> BradleyTerryResult:
    """`prior_games` virtual wins and losses against an average item keep strengths finite for
    items that never lost (or never won)."""
    winners = np.asarray(winner, dtype=np.int64)
    losers = np.asarray(loser, dtype=np.int64)
    wins = np.bincount(winners, minlength=n_items).astype(np.float64) + prior_games
    strength = np.ones(n_items)
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        pair_total = strength[winners] + strength[losers]
        inverse = 1.0 / pair_total
        denominator = (
            np.bincount(winners, weights=inverse, minlength=n_items)
            + np.bincount(losers, weights=inverse, minlength=n_items)
            + 2.0 * prior_games / (strength + 1.0)
        )
        updated = wins / denominator
        updated /= np.exp(np.mean(np.log(updated)))
        change = np.max(np.abs(np.log(updated) - np.log(strength)))
        strength = updated
        if change < tolerance:
            converged = True
            break
    return BradleyTerryResult(strength=strength, iterations=iterations, converged=converged)
