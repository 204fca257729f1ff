"""Stage 2 of a scoring run: agreement, and the stage that also collects consensus
(docs/SCORING.md sections 2 and 3; the consensus algorithms are in `consensus.py`).

- Agreement per contributor: leave-one-out agreement on the categorical answer and on every
  rubric dimension (per response), plus decided reviews as evidence, pooled into one rate and
  kept per dimension, each with a Beta interval.
- Consensus per item: gold-anchored Dawid-Skene on the categorical answer; the quality-weighted
  mean and spread of every likert dimension (and a weighted vote on binary and choice ones);
  Bradley-Terry strengths with intervals for rankings and for the two sides of a pairwise item.
- Only the counting labels take part. An AI judge that does not count is compared with them
  afterwards (`judge_agreement`), never the other way round.

Past 400 lines on purpose: categorical, per-dimension, review and judge agreement all add to
one stage's accumulators (`_add`), read together.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from projects.models import Project, Review, ReviewStatus, Submission, TaskType
from scoring.engine import agreement as agreement_engine
from scoring.engine.gold import PREFERENCE, GoldDimension
from scoring.engine.majority import majority_vote
from scoring.models import ItemConsensus, ScoringRun
from scoring.services.consensus import (
    gold_anchored_dawid_skene,
    likert_consensus,
    pairwise_strengths,
    ranking_consensus,
    reliabilities,
)
from scoring.services.gold import GoldEvidence
from scoring.services.labels import PREFERENCES, Labels, category_of, numeric_answer

# Intervals shown with every rate: the 5% and 95% quantiles of Beta(1 + hits, 1 + misses).
INTERVAL = (0.05, 0.95)


def beta_interval(hits: float, n: float) -> tuple[float | None, float | None]:
    if n <= 0:
        return None, None
    distribution = stats.beta(1.0 + hits, 1.0 + n - hits)
    return float(distribution.ppf(INTERVAL[0])), float(distribution.ppf(INTERVAL[1]))


def rate_with_interval(hits: float, n: float) -> dict[str, Any] | None:
    if n <= 0:
        return None
    low, high = beta_interval(hits, n)
    return {"rate": hits / n, "low": low, "high": high, "n": int(n)}


@dataclass
class AgreementStage:
    """Per contributor (indexed like `Labels.experts`) and per item: what stage 2 found."""

    hits: np.ndarray
    n: np.ndarray
    # expert index -> component key -> (hits, comparisons)
    per_component: dict[int, dict[str, tuple[float, int]]]
    categories: list[tuple[Submission, int]]
    consensus: list[ItemConsensus] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    # Dawid-Skene's estimate of each contributor's accuracy on the categorical answer
    # (prior-weighted diagonal of the confusion matrix), the no-gold evidence for tiers.
    consensus_accuracy: dict[int, float] = field(default_factory=dict)
    # Review outcomes per expert index: Counter of accepted / fixed / rejected.
    review_outcomes: dict[int, Counter[str]] = field(default_factory=dict)

    def rate(self, index: int) -> float | None:
        return float(self.hits[index] / self.n[index]) if self.n[index] else None

    def interval(self, index: int) -> tuple[float | None, float | None]:
        return beta_interval(float(self.hits[index]), float(self.n[index]))


def agreement_stage(
    *,
    run: ScoringRun,
    project: Project,
    labels: Labels,
    gold: dict[int, GoldEvidence],
) -> AgreementStage:
    n_experts = len(labels.experts)
    work = [row for row in labels.submissions if not labels.is_gold(row)]
    categories = [
        (row, category)
        for row in work
        if (category := category_of(project, row.answer)) is not None
    ]
    stage = AgreementStage(
        hits=np.zeros(n_experts),
        n=np.zeros(n_experts, dtype=np.int64),
        per_component=defaultdict(dict),
        categories=categories,
    )
    stage.summary["n_labels"] = len(labels.submissions)
    stage.summary["n_contributors"] = n_experts
    if categories:
        _categorical(stage, run, project, labels)
    _dimensions(stage, labels, work)
    _reviews(stage, project, labels, run.submission_high_water)
    reliability = reliabilities(labels, gold, stage.per_component)
    stage.consensus += likert_consensus(run, project, labels, work, reliability)
    if project.task_type == TaskType.RANKING:
        stage.consensus += ranking_consensus(run, work)
    if project.task_type == TaskType.PAIRWISE:
        stage.consensus += pairwise_strengths(run, work)
    return stage


def _add(stage: AgreementStage, index: int, key: str, hits: float, n: int) -> None:
    if n <= 0:
        return
    before_hits, before_n = stage.per_component[index].get(key, (0.0, 0))
    stage.per_component[index][key] = (before_hits + hits, before_n + n)
    stage.hits[index] += hits
    stage.n[index] += n


def _categorical_target(project: Project, labels: Labels) -> str:
    if project.task_type == TaskType.PAIRWISE:
        return PREFERENCE
    if project.task_type == TaskType.RANKING:
        return "best"
    return f"dim:{labels.dimensions[0].key}" if labels.dimensions else "rating"


def _categorical(stage: AgreementStage, run: ScoringRun, project: Project, labels: Labels) -> None:
    """Leave-one-out agreement on the categorical answer, and its consensus."""
    categories = stage.categories
    n_experts = len(labels.experts)
    item_ids = sorted({row.item_id for row, _ in categories})
    position = {item_id: index for index, item_id in enumerate(item_ids)}
    n_classes = max(value for _, value in categories) + 1
    if project.task_type == TaskType.PAIRWISE:
        n_classes = len(PREFERENCES)
    items_array = np.array([position[row.item_id] for row, _ in categories])
    workers_array = np.array([labels.expert_index[row.expert_id] for row, _ in categories])
    values_array = np.array([value for _, value in categories])
    rates = agreement_engine.leave_one_out_agreement(
        items_array,
        workers_array,
        values_array,
        n_items=len(item_ids),
        n_workers=n_experts,
        n_classes=n_classes,
    )
    target = _categorical_target(project, labels)
    component = PREFERENCE if project.task_type == TaskType.PAIRWISE else target
    for index in range(n_experts):
        _add(
            stage,
            index,
            component,
            float(np.nan_to_num(rates.rate[index]) * rates.n[index]),
            int(rates.n[index]),
        )
    result = gold_anchored_dawid_skene(project, labels, categories, position, n_experts, n_classes)
    vote = majority_vote(items_array, values_array, n_items=len(item_ids), n_classes=n_classes)
    per_item_n = np.bincount(items_array, minlength=len(item_ids))
    for item_id, index in position.items():
        label = int(result.labels[index])
        if label < 0:
            continue
        value: Any = PREFERENCES[label] if project.task_type == TaskType.PAIRWISE else label
        stage.consensus.append(
            ItemConsensus(
                run=run,
                item_id=item_id,
                target=target,
                value=value,
                confidence=float(result.confidence[index]),
                n_labels=int(per_item_n[index]),
            )
        )
    stage.summary["dawid_skene"] = {
        "iterations": result.iterations,
        "agrees_with_majority": float(np.mean(result.labels == vote.labels)),
    }
    confusion = result.confusion
    priors = result.priors
    for index in range(n_experts):
        accuracy = float(np.sum(priors * np.diagonal(confusion[index])))
        stage.consensus_accuracy[index] = accuracy
    matrix = np.full((n_experts, len(item_ids)), np.nan)
    matrix[workers_array, items_array] = values_array
    alpha = agreement_engine.krippendorff_alpha(matrix, "nominal")
    stage.summary["alpha"] = {target: None if np.isnan(alpha) else round(alpha, 6)}


def pairwise_agreement(
    categories: list[tuple[Submission, int]],
) -> dict[int, dict[int, tuple[float, int]]]:
    """expert -> other expert -> (share of shared items with the same answer, shared items)."""
    by_item: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for row, value in categories:
        by_item[row.item_id].append((row.expert_id, value))
    same: Counter[tuple[int, int]] = Counter()
    shared: Counter[tuple[int, int]] = Counter()
    for answers in by_item.values():
        for first, first_value in answers:
            for second, second_value in answers:
                if first != second:
                    shared[(first, second)] += 1
                    same[(first, second)] += first_value == second_value
    result: dict[int, dict[int, tuple[float, int]]] = defaultdict(dict)
    for (first, second), count in shared.items():
        result[first][second] = (same[(first, second)] / count, count)
    return result


def _dimension_cells(
    labels: Labels, rows: list[Submission], dimension: GoldDimension
) -> tuple[dict[tuple[int, int], int], list[tuple[int, int, float]]]:
    """(units, cells (worker, unit, value)) of one dimension: a per-response value is its own
    unit (item, response); choice options become nominal codes."""
    units: dict[tuple[int, int], int] = {}
    codes: dict[str, int] = {}
    cells = []
    for row in rows:
        value = (row.answer.get("answers") or {}).get(dimension.key)
        values = value if isinstance(value, list) else [value]
        for response, single in enumerate(values):
            number = numeric_answer(single, codes)
            if number is None:
                continue
            unit = units.setdefault((row.item_id, response), len(units))
            cells.append((labels.expert_index[row.expert_id], unit, number))
    return units, cells


def _dimensions(stage: AgreementStage, labels: Labels, work: list[Submission]) -> None:
    """Leave-one-out agreement per dimension (likert within tolerance of the others' median,
    others exact), and Krippendorff's alpha per dimension (ordinal for likert)."""
    n_experts = len(labels.experts)
    alphas = stage.summary.setdefault("alpha", {})
    for dimension in labels.dimensions:
        units, cells = _dimension_cells(labels, work, dimension)
        if not cells:
            continue
        workers = np.array([cell[0] for cell in cells])
        unit_index = np.array([cell[1] for cell in cells])
        values = np.array([cell[2] for cell in cells])
        if dimension.kind == "likert":
            rates = agreement_engine.leave_one_out_agreement(
                unit_index,
                workers,
                values,
                n_items=len(units),
                n_workers=n_experts,
                tolerance=float(dimension.tolerance),
            )
        else:
            codes = values.astype(np.int64)
            rates = agreement_engine.leave_one_out_agreement(
                unit_index,
                workers,
                codes,
                n_items=len(units),
                n_workers=n_experts,
                n_classes=int(codes.max()) + 1,
            )
        for index in range(n_experts):
            _add(
                stage,
                index,
                dimension.key,
                float(np.nan_to_num(rates.rate[index]) * rates.n[index]),
                int(rates.n[index]),
            )
        matrix = np.full((n_experts, len(units)), np.nan)
        matrix[workers, unit_index] = values
        level = "ordinal" if dimension.kind == "likert" else "nominal"
        alpha = agreement_engine.krippendorff_alpha(matrix, level)
        alphas[f"dim:{dimension.key}"] = None if np.isnan(alpha) else round(alpha, 6)


