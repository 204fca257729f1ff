"""Shapley values of contributors on a coalition utility (SCORING.md section 4).

- `shapley_exact`: full enumeration of the 2^n coalitions, for n <= 12.
- `permutation_batch` + `merge_batches`: Monte-Carlo over permutations with antithetic pairs
  (each permutation and its reverse, averaged: one sample), truncation (stop evaluating a
  permutation once its prefix is within tolerance of v(N); the rest contribute 0) and warm
  starts (each prefix's fit starts from the previous prefix's). A batch keeps sums and sums of
  squares, so batches computed by different Celery workers merge exactly.
- `shapley_sampled`: batches until every standard error is under the target (or, with
  `criterion="mean"`, their mean: the figure other libraries report), or a budget of
  permutations or seconds runs out.

A utility is a `Utility`: `evaluate(mask, state) -> (value, state)`, where `state` is whatever
the utility wants to warm-start from (None for a plain function).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

MAX_EXACT_PLAYERS = 12


class Utility(Protocol):
    def evaluate(self, mask: NDArray[np.bool_], state: Any) -> tuple[float, Any]: ...


@dataclass
class FunctionUtility:
    """Adapts `f(mask) -> float` (no warm start), with a cache of coalition values."""

    function: Callable[[NDArray[np.bool_]], float]
    cache: dict[bytes, float] = field(default_factory=dict)

    def evaluate(self, mask: NDArray[np.bool_], state: Any) -> tuple[float, Any]:
        key = np.packbits(mask).tobytes()
        if key not in self.cache:
            self.cache[key] = float(self.function(mask))
        return self.cache[key], None


@dataclass(frozen=True)
class ShapleyEstimate:
    values: NDArray[np.float64]
    standard_errors: NDArray[np.float64]
    samples: int  # antithetic pairs (sampled) or 0 (exact)
    evaluations: int
    v_full: float
    v_empty: float
    is_exact: bool


def shapley_exact(utility: Utility, n_players: int) -> ShapleyEstimate:
    if n_players > MAX_EXACT_PLAYERS:
        raise ValueError(f"exact enumeration is for at most {MAX_EXACT_PLAYERS} players")
    values: dict[int, float] = {}
    for size in range(n_players + 1):
        for members in combinations(range(n_players), size):
            mask = np.zeros(n_players, dtype=bool)
            mask[list(members)] = True
            values[sum(1 << m for m in members)] = utility.evaluate(mask, None)[0]
    factorial = math.factorial
    phi = np.zeros(n_players)
    for player in range(n_players):
        bit = 1 << player
        for coalition, value in values.items():
            if coalition & bit:
                continue
            size = bin(coalition).count("1")
            weight = factorial(size) * factorial(n_players - size - 1) / factorial(n_players)
            phi[player] += weight * (values[coalition | bit] - value)
    full = values[(1 << n_players) - 1]
    return ShapleyEstimate(
        values=phi,
        standard_errors=np.zeros(n_players),
        samples=0,
        evaluations=len(values),
        v_full=full,
        v_empty=values[0],
        is_exact=True,
    )


@dataclass
class PermutationBatch:
    """Sufficient statistics of a set of antithetic samples; `+` merges exactly."""

    n_players: int
    samples: int = 0
    evaluations: int = 0
    sums: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    sums_of_squares: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if self.sums.size == 0:
            self.sums = np.zeros(self.n_players)
            self.sums_of_squares = np.zeros(self.n_players)

    def __add__(self, other: PermutationBatch) -> PermutationBatch:
        return PermutationBatch(
            n_players=self.n_players,
            samples=self.samples + other.samples,
            evaluations=self.evaluations + other.evaluations,
            sums=self.sums + other.sums,
            sums_of_squares=self.sums_of_squares + other.sums_of_squares,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_players": self.n_players,
            "samples": self.samples,
            "evaluations": self.evaluations,
            "sums": self.sums.tolist(),
            "sums_of_squares": self.sums_of_squares.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PermutationBatch:
        return cls(
            n_players=int(data["n_players"]),
            samples=int(data["samples"]),
            evaluations=int(data["evaluations"]),
            sums=np.asarray(data["sums"], dtype=np.float64),
            sums_of_squares=np.asarray(data["sums_of_squares"], dtype=np.float64),
        )


def _marginals(
    utility: Utility,
    order: NDArray[np.int64],
    v_empty: float,
    v_full: float,
    truncation_tolerance: float,
) -> tuple[NDArray[np.float64], int]:
    n_players = order.size
    contributions = np.zeros(n_players)
    mask = np.zeros(n_players, dtype=bool)
    previous = v_empty
    state: Any = None
    evaluations = 0
    for position, player in enumerate(order):
        if position == n_players - 1:
            value = v_full
        elif abs(v_full - previous) < truncation_tolerance:
            # The prefix already does what everyone does: the rest add nothing.
            break
        else:
            mask[player] = True
            value, state = utility.evaluate(mask.copy(), state)
            evaluations += 1
        contributions[player] = value - previous
        previous = value
    return contributions, evaluations


def permutation_batch(
    utility: Utility,
    n_players: int,
    *,
    pairs: int,
    seed: int,
    v_empty: float,
    v_full: float,
    truncation_tolerance: float = 0.0,
) -> PermutationBatch:
    """`pairs` antithetic samples drawn with `seed` (give each batch its own seed)."""
    rng = np.random.default_rng(seed)
    batch = PermutationBatch(n_players=n_players)
    for _ in range(pairs):
        order = rng.permutation(n_players)
        forward, forward_evaluations = _marginals(
            utility, order, v_empty, v_full, truncation_tolerance
        )
        backward, backward_evaluations = _marginals(
            utility, order[::-1].copy(), v_empty, v_full, truncation_tolerance
        )
        sample = (forward + backward) / 2.0
        batch.sums += sample
        batch.sums_of_squares += sample**2
        batch.samples += 1
        batch.evaluations += forward_evaluations + backward_evaluations
    return batch


def merge_batches(
    batches: Iterable[PermutationBatch], *, v_empty: float, v_full: float
) -> ShapleyEstimate:
    merged: PermutationBatch | None = None
    for batch in batches:
        merged = batch if merged is None else merged + batch
    if merged is None or merged.samples == 0:
        raise ValueError("no permutation samples to merge")
    count = merged.samples
    mean = merged.sums / count
    if count > 1:
        variance = np.maximum(merged.sums_of_squares / count - mean**2, 0.0) * count / (count - 1)
        standard_errors = np.sqrt(variance / count)
    else:
        standard_errors = np.full(merged.n_players, np.inf)
    return ShapleyEstimate(
        values=mean,
        standard_errors=standard_errors,
        samples=count,
        evaluations=merged.evaluations,
        v_full=v_full,
        v_empty=v_empty,
        is_exact=False,
    )


def shapley_sampled(
    utility: Utility,
    n_players: int,
    *,
    seed: int,
    target_standard_error: float = 0.002,
    truncation_tolerance: float = 0.0,
    pairs_per_batch: int = 8,
    min_pairs: int = 16,
    max_pairs: int = 5000,
    max_seconds: float = 300.0,
    v_empty: float | None = None,
    v_full: float | None = None,
    criterion: Literal["max", "mean"] = "max",
) -> ShapleyEstimate:
    summarise = np.max if criterion == "max" else np.mean
    everyone = np.ones(n_players, dtype=bool)
    nobody = np.zeros(n_players, dtype=bool)
    v_full = utility.evaluate(everyone, None)[0] if v_full is None else v_full
    v_empty = utility.evaluate(nobody, None)[0] if v_empty is None else v_empty
    started = time.perf_counter()
    batches: list[PermutationBatch] = []
    batch_index = 0
    while True:
        batches.append(
            permutation_batch(
                utility,
                n_players,
                pairs=pairs_per_batch,
                seed=seed * 1_000_003 + batch_index,
                v_empty=v_empty,
                v_full=v_full,
                truncation_tolerance=truncation_tolerance,
            )
        )
        batch_index += 1
        estimate = merge_batches(batches, v_empty=v_empty, v_full=v_full)
        if (
            estimate.samples >= min_pairs
            and float(summarise(estimate.standard_errors)) < target_standard_error
        ):
            return estimate
        if estimate.samples >= max_pairs or time.perf_counter() - started > max_seconds:
            return estimate


def shapley(utility: Utility, n_players: int, *, seed: int, **sampling: Any) -> ShapleyEstimate:
    """Exact up to MAX_EXACT_PLAYERS players, sampled beyond."""
    if n_players == 0:
        return ShapleyEstimate(np.zeros(0), np.zeros(0), 0, 0, 0.0, 0.0, True)
    if n_players <= MAX_EXACT_PLAYERS:
        return shapley_exact(utility, n_players)
    return shapley_sampled(utility, n_players, seed=seed, **sampling)
