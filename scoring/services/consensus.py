"""Stage 2 of a scoring run, its consensus half (docs/SCORING.md section 3): gold-anchored
Dawid-Skene on the categorical answer, the quality-weighted mean and spread of every likert
dimension (a weighted vote on binary and choice ones), and Bradley-Terry strengths with
intervals for rankings and for the two sides of a pairwise item. Likert weights come from each
contributor's reliability on the dimension: from gold where they have it, else from the
agreement half (`agreement.py`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import numpy as np

from projects.models import Project, Submission, TaskType
from scoring.engine.bradley_terry import bradley_terry, bradley_terry_covariance
from scoring.engine.dawid_skene import dawid_skene
from scoring.engine.gold import PREFERENCE, chance_level
from scoring.models import ItemConsensus, ScoringRun
from scoring.services.gold import GoldEvidence
from scoring.services.labels import PREFERENCES, Labels, category_of, numeric_answer

# A likert consensus weighs each label by its contributor's reliability on that dimension,
# never below this (an unknown contributor is not silenced, only outweighed).
MIN_RELIABILITY = 0.05
UNKNOWN_RELIABILITY = 0.5
# Bradley-Terry intervals: 90%, like the gold and agreement intervals.
Z_90 = 1.6448536269514722


def reliabilities(
    labels: Labels,
    gold: dict[int, GoldEvidence],
    per_component: dict[int, dict[str, tuple[float, int]]],
) -> dict[tuple[int, str], float]:
    """(expert, dimension) -> weight in likert consensus: how far above chance the expert is
    on that dimension, (accuracy - chance) / (1 - chance), from gold when they have it on the
    dimension, else from agreement; MIN_RELIABILITY at worst, UNKNOWN_RELIABILITY without
    evidence."""
    weights = {}
    for expert, index in labels.expert_index.items():
        evidence = gold.get(expert)
        for dimension in labels.dimensions:
            chance = chance_level(dimension)
            accuracy = None
            if evidence is not None and dimension.key in evidence.components:
                accuracy = evidence.components[dimension.key].mean
            elif dimension.key in per_component.get(index, {}):
                hits, n = per_component[index][dimension.key]
                accuracy = (1.0 + hits) / (2.0 + n)
            if accuracy is None:
                weights[(expert, dimension.key)] = UNKNOWN_RELIABILITY
                continue
            above = (accuracy - chance) / (1.0 - chance) if chance < 1 else 0.0
            weights[(expert, dimension.key)] = float(min(max(above, MIN_RELIABILITY), 1.0))
    return weights


def weighted_consensus(
    values: list[float], weights: list[float], kind: str
) -> tuple[Any, float, float]:
    """(value, spread or share, confidence). Likert: the weighted mean, the weighted standard
    deviation, and confidence 1 - spread / (half the values' range + 1); binary and choice:
    the weighted vote's winner, and its weight share as spread and confidence."""
    weight = np.asarray(weights, dtype=np.float64)
    data = np.asarray(values, dtype=np.float64)
    total = float(weight.sum())
    if kind == "likert":
        mean = float((weight * data).sum() / total)
        spread = float(np.sqrt((weight * (data - mean) ** 2).sum() / total))
        return round(mean, 6), round(spread, 6), spread
    tally: dict[float, float] = defaultdict(float)
    for value, single in zip(data, weight, strict=True):
        tally[float(value)] += float(single)
    winner = max(sorted(tally), key=lambda key: tally[key])
    share = tally[winner] / total
    return winner, round(share, 6), share


def likert_consensus(
    run: ScoringRun,
    project: Project,
    labels: Labels,
    work: list[Submission],
    reliability: dict[tuple[int, str], float],
) -> list[ItemConsensus]:
    """Per item and dimension, the quality-weighted consensus (`likert:<key>` for a likert
    dimension, `vote:<key>` for binary and choice): one entry per response for pairwise and
    ranking items, one value for rating items."""
    per_item: dict[int, list[Submission]] = defaultdict(list)
    for row in work:
        per_item[row.item_id].append(row)
    rows = []
    for dimension in labels.dimensions:
        prefix = "likert" if dimension.kind == "likert" else "vote"
        for item_id, item_rows in per_item.items():
            by_response: dict[int, tuple[list[Any], list[float]]] = defaultdict(lambda: ([], []))
            for row in item_rows:
                value = (row.answer.get("answers") or {}).get(dimension.key)
                values = value if isinstance(value, list) else [value]
                for response, single in enumerate(values):
                    if single is None or (isinstance(single, bool) and dimension.kind == "likert"):
                        continue
                    by_response[response][0].append(single)
                    by_response[response][1].append(reliability[(row.expert_id, dimension.key)])
            entries, confidences = [], []
            for response in sorted(by_response):
                values, weights = by_response[response]
                codes: dict[str, int] = {}
                numbers = [numeric_answer(single, codes) for single in values]
                kept = [(n, w) for n, w in zip(numbers, weights, strict=True) if n is not None]
                if not kept:
                    continue
                value, spread, measure = weighted_consensus(
                    [n for n, _ in kept], [w for _, w in kept], dimension.kind
                )
                if codes:
                    value = {code: name for name, code in codes.items()}[int(value)]
                if dimension.kind == "likert":
                    span = ((dimension.high or 1) - (dimension.low or 0)) / 2.0 + 1.0
                    confidences.append(max(0.0, 1.0 - measure / span))
                    entries.append({"mean": value, "spread": spread, "n": len(kept)})
                else:
                    confidences.append(measure)
                    entries.append({"value": value, "share": spread, "n": len(kept)})
            if not entries:
                continue
            single_value = project.task_type == TaskType.RATING
            rows.append(
                ItemConsensus(
                    run=run,
                    item_id=item_id,
                    target=f"{prefix}:{dimension.key}",
                    value=entries[0] if single_value else entries,
                    confidence=float(min(confidences)),
                    n_labels=len(item_rows),
                )
            )
    return rows


def _strengths(
    winners: list[int], losers: list[int], n_responses: int
) -> tuple[np.ndarray, np.ndarray]:
    result = bradley_terry(np.array(winners), np.array(losers), n_items=n_responses)
    covariance = bradley_terry_covariance(np.array(winners), np.array(losers), result.strength)
    return np.log(result.strength), covariance


def _probability_interval(
    log_strength: np.ndarray, covariance: np.ndarray, first: int, second: int
) -> tuple[float, float, float]:
    """P(first beats second) under Bradley-Terry, and its 90% interval."""
    margin = float(log_strength[first] - log_strength[second])
    variance = float(
        covariance[first, first] + covariance[second, second] - 2 * covariance[first, second]
    )
    spread = Z_90 * np.sqrt(max(variance, 0.0))

    def logistic(value: float) -> float:
        return float(1.0 / (1.0 + np.exp(-value)))

    return logistic(margin), logistic(margin - spread), logistic(margin + spread)


def ranking_consensus(run: ScoringRun, work: list[Submission]) -> list[ItemConsensus]:
    """Bradley-Terry over every ordered pair each ranking implies: the consensus order
    (`ranking`, strongest first) and each response's strength with a 90% interval on its
    probability of beating the consensus runner-up (`ranking_strengths`)."""
    per_item: dict[int, list[list[int]]] = defaultdict(list)
    for row in work:
        ranking = row.answer.get("ranking")
        if isinstance(ranking, list) and ranking:
            per_item[row.item_id].append([int(index) for index in ranking])
    rows = []
    for item_id, rankings in per_item.items():
        n_responses = max(len(ranking) for ranking in rankings)
        winners, losers = [], []
        for ranking in rankings:
            for position, better in enumerate(ranking):
                for worse in ranking[position + 1 :]:
                    winners.append(better)
                    losers.append(worse)
        log_strength, covariance = _strengths(winners, losers, n_responses)
        order = [int(index) for index in np.lexsort((np.arange(n_responses), -log_strength))]
        pairs = [
            _probability_interval(log_strength, covariance, order[k], order[k + 1])
            for k in range(n_responses - 1)
        ]
        confidence = float(np.mean([probability for probability, _, _ in pairs])) if pairs else 1.0
        rows.append(
            ItemConsensus(
                run=run,
                item_id=item_id,
                target="ranking",
                value=order,
                confidence=confidence,
                n_labels=len(rankings),
            )
        )
        rows.append(
            ItemConsensus(
                run=run,
                item_id=item_id,
                target="ranking_strengths",
                value={
                    "log_strength": [round(float(value), 6) for value in log_strength],
                    "se": [
                        round(float(np.sqrt(max(covariance[k, k], 0.0))), 6)
                        for k in range(n_responses)
                    ],
                    "beats_next": [
                        {"p": round(p, 6), "low": round(low, 6), "high": round(high, 6)}
                        for p, low, high in pairs
                    ],
                },
                confidence=confidence,
                n_labels=len(rankings),
            )
        )
    return rows


def pairwise_strengths(run: ScoringRun, work: list[Submission]) -> list[ItemConsensus]:
    """Per pairwise item, Bradley-Terry on its two responses (a tie is half a win each way):
    P(a beats b) with a 90% interval (`strength`): how strong a preference the DPO pair is."""
    per_item: dict[int, list[str]] = defaultdict(list)
    for row in work:
        preference = row.answer.get(PREFERENCE)
        if preference in PREFERENCES:
            per_item[row.item_id].append(preference)
    rows = []
    for item_id, preferences in per_item.items():
        winners, losers = [], []
        for preference in preferences:
            if preference in ("a", "tie"):
                winners.append(0)
                losers.append(1)
            if preference in ("b", "tie"):
                winners.append(1)
                losers.append(0)
        log_strength, covariance = _strengths(winners, losers, 2)
        probability, low, high = _probability_interval(log_strength, covariance, 0, 1)
        rows.append(
            ItemConsensus(
                run=run,
                item_id=item_id,
                target="strength",
                value={"p_a": round(probability, 6), "low": round(low, 6), "high": round(high, 6)},
                confidence=max(probability, 1 - probability),
                n_labels=len(preferences),
            )
        )
    return rows


def gold_anchored_dawid_skene(
    project: Project,
    labels: Labels,
    categories: list[tuple[Submission, int]],
    item_position: dict[int, int],
    n_experts: int,
    n_classes: int,
) -> Any:
    """Dawid-Skene over the work items, anchored by the gold items: their labels join the
    arrays with the gold answer's class held fixed, so every contributor's confusion matrix is
    calibrated by the hidden tests they took (docs/SCORING.md section 3)."""
    gold_rows = []
    known_class: dict[int, int] = {}
    for row in labels.submissions:
        if not labels.is_gold(row) or row.item_id not in labels.gold:
            continue
        category = category_of(project, row.answer)
        truth = category_of(project, labels.gold[row.item_id])
        if category is None or truth is None or max(category, truth) >= n_classes:
            continue
        gold_rows.append((row, category))
        known_class[row.item_id] = truth
    gold_position = {
        item_id: len(item_position) + index for index, item_id in enumerate(sorted(known_class))
    }
    rows = categories + gold_rows
    position = {**item_position, **gold_position}
    known = np.full(len(position), -1)
    for item_id, truth in known_class.items():
        known[gold_position[item_id]] = truth
    result = dawid_skene(
        np.array([position[row.item_id] for row, _ in rows]),
        np.array([labels.expert_index[row.expert_id] for row, _ in rows]),
        np.array([value for _, value in rows]),
        n_items=len(position),
        n_workers=n_experts,
        n_classes=n_classes,
        known=known if known_class else None,
    )
    # Only the work items' consensus is reported; the first len(item_position) rows are theirs.
    count = len(item_position)
    return dataclasses.replace(
        result,
        posteriors=result.posteriors[:count],
        labels=result.labels[:count],
        confidence=result.confidence[:count],
    )
