"""Shapley values of contributors on a coalition utility (docs/SCORING.md section 4).

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

The eval set is a sample too. A utility that is a mean over eval pairs may also offer
`evaluate_items(mask, state) -> (per-pair values, state)`; then every estimate carries a
bootstrap over the eval pairs: B resamples of the pairs (multinomial counts drawn from
`bootstrap_seed`, so every worker of a fanned-out run draws the same ones), each giving its
own Shapley values from the same permutations. The spread of those values is the eval-set
error, and the reported standard error combines it with the permutation sampling error:
se = sqrt(se_sampling^2 + se_eval^2). Exact enumeration has no sampling error but keeps the
eval error, so it no longer reports 0.
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
BOOTSTRAP_REPLICATES = 200


class Utility(Protocol):
    def evaluate(self, mask: NDArray[np.bool_], state: Any) -> tuple[float, Any]: ...


def _items_of(utility: Utility) -> Callable[..., tuple[NDArray[np.float64], Any]] | None:
    return getattr(utility, "evaluate_items", None)


def bootstrap_weights(n_pairs: int, replicates: int, seed: int) -> NDArray[np.float64]:
    """(replicates x n_pairs) resampling weights: multinomial counts / n_pairs, so that
    weights @ per_pair_values is the mean over one bootstrap resample of the eval pairs."""
    if n_pairs == 0 or replicates == 0:
        return np.zeros((0, n_pairs))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_pairs, np.full(n_pairs, 1.0 / n_pairs), size=replicates)
    return counts.astype(np.float64) / n_pairs


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
    standard_errors: NDArray[np.float64]  # sqrt(sampling^2 + eval^2)
    samples: int  # antithetic pairs (sampled) or 0 (exact)
    evaluations: int
    v_full: float
    v_empty: float
    is_exact: bool
    sampling_standard_errors: NDArray[np.float64] | None = None
    eval_standard_errors: NDArray[np.float64] | None = None
    bootstrap_replicates: int = 0


def _eval_errors(replicate_values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per player, the standard deviation of its value over the bootstrap resamples."""
    if replicate_values.shape[1] < 2:
        return np.zeros(replicate_values.shape[0])
    return np.asarray(replicate_values.std(axis=1, ddof=1), dtype=np.float64)


def shapley_exact(
    utility: Utility,
    n_players: int,
    *,
    bootstrap_replicates: int = BOOTSTRAP_REPLICATES,
    bootstrap_seed: int = 0,
) -> ShapleyEstimate:
    if n_players > MAX_EXACT_PLAYERS:
        raise ValueError(f"exact enumeration is for at most {MAX_EXACT_PLAYERS} players")
    per_pair = _items_of(utility)
    values: dict[int, Any] = {}
    for size in range(n_players + 1):
        for members in combinations(range(n_players), size):
            mask = np.zeros(n_players, dtype=bool)
            mask[list(members)] = True
            coalition = sum(1 << m for m in members)
            if per_pair is not None:
                values[coalition] = np.asarray(per_pair(mask, None)[0], dtype=np.float64)
            else:
                values[coalition] = utility.evaluate(mask, None)[0]
    factorial = math.factorial
    # Per player, its Shapley value on every eval pair (or on the scalar utility).
    phi: list[Any] = [0.0] * n_players
    for player in range(n_players):
        bit = 1 << player
        for coalition, value in values.items():
            if coalition & bit:
                continue
            size = bin(coalition).count("1")
            weight = factorial(size) * factorial(n_players - size - 1) / factorial(n_players)
            phi[player] = phi[player] + weight * (values[coalition | bit] - value)
    full, empty = values[(1 << n_players) - 1], values[0]
    eval_errors = np.zeros(n_players)
    replicates = 0
    if per_pair is not None:
        per_player = np.stack([np.asarray(row, dtype=np.float64) for row in phi])
        weights = bootstrap_weights(per_player.shape[1], bootstrap_replicates, bootstrap_seed)
        replicates = weights.shape[0]
        if replicates:
            eval_errors = _eval_errors(per_player @ weights.T)
        means = per_player.mean(axis=1) if per_player.shape[1] else np.zeros(n_players)
        full, empty = float(np.mean(full)), float(np.mean(empty))
    else:
        means = np.asarray(phi, dtype=np.float64)
    return ShapleyEstimate(
        values=means,
        standard_errors=eval_errors.copy(),
        samples=0,
        evaluations=len(values),
        v_full=float(full),
        v_empty=float(empty),
        is_exact=True,
        sampling_standard_errors=np.zeros(n_players),
        eval_standard_errors=eval_errors,
        bootstrap_replicates=replicates,
    )