def field_matches(
    project: Project, labels: Labels, original: Any, fixed: Any
) -> list[tuple[str, bool]]:
    """Per compared field of a fixed label, whether the reviewer kept the expert's answer:
    the categorical target, then every rubric dimension per response (likert within its
    tolerance, anything else exactly), the same fields pooled agreement compares."""
    matches = []
    mine, theirs = category_of(project, original), category_of(project, fixed)
    if mine is not None and theirs is not None:
        key = PREFERENCE if project.task_type == TaskType.PAIRWISE else "category"
        matches.append((key, mine == theirs))
    for dimension in labels.dimensions:
        first = (original.get("answers") or {}).get(dimension.key)
        second = (fixed.get("answers") or {}).get(dimension.key)
        if first is None or second is None:
            continue
        pairs = zip(first, second, strict=False) if isinstance(first, list) else [(first, second)]
        for a, b in pairs:
            numeric = isinstance(a, int | float) and isinstance(b, int | float)
            if dimension.kind == "likert" and numeric:
                matches.append(
                    (dimension.key, abs(float(a) - float(b)) <= float(dimension.tolerance))
                )
            else:
                matches.append((dimension.key, a == b))
    return matches


# A reviewer whose accept rate is at least RUBBER_STAMP_RATE, over MIN_REVIEWS_TO_JUDGE
# reviews or more, while the other reviewers accept at least RUBBER_STAMP_GAP less of the
# same authors' work, is flagged `accepts_everything`, and their decisions stop counting as
# evidence about anyone (the same, mirrored, for `rejects_everything`).
RUBBER_STAMP_RATE = 0.95
RUBBER_STAMP_GAP = 0.2
MIN_REVIEWS_TO_JUDGE = 10


