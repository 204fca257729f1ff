"""The bad-case loop and rubric evolution (issue 10): which dimension experts blame on bad
cases, promoting a recurring failure to a new rubric dimension or to new gold items, and per
dimension trends across rubric versions and model versions."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from django.db import transaction

from contributors.models import ExpertProfile
from marketplace.errors import DomainError
from marketplace.models import User
from projects import selectors, services
from projects.answers import dimension_specs, validate_answer
from projects.intervals import mean_with_interval
from projects.models import (
    GOLD_TASK_TYPES,
    DimensionKind,
    GoldAnswer,
    Item,
    ItemSource,
    Project,
    RubricVersion,
    Submission,
    SubmissionStatus,
)

REASONS_SHOWN = 5
# A dimension "moved" when its normalised mean changed by more than this between versions.
MOVE_THRESHOLD = 0.05


def uuids(values: list[Any]) -> list[uuid.UUID]:
    """The values that are UUIDs: anything else matches no item (a query with it would raise)."""
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return found


def bad_cases_by_dimension(*, project: Project) -> list[dict[str, Any]]:
    """Bad-case items' labels grouped by the dimension experts blamed, most blamed first."""
    rows = Submission.objects.filter(
        project=project, item__context__bad_case=True, blame__isnull=False
    ).values_list("blame", "item__public_id")
    counts: Counter[str] = Counter()
    reasons: dict[str, list[str]] = defaultdict(list)
    items: dict[str, set[str]] = defaultdict(set)
    for blame, item_id in rows:
        if not isinstance(blame, dict):
            continue
        key = str(blame.get("dimension"))
        counts[key] += 1
        items[key].add(str(item_id))
        reason = str(blame.get("reason", "")).strip()
        if reason and len(reasons[key]) < REASONS_SHOWN:
            reasons[key].append(reason)
    return [
        {"dimension": key, "labels": n, "items": sorted(items[key]), "reasons": reasons[key]}
        for key, n in counts.most_common()
    ]


def rubric_promote_dimension(
    *, project: Project, dimension: dict[str, Any], created_by: User
) -> RubricVersion:
    """A new rubric version: the current dimensions plus the promoted one. Earlier versions
    stay exactly as they were (labels keep pointing at the version they were given under)."""
    current = selectors.project_current_rubric(project=project)
    existing = []
    if current is not None:
        for row in current.dimensions.order_by("position"):
            entry: dict[str, Any] = {
                "key": row.key,
                "label": row.label,
                "description": row.description,
                "kind": row.kind,
                "options": list(row.options),
                "weight": row.weight,
                "tolerance": row.tolerance,
            }
            if row.kind == DimensionKind.LIKERT:
                entry.update(min=row.min_value, max=row.max_value)
            existing.append(entry)
    if any(entry["key"] == dimension["key"] for entry in existing):
        raise DomainError(
            f"The rubric already has '{dimension['key']}'.", code="duplicate_dimension"
        )
    rubric = {
        "instructions": current.instructions if current else "",
        "dimensions": [*existing, dimension],
    }
    return services.rubric_version_create(project=project, rubric=rubric, created_by=created_by)


def gold_promote_items(
    *, project: Project, promotions: list[dict[str, Any]], created_by: User
) -> list[Item]:
    """Copy bad-case items into new gold items with the lab's answers (validated like a gold
    import), so the failure is tested on every expert from now on."""
    if project.task_type not in GOLD_TASK_TYPES:
        raise DomainError("This task type has no gold answers.", code="gold_not_supported")
    rubric = selectors.project_current_rubric(project=project)
    if rubric is None:
        raise DomainError("The project has no rubric yet.", code="no_rubric")
    specs = dimension_specs(rubric.dimensions.all())
    sources = {
        str(item.public_id): item
        for item in Item.objects.filter(
            project=project, public_id__in=uuids([p.get("item") for p in promotions])
        )
    }
    problems = []
    prepared = []
    for index, promotion in enumerate(promotions):
        source = sources.get(str(promotion.get("item")))
        if source is None:
            problems.append({"index": index, "field": "item", "message": "no such item here"})
            continue
        answer, errors = validate_answer(
            task_type=project.task_type,
            dimensions=specs,
            response_count=len(source.responses),
            answer=promotion.get("gold"),
            require_all_dimensions=False,
        )
        problems += [
            {"index": index, "field": f"gold.{path}" if path else "gold", "message": message}
            for path, message in errors
        ]
        prepared.append((source, answer))
    if problems:
        raise DomainError("Nothing was promoted.", code="invalid_promotions", details=problems)
    created = []
    with transaction.atomic():
        for source, answer in prepared:
            gold = Item.objects.create(
                project=project,
                prompt=source.prompt,
                responses=source.responses,
                context={**source.context, "promoted_from": str(source.public_id)},
                source=ItemSource.LIVE if source.source == ItemSource.LIVE else ItemSource.BULK,
                model_version=source.model_version,
                is_gold=True,
            )
            GoldAnswer.objects.create(item=gold, answer=answer, rubric_version=rubric)
            created.append(gold)
    return created


