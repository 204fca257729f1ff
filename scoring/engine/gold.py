"""Gold scoring (SCORING.md section 1): one answer against its gold answer, and the posterior.

Per gold item an answer earns g in [0, 1], the weighted mean over its components:
- the overall preference (pairwise), exact match; a `tie` against a strict gold answer (or a
  strict answer against a tied gold answer) scores 0.5. Its weight is PREFERENCE_WEIGHT;
- the ranking (ranking items): the share of the gold ranking's ordered pairs the answer keeps
  in the same order (Kendall-style agreement), weight PREFERENCE_WEIGHT;
- each dimension the gold answer rates, with the rubric weight: likert within `tolerance`
  steps scores 1, else 0; binary and choice exact. A per-response dimension (pairwise, ranking)
  scores the mean over responses.
Components the gold answer does not cover do not count.

Estimate: Beta(1 + sum g, 1 + sum (1 - g)); report its mean, 5% and 95% quantiles, and n.
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


@dataclass(frozen=True)
class GoldPosterior:
    mean: float
    low: float  # 5% quantile
    high: float  # 95% quantile
    n: int


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


def gold_item_score(
    *, answer: Mapping[str, Any], gold: Mapping[str, Any], dimensions: Sequence[GoldDimension]
) -> float | None:
    """g for one answered gold item, or None when the gold answer covers nothing gradable."""
    total = 0.0
    weight_sum = 0.0
    if "preference" in gold:
        total += PREFERENCE_WEIGHT * _preference_score(answer.get("preference"), gold["preference"])
        weight_sum += PREFERENCE_WEIGHT
    if "ranking" in gold:
        ranking = answer.get("ranking")
        score = _ranking_score(ranking, gold["ranking"]) if isinstance(ranking, list) else 0.0
        total += PREFERENCE_WEIGHT * score
        weight_sum += PREFERENCE_WEIGHT
    gold_values = gold.get("answers") or {}
    answer_values = answer.get("answers") or {}
    for dimension in dimensions:
        if dimension.key not in gold_values:
            continue
        expected = gold_values[dimension.key]
        given = answer_values.get(dimension.key)
        if isinstance(expected, list):
            if isinstance(given, list) and len(given) == len(expected):
                scores = [
                    _value_score(dimension, g, e) for g, e in zip(given, expected, strict=True)
                ]
                score = float(np.mean(scores)) if scores else 0.0
            else:
                score = 0.0
        else:
            score = _value_score(dimension, given, expected)
        total += dimension.weight * score
        weight_sum += dimension.weight
    if weight_sum == 0:
        return None
    return total / weight_sum


def gold_posterior(scores: Sequence[float]) -> GoldPosterior:
    values = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    alpha = 1.0 + float(values.sum())
    beta = 1.0 + float((1.0 - values).sum())
    distribution = stats.beta(alpha, beta)
    return GoldPosterior(
        mean=alpha / (alpha + beta),
        low=float(distribution.ppf(0.05)),
        high=float(distribution.ppf(0.95)),
        n=int(values.size),
    )