def reviewer_report(decided: list[Review]) -> dict[int, dict[str, Any]]:
    """Per reviewer: decided reviews, accept rate with its interval, the other reviewers'
    accept rate on the same authors, and whether their decisions count as evidence."""
    by_reviewer: dict[int, list[Review]] = defaultdict(list)
    by_author: dict[int, list[Review]] = defaultdict(list)
    for review in decided:
        if review.reviewer_id is None:
            continue
        by_reviewer[review.reviewer_id].append(review)
        by_author[review.submission.expert_id].append(review)
    report = {}
    for reviewer, reviews in by_reviewer.items():
        accepted = sum(review.status != ReviewStatus.REJECTED for review in reviews)
        authors = {review.submission.expert_id for review in reviews}
        others = [
            other
            for author in authors
            for other in by_author[author]
            if other.reviewer_id != reviewer
        ]
        others_accepted = sum(other.status != ReviewStatus.REJECTED for other in others)
        rate = accepted / len(reviews)
        others_rate = others_accepted / len(others) if others else None
        flag = None
        if len(reviews) >= MIN_REVIEWS_TO_JUDGE and others_rate is not None and len(others) >= 5:
            if rate >= RUBBER_STAMP_RATE and rate - others_rate >= RUBBER_STAMP_GAP:
                flag = "accepts_everything"
            elif rate <= 1 - RUBBER_STAMP_RATE and others_rate - rate >= RUBBER_STAMP_GAP:
                flag = "rejects_everything"
        low, high = beta_interval(accepted, len(reviews))
        report[reviewer] = {
            "reviews": len(reviews),
            "accept_rate": rate,
            "low": low,
            "high": high,
            "others_accept_rate_on_same_authors": others_rate,
            "others_reviews": len(others),
            "flag": flag,
            "counts_as_evidence": flag is None,
        }
    return report


