"""Consensus (gold-anchored Dawid-Skene) and agreement, pooled over the rubric's dimensions."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from projects.models import Project, Review, ReviewStatus, Submission
from scoring.engine import agreement as agreement_engine
from scoring.engine.dawid_skene import dawid_skene
from scoring.engine.gold import GoldDimension
from scoring.services.labels import Labels, _category


def _consensus(
    project: Project,
    labels: Labels,
    categories: list[tuple[Submission, int]],
    item_position: dict[int, int],
    n_experts: int,
    n_classes: int,
) -> Any:
    """Dawid-Skene over the work items, anchored by the gold items: their labels join the
    arrays with the gold answer's class held fixed, so every contributor's confusion matrix is
    calibrated by the hidden tests they took (SCORING.md section 3; docs/SCORING.md)."""
    gold_rows = []
    known_class: dict[int, int] = {}
    for row in labels.submissions:
        if not labels.items[row.item_id].is_gold or row.item_id not in labels.gold:
            continue
        category = _category(project, row.answer)
        truth = _category(project, labels.gold[row.item_id])
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


def _pairwise_agreement(
    categories: list[tuple[Submission, int]], labels: Labels
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
    labels: Labels, work: list[Submission], dimension: GoldDimension
) -> tuple[int, list[tuple[int, int, float]]]:
    """(number of units, cells (worker, unit, value)) of one dimension: a per-response value is
    its own unit (item, response); choice options become nominal codes."""
    units: dict[tuple[int, int], int] = {}
    codes: dict[str, int] = {}
    cells = []
    for row in work:
        value = (row.answer.get("answers") or {}).get(dimension.key)
        values = value if isinstance(value, list) else [value]
        for response, single in enumerate(values):
            if isinstance(single, str):
                number = float(codes.setdefault(single, len(codes)))
            elif isinstance(single, bool) or not isinstance(single, int | float):
                continue
            else:
                number = float(single)
            unit = units.setdefault((row.item_id, response), len(units))
            cells.append((labels.expert_index[row.expert_id], unit, number))
    return len(units), cells


def _dimension_alphas(labels: Labels, work: list[Submission]) -> dict[str, float | None]:
    """Krippendorff's alpha per rubric dimension (ordinal for likert, nominal otherwise)."""
    alphas: dict[str, float | None] = {}
    for dimension in labels.dimensions:
        n_units, cells = _dimension_cells(labels, work, dimension)
        if not cells:
            continue
        matrix = np.full((len(labels.experts), n_units), np.nan)
        for worker, unit, single in cells:
            matrix[worker, unit] = single
        level = "ordinal" if dimension.kind == "likert" else "nominal"
        alpha = agreement_engine.krippendorff_alpha(matrix, level)
        alphas[f"dim:{dimension.key}"] = None if np.isnan(alpha) else round(alpha, 6)
    return alphas


def _dimension_agreement(
    labels: Labels, work: list[Submission], n_experts: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per contributor, leave-one-out agreements and comparisons over every rubric dimension
    (SCORING.md section 2: likert within tolerance of the others' median, others exact), to be
    pooled with the preference's: an expert who inverts one dimension is seen there."""
    hits = np.zeros(n_experts)
    counted = np.zeros(n_experts, dtype=np.int64)
    for dimension in labels.dimensions:
        n_units, cells = _dimension_cells(labels, work, dimension)
        if not cells:
            continue
        workers = np.array([cell[0] for cell in cells])
        units = np.array([cell[1] for cell in cells])
        values = np.array([cell[2] for cell in cells])
        if dimension.kind == "likert":
            rates = agreement_engine.leave_one_out_agreement(
                units,
                workers,
                values,
                n_items=n_units,
                n_workers=n_experts,
                tolerance=float(dimension.tolerance),
            )
        else:
            codes = values.astype(np.int64)
            rates = agreement_engine.leave_one_out_agreement(
                units,
                workers,
                codes,
                n_items=n_units,
                n_workers=n_experts,
                n_classes=int(codes.max()) + 1,
            )
        hits += np.nan_to_num(rates.rate) * rates.n
        counted += rates.n
    return hits, counted


def _field_matches(project: Project, labels: Labels, original: Any, fixed: Any) -> list[bool]:
    """Per compared field of a fixed label, whether the reviewer kept the expert's answer:
    the categorical target, then every rubric dimension per response (likert within its
    tolerance, anything else exactly), the same fields pooled agreement compares."""
    matches = []
    mine, theirs = _category(project, original), _category(project, fixed)
    if mine is not None and theirs is not None:
        matches.append(mine == theirs)
    for dimension in labels.dimensions:
        first = (original.get("answers") or {}).get(dimension.key)
        second = (fixed.get("answers") or {}).get(dimension.key)
        if first is None or second is None:
            continue
        pairs = zip(first, second, strict=False) if isinstance(first, list) else [(first, second)]
        for a, b in pairs:
            numeric = isinstance(a, int | float) and isinstance(b, int | float)
            if dimension.kind == "likert" and numeric:
                matches.append(abs(float(a) - float(b)) <= float(dimension.tolerance))
            else:
                matches.append(a == b)
    return matches


def _review_agreement(
    project: Project, labels: Labels, high_water: int, n_experts: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Decided reviews as agreement evidence about the reviewed expert (issue 6's review
    workflow): an accepted label agrees with its reviewer on every field, a rejected one on
    none, a fixed one field by field. Each field counts like one comparison with a peer.
    Returns per contributor (hits, comparisons) and the number of reviews used."""

    hits = np.zeros(n_experts)
    counted = np.zeros(n_experts, dtype=np.int64)
    used = 0
    decided = Review.objects.filter(
        project=project,
        status__in=[ReviewStatus.ACCEPTED, ReviewStatus.REJECTED, ReviewStatus.FIXED],
        submission_id__lte=high_water,
    ).select_related("submission")
    for review in decided:
        position = labels.expert_index.get(review.submission.expert_id)
        if position is None:
            continue  # only rejected labels: not a contributor of this run
        answer = review.submission.answer
        fields = len(_field_matches(project, labels, answer, answer))
        if review.status == ReviewStatus.FIXED and review.fixed_answer is not None:
            matches = _field_matches(project, labels, answer, review.fixed_answer)
        else:
            matches = [review.status == ReviewStatus.ACCEPTED] * fields
        if not matches:
            continue
        hits[position] += sum(matches)
        counted[position] += len(matches)
        used += 1
    return hits, counted, used
