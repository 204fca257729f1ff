"""Gold scoring (docs/SCORING.md section 1): one answer against its gold answer, and the posterior.

Per gold item an answer earns g in [0, 1], the weighted mean over its components:
- the overall preference (pairwise), exact match; a `tie` against a strict gold answer (or a
  strict answer against a tied gold answer) scores 0.5. Its weight is PREFERENCE_WEIGHT;
- the ranking (ranking items): the share of the gold ranking's ordered pairs the answer keeps
  in the same order (Kendall-style agreement), weight PREFERENCE_WEIGHT;
- each dimension the gold answer rates, with the rubric weight: likert within `tolerance`
  steps scores 1, else 0; binary and choice exact. A per-response dimension (pairwise, ranking)
  scores the mean over responses.
Components the gold answer does not cover do not count.

Estimate: Beta(1 + sum w g, 1 + sum w (1 - g)) with w the gold item's weight (1, or less as
the item ages: see `age_weight`); report its mean, 5% and 95% quantiles, and n.

Per component (`gold_components`): the preference (or ranking) is one trial per item, and a
rated dimension one trial per response it rates, so each component has its own posterior and
interval (the per-dimension quality a lab routes by), and the early-stop gate tests each
against its chance level (`chance_level`: what random answers would score on it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy import stats

PREFERENCE_WEIGHT = 1.0


@dataclass(frozen=True)
class GoldDimension:
    key: str
    kind: str  # likert | binary | choice
    weight: float = 1.0
    tolerance: int = 1
    low: int | None = None  # likert scale ends
    high: int | None = None
    options: int = 0  # number of choice options


PREFERENCE = "preference"
RANKING = "ranking"


def chance_level(dimension: GoldDimension | None) -> float:
    """The credit a uniformly random answer earns on a component on average: 1/2 for the
    preference (two sides; ties aside) and binary dimensions, 1/k for a choice of k options,
    and for a likert scale of K points the probability that a random value lands within the
    tolerance t of a random reference, (K + 2 sum_{d=1..t} (K - d)) / K^2."""
    if dimension is None or dimension.kind == "binary":
        return 0.5
    if dimension.kind == "choice":
        return 1.0 / dimension.options if dimension.options else 0.5
    if dimension.low is None or dimension.high is None:
        return 0.5
    points = dimension.high - dimension.low + 1
    reach = min(dimension.tolerance, points - 1)
    return (points + 2 * sum(points - d for d in range(1, reach + 1))) / points**2


def trial_chance(dimension: GoldDimension, gold_value: Any) -> float:
    """What a uniformly random click earns against this gold value: for a likert scale the
    share of its points within tolerance of the value (fewer at the ends of the scale), 1/2 for
    binary, 1/k for a choice of k. Averaged over the gold an expert actually answered, this is
    their component's chance level (gold values are rarely uniform over the scale)."""
    if dimension.kind == "likert" and dimension.low is not None and dimension.high is not None:
        try:
            value = float(gold_value)
        except (TypeError, ValueError):
            return chance_level(dimension)
        points = dimension.high - dimension.low + 1
        near = sum(
            1
            for point in range(dimension.low, dimension.high + 1)
            if abs(point - value) <= dimension.tolerance
        )
        return near / points
    return chance_level(dimension)


def age_weight(age_days: float, half_life_days: float | None) -> float:
    """Gold decays in weight as it ages (it leaks, and the rubric drifts from it): 1 when new,
    1/2 after one half-life. No half-life (None or 0) keeps every item at 1."""
    if not half_life_days or age_days <= 0:
        return 1.0
    return float(0.5 ** (age_days / half_life_days))


@dataclass(frozen=True)
class GoldPosterior:
    mean: float
    low: float  # 5% quantile
    high: float  # 95% quantile
    n: int
    alpha: float = 1.0  # the Beta's parameters, for further questions (P(p < chance), ...)
    beta: float = 1.0

    def probability_below(self, level: float) -> float:
        return float(stats.beta(self.alpha, self.beta).cdf(level))