def _reviews(stage: AgreementStage, project: Project, labels: Labels, high_water: int) -> None:
    """Decided reviews as evidence about the reviewed expert: an accepted label agrees with its
    reviewer on every field, a rejected one on none, a fixed one field by field (each field
    counts like one comparison with a peer); the outcomes themselves are kept per expert (the
    evidence demonstrations and corrections are scored by). Reviewers are scored too: one who
    accepts (or rejects) everything while the others do not is flagged, and their decisions
    stop counting as evidence."""
    decided = list(
        Review.objects.filter(
            project=project,
            status__in=[ReviewStatus.ACCEPTED, ReviewStatus.REJECTED, ReviewStatus.FIXED],
            submission_id__lte=high_water,
        ).select_related("submission")
    )
    reviewers = reviewer_report(decided)
    stage.summary["reviewers"] = {str(reviewer): row for reviewer, row in reviewers.items()}
    used = discounted = 0
    counting = set(labels.expert_index)
    for review in decided:
        expert = review.submission.expert_id
        if expert not in counting:
            continue  # only rejected labels, or a judge that does not count
        if (
            review.reviewer_id is not None
            and not reviewers[review.reviewer_id]["counts_as_evidence"]
        ):
            discounted += 1
            continue
        index = labels.expert_index[expert]
        stage.review_outcomes.setdefault(index, Counter())[review.status] += 1
        answer = review.submission.answer
        fields = field_matches(project, labels, answer, answer)
        if review.status == ReviewStatus.FIXED and review.fixed_answer is not None:
            matches = field_matches(project, labels, answer, review.fixed_answer)
        else:
            matches = [(key, review.status == ReviewStatus.ACCEPTED) for key, _ in fields]
        for key, agreed in matches:
            _add(stage, index, key, float(agreed), 1)
        used += 1
    stage.summary["reviews_as_evidence"] = used
    stage.summary["reviews_discounted"] = discounted


def judge_agreement(
    project: Project, labels: Labels, judge_rows: list[Submission]
) -> dict[str, tuple[float, int]]:
    """A non-counting judge's agreement with the counting labels of the same items: per
    component, (hits, comparisons). Categorical: equal to the others' majority (ties skipped);
    likert: within tolerance of the others' median; binary and choice: equal to their
    majority. The judge never enters the others' pool."""
    others: dict[int, list[Submission]] = defaultdict(list)
    for row in labels.submissions:
        if not labels.is_gold(row):
            others[row.item_id].append(row)
    result: dict[str, tuple[float, int]] = {}

    def add(key: str, agreed: bool) -> None:
        hits, n = result.get(key, (0.0, 0))
        result[key] = (hits + float(agreed), n + 1)

    categorical = PREFERENCE if project.task_type == TaskType.PAIRWISE else "category"
    for row in judge_rows:
        peers = others.get(row.item_id, [])
        if len(peers) < 2 or labels.items[row.item_id].is_gold:
            continue
        mine = category_of(project, row.answer)
        theirs = [c for peer in peers if (c := category_of(project, peer.answer)) is not None]
        if mine is not None and theirs:
            majority = Counter(theirs).most_common()
            if len(majority) == 1 or majority[0][1] > majority[1][1]:
                add(categorical, mine == majority[0][0])
        for dimension in labels.dimensions:
            given = (row.answer.get("answers") or {}).get(dimension.key)
            given_values = given if isinstance(given, list) else [given]
            for response, value in enumerate(given_values):
                peer_values: list[Any] = []
                for peer in peers:
                    other = (peer.answer.get("answers") or {}).get(dimension.key)
                    other_values = other if isinstance(other, list) else [other]
                    if response < len(other_values) and other_values[response] is not None:
                        peer_values.append(other_values[response])
                if not peer_values or value is None:
                    continue
                if dimension.kind == "likert":
                    add(
                        dimension.key,
                        abs(float(value) - float(np.median(np.asarray(peer_values, dtype=float))))
                        <= dimension.tolerance,
                    )
                else:
                    counts = Counter(map(str, peer_values)).most_common()
                    if len(counts) == 1 or counts[0][1] > counts[1][1]:
                        add(dimension.key, str(value) == counts[0][0])
    return result