def normalised(kind: str, low: int | None, high: int | None, value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if kind == DimensionKind.LIKERT and low is not None and high is not None and high > low:
        return (float(value) - low) / (high - low)
    if kind == DimensionKind.BINARY:
        return float(value)
    return None


def dimension_trends(*, project: Project) -> dict[str, Any]:
    """Mean score per dimension (0..1) per rubric version and per model version, each with its
    n and 95% interval (`*_stats`), the change between consecutive model versions, and which
    dimensions moved together or against each other (Pearson correlation of their changes,
    given at least three model versions). Only labels that count: accepted ones (a stopped
    expert's labels were discounted), and an AI judge's only where the lab lets them count."""

    rows = (
        Submission.objects.filter(
            project=project, status=SubmissionStatus.ACCEPTED, item__is_gold=False
        )
        .select_related("rubric_version", "item")
        .order_by("item__created_at", "id")
    )
    if not project.ai_judge_counts:
        judges = ExpertProfile.objects.exclude(ai_judge="").values("user_id")
        rows = rows.exclude(expert_id__in=judges)
    kinds: dict[tuple[int, str], tuple[str, int | None, int | None]] = {}
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)  # (axis value, dim) -> values
    by_version: dict[tuple[int, str], list[float]] = defaultdict(list)
    model_order: list[str] = []
    for row in rows:
        version = row.rubric_version
        if version.pk not in {key[0] for key in kinds}:
            for dimension in version.dimensions.all():
                kinds[(version.pk, dimension.key)] = (
                    dimension.kind,
                    dimension.min_value,
                    dimension.max_value,
                )
        model = row.item.model_version or "(none)"
        if model not in model_order:
            model_order.append(model)
        for key, value in (row.answer.get("answers") or {}).items():
            kind = kinds.get((version.pk, key))
            if kind is None:
                continue
            for single in value if isinstance(value, list) else [value]:
                score = normalised(kind[0], kind[1], kind[2], single)
                if score is not None:
                    sums[(model, key)].append(score)
                    by_version[(version.number, key)].append(score)
    dimensions = sorted({key for _, key in sums})
    per_model = {
        model: {key: _mean(sums.get((model, key))) for key in dimensions} for model in model_order
    }
    per_rubric: dict[int, dict[str, float | None]] = defaultdict(dict)
    for (number, key), values in sorted(by_version.items()):
        per_rubric[number][key] = _mean(values)
    deltas = {
        key: [
            _delta(per_model[model_order[i]].get(key), per_model[model_order[i + 1]].get(key))
            for i in range(len(model_order) - 1)
        ]
        for key in dimensions
    }
    movement = {}
    for key, series in deltas.items():
        last = next((value for value in reversed(series) if value is not None), None)
        movement[key] = (
            "no data"
            if last is None
            else "improved"
            if last > MOVE_THRESHOLD
            else "regressed"
            if last < -MOVE_THRESHOLD
            else "unchanged"
        )
    correlations = {}
    if len(model_order) >= 3:
        for i, first in enumerate(dimensions):
            for second in dimensions[i + 1 :]:
                pairs = [
                    (a, b)
                    for a, b in zip(deltas[first], deltas[second], strict=True)
                    if a is not None and b is not None
                ]
                if len(pairs) >= 2:
                    a, b = np.array(pairs).T
                    if a.std() > 0 and b.std() > 0:
                        correlations[f"{first}~{second}"] = round(float(np.corrcoef(a, b)[0, 1]), 4)
    trade_offs = [name for name, value in correlations.items() if value <= -0.5]
    return {
        "model_versions": model_order,
        "per_model_version": per_model,
        "per_model_version_stats": {
            model: {key: _stats(sums.get((model, key))) for key in dimensions}
            for model in model_order
        },
        "per_rubric_version": dict(per_rubric),
        "per_rubric_version_stats": {
            number: {key: _stats(values) for (n, key), values in by_version.items() if n == number}
            for number in sorted({number for number, _ in by_version})
        },
        "deltas": deltas,
        "movement": movement,
        "correlations": correlations,
        "trade_offs": trade_offs,
    }


def _mean(values: list[float] | None) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _stats(values: list[float] | None) -> dict[str, Any] | None:
    """Mean, n and the 95% interval of the mean (Wilson for 0/1 values, else Student's t)."""
    return mean_with_interval(values or [])


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 4)