@dataclass
class PermutationBatch:
    """Sufficient statistics of a set of antithetic samples; `+` merges exactly."""

    n_players: int
    samples: int = 0
    evaluations: int = 0
    sums: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    sums_of_squares: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    # (n_players x replicates): the same samples' sums on each bootstrap resample of the eval
    # pairs; (n_players x 0) for a utility without per-pair values.
    replicate_sums: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        if self.sums.size == 0:
            self.sums = np.zeros(self.n_players)
            self.sums_of_squares = np.zeros(self.n_players)
        if self.replicate_sums.shape[0] != self.n_players:
            self.replicate_sums = np.zeros((self.n_players, self.replicate_sums.shape[1]))

    def __add__(self, other: PermutationBatch) -> PermutationBatch:
        return PermutationBatch(
            n_players=self.n_players,
            samples=self.samples + other.samples,
            evaluations=self.evaluations + other.evaluations,
            sums=self.sums + other.sums,
            sums_of_squares=self.sums_of_squares + other.sums_of_squares,
            replicate_sums=self.replicate_sums + other.replicate_sums,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_players": self.n_players,
            "samples": self.samples,
            "evaluations": self.evaluations,
            "sums": self.sums.tolist(),
            "sums_of_squares": self.sums_of_squares.tolist(),
            "replicate_sums": self.replicate_sums.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PermutationBatch:
        n_players = int(data["n_players"])
        replicates = np.asarray(data.get("replicate_sums") or [], dtype=np.float64)
        return cls(
            n_players=n_players,
            samples=int(data["samples"]),
            evaluations=int(data["evaluations"]),
            sums=np.asarray(data["sums"], dtype=np.float64),
            sums_of_squares=np.asarray(data["sums_of_squares"], dtype=np.float64),
            replicate_sums=replicates.reshape(n_players, -1),
        )


@dataclass(frozen=True)
class _Ends:
    """v(empty) and v(N), with their per-pair values when the utility has them."""

    v_empty: float
    v_full: float
    empty_items: NDArray[np.float64] | None = None
    full_items: NDArray[np.float64] | None = None


def _ends(utility: Utility, n_players: int, v_empty: float, v_full: float) -> _Ends:
    per_pair = _items_of(utility)
    if per_pair is None:
        return _Ends(v_empty, v_full)
    empty_items = np.asarray(per_pair(np.zeros(n_players, dtype=bool), None)[0])
    full_items = np.asarray(per_pair(np.ones(n_players, dtype=bool), None)[0])
    return _Ends(v_empty, v_full, empty_items, full_items)


def _marginals(
    utility: Utility,
    order: NDArray[np.int64],
    ends: _Ends,
    truncation_tolerance: float,
    weights: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """One permutation's marginal contributions, overall and on each bootstrap resample."""
    n_players = order.size
    contributions = np.zeros(n_players)
    resampled = np.zeros((n_players, weights.shape[0]))
    per_pair = _items_of(utility) if weights.shape[0] else None
    mask = np.zeros(n_players, dtype=bool)
    previous = ends.v_empty
    previous_items = ends.empty_items
    state: Any = None
    evaluations = 0
    for position, player in enumerate(order):
        items = None
        if position == n_players - 1:
            value, items = ends.v_full, ends.full_items
        elif abs(ends.v_full - previous) < truncation_tolerance:
            # The prefix already does what everyone does: the rest add nothing.
            break
        else:
            mask[player] = True
            if per_pair is not None:
                items, state = per_pair(mask.copy(), state)
                value = float(items.mean())
            else:
                value, state = utility.evaluate(mask.copy(), state)
            evaluations += 1
        contributions[player] = value - previous
        if per_pair is not None and items is not None and previous_items is not None:
            resampled[player] = weights @ (items - previous_items)
            previous_items = items
        previous = value
    return contributions, resampled, evaluations


def permutation_batch(
    utility: Utility,
    n_players: int,
    *,
    pairs: int,
    seed: int,
    v_empty: float,
    v_full: float,
    truncation_tolerance: float = 0.0,
    bootstrap_replicates: int = BOOTSTRAP_REPLICATES,
    bootstrap_seed: int = 0,
) -> PermutationBatch:
    """`pairs` antithetic samples drawn with `seed` (give each batch its own seed); the
    bootstrap resamples come from `bootstrap_seed` (the same for every batch of a run)."""
    rng = np.random.default_rng(seed)
    ends = _ends(utility, n_players, v_empty, v_full)
    n_pairs = 0 if ends.full_items is None else ends.full_items.size
    weights = bootstrap_weights(n_pairs, bootstrap_replicates, bootstrap_seed)
    batch = PermutationBatch(n_players=n_players, replicate_sums=np.zeros((0, weights.shape[0])))
    for _ in range(pairs):
        order = rng.permutation(n_players)
        forward, forward_resampled, forward_evaluations = _marginals(
            utility, order, ends, truncation_tolerance, weights
        )
        backward, backward_resampled, backward_evaluations = _marginals(
            utility, order[::-1].copy(), ends, truncation_tolerance, weights
        )
        sample = (forward + backward) / 2.0
        batch.sums += sample
        batch.sums_of_squares += sample**2
        batch.replicate_sums += (forward_resampled + backward_resampled) / 2.0
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
        sampling = np.sqrt(variance / count)
    else:
        sampling = np.full(merged.n_players, np.inf)
    replicates = merged.replicate_sums.shape[1]
    eval_errors = _eval_errors(merged.replicate_sums / count) if replicates else None
    total = sampling if eval_errors is None else np.sqrt(sampling**2 + eval_errors**2)
    return ShapleyEstimate(
        values=mean,
        standard_errors=total,
        samples=count,
        evaluations=merged.evaluations,
        v_full=v_full,
        v_empty=v_empty,
        is_exact=False,
        sampling_standard_errors=sampling,
        eval_standard_errors=eval_errors,
        bootstrap_replicates=replicates,
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
    bootstrap_replicates: int = BOOTSTRAP_REPLICATES,
    bootstrap_seed: int | None = None,
) -> ShapleyEstimate:
    """Batches until the *sampling* standard errors meet the target (more permutations cannot
    shrink the eval-set error), or a budget runs out."""
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
                bootstrap_replicates=bootstrap_replicates,
                bootstrap_seed=seed if bootstrap_seed is None else bootstrap_seed,
            )
        )
        batch_index += 1
        estimate = merge_batches(batches, v_empty=v_empty, v_full=v_full)
        sampling = estimate.sampling_standard_errors
        assert sampling is not None
        if estimate.samples >= min_pairs and float(summarise(sampling)) < target_standard_error:
            return estimate
        if estimate.samples >= max_pairs or time.perf_counter() - started > max_seconds:
            return estimate


def shapley(utility: Utility, n_players: int, *, seed: int, **sampling: Any) -> ShapleyEstimate:
    """Exact up to MAX_EXACT_PLAYERS players, sampled beyond."""
    if n_players == 0:
        return ShapleyEstimate(np.zeros(0), np.zeros(0), 0, 0, 0.0, 0.0, True)
    if n_players <= MAX_EXACT_PLAYERS:
        return shapley_exact(
            utility,
            n_players,
            bootstrap_replicates=sampling.get("bootstrap_replicates", BOOTSTRAP_REPLICATES),
            bootstrap_seed=seed,
        )
    return shapley_sampled(utility, n_players, seed=seed, **sampling)