def _value_score(dimension: GoldDimension, value: Any, gold: Any) -> float:
    if dimension.kind == "likert":
        try:
            return 1.0 if abs(float(value) - float(gold)) <= dimension.tolerance else 0.0
        except (TypeError, ValueError):
            return 0.0
    return 1.0 if value == gold else 0.0


def _preference_score(answer: Any, gold: Any) -> float:
    if answer == gold:
        return 1.0
    if "tie" in (answer, gold):
        return 0.5
    return 0.0


def _ranking_score(answer: Sequence[int], gold: Sequence[int]) -> float:
    position = {response: index for index, response in enumerate(answer)}
    pairs = list(combinations(gold, 2))
    if not pairs or set(position) != set(gold):
        return 0.0
    kept = sum(1 for better, worse in pairs if position[better] < position[worse])
    return kept / len(pairs)


@dataclass(frozen=True)
class ComponentCredit:
    """One component's credits on one gold item: one per trial (per response for a
    per-response dimension), with the component's weight in the item's overall g, and what a
    random click would earn on each trial (`chances`)."""

    key: str  # "preference", "ranking" or a dimension key
    credits: tuple[float, ...]
    weight: float
    chances: tuple[float, ...] = ()


def gold_components(
    *, answer: Mapping[str, Any], gold: Mapping[str, Any], dimensions: Sequence[GoldDimension]
) -> list[ComponentCredit]:
    """The components of one answer's gold credit (only those the gold answer covers)."""
    components = []
    if PREFERENCE in gold:
        credit = _preference_score(answer.get(PREFERENCE), gold[PREFERENCE])
        components.append(ComponentCredit(PREFERENCE, (credit,), PREFERENCE_WEIGHT, (0.5,)))
    if RANKING in gold:
        ranking = answer.get(RANKING)
        credit = _ranking_score(ranking, gold[RANKING]) if isinstance(ranking, list) else 0.0
        components.append(ComponentCredit(RANKING, (credit,), PREFERENCE_WEIGHT, (0.5,)))
    gold_values = gold.get("answers") or {}
    answer_values = answer.get("answers") or {}
    for dimension in dimensions:
        if dimension.key not in gold_values:
            continue
        expected = gold_values[dimension.key]
        given = answer_values.get(dimension.key)
        if isinstance(expected, list):
            if isinstance(given, list) and len(given) == len(expected):
                credits = tuple(
                    _value_score(dimension, g, e) for g, e in zip(given, expected, strict=True)
                )
            else:
                credits = (0.0,) * max(len(expected), 1)
            if not credits:
                continue
            chances = tuple(trial_chance(dimension, value) for value in expected) or (
                chance_level(dimension),
            )
        else:
            credits = (_value_score(dimension, given, expected),)
            chances = (trial_chance(dimension, expected),)
        if len(chances) != len(credits):
            chances = (chance_level(dimension),) * len(credits)
        components.append(ComponentCredit(dimension.key, credits, dimension.weight, chances))
    return components


def gold_item_score(
    *, answer: Mapping[str, Any], gold: Mapping[str, Any], dimensions: Sequence[GoldDimension]
) -> float | None:
    """g for one answered gold item, or None when the gold answer covers nothing gradable."""
    components = gold_components(answer=answer, gold=gold, dimensions=dimensions)
    weight_sum = sum(component.weight for component in components)
    if weight_sum == 0:
        return None
    total = sum(component.weight * float(np.mean(component.credits)) for component in components)
    return total / weight_sum


def gold_posterior(
    scores: Sequence[float], weights: Sequence[float] | None = None
) -> GoldPosterior:
    """Beta(1 + sum w g, 1 + sum w (1 - g)); `n` counts the answers whatever their weights."""
    values = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    weight = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    alpha = 1.0 + float((weight * values).sum())
    beta = 1.0 + float((weight * (1.0 - values)).sum())
    distribution = stats.beta(alpha, beta)
    return GoldPosterior(
        mean=alpha / (alpha + beta),
        low=float(distribution.ppf(0.05)),
        high=float(distribution.ppf(0.95)),
        n=int(values.size),
        alpha=alpha,
        beta=beta,
    )
