"""The before and after of a promotion (the bad-case loop closed, docs/LOOP.md): each
dimension's mean on a 0..1 scale, with n and a 95% interval, over a re-label batch's items and
over the whole project, from the labels that count."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from projects import evolution
from projects.intervals import mean_with_interval
from projects.models import RelabelBatch, Submission
from projects.relabel import counted_submissions


def _dimension_values(rows: Iterable[Submission]) -> dict[str, list[float]]:
    """Each counted label's dimension answers on the 0..1 scale, read with the rubric version
    the label was given under (a likert 1..7 of v1 and a 1..5 of v2 compare on one scale)."""
    kinds: dict[int, dict[str, tuple[str, int | None, int | None]]] = {}
    values: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        version = kinds.get(row.rubric_version_id)
        if version is None:
            version = kinds[row.rubric_version_id] = {
                dimension.key: (dimension.kind, dimension.min_value, dimension.max_value)
                for dimension in row.rubric_version.dimensions.all()
            }
        for key, value in (row.answer.get("answers") or {}).items():
            kind = version.get(key)
            if kind is None:
                continue
            for single in value if isinstance(value, list) else [value]:
                score = evolution.normalised(kind[0], kind[1], kind[2], single)
                if score is not None:
                    values[key].append(score)
    return values


def _compare(before: QuerySet[Submission], after: QuerySet[Submission]) -> dict[str, Any]:
    related = ("rubric_version",)
    old = _dimension_values(
        before.select_related(*related).prefetch_related("rubric_version__dimensions")
    )
    new = _dimension_values(
        after.select_related(*related).prefetch_related("rubric_version__dimensions")
    )
    result = {}
    for key in sorted(set(old) | set(new)):
        first, second = mean_with_interval(old.get(key, [])), mean_with_interval(new.get(key, []))
        result[key] = {
            "before": first,
            "after": second,
            "change": None
            if first is None or second is None
            else round(second["mean"] - first["mean"], 4),
        }
    return {"labels_before": before.count(), "labels_after": after.count(), "dimensions": result}


def relabel_batch_trend(*, batch: RelabelBatch) -> dict[str, Any]:
    """Each dimension's mean (0..1) before and after the promotion, with n and a 95% interval
    (Wilson for binary dimensions, Student's t otherwise), over the batch's items (their labels
    before the promotion against their new labels) and over the whole project (labels
    submitted before the promotion against labels given under its rubric version since).
    Only labels that count (`counted_submissions`), never gold items. A promoted dimension
    has no "before": it did not exist."""
    counted = counted_submissions(batch.project).filter(item__is_gold=False)
    item_ids = batch.entries.values("item_id")
    since = {
        "submitted_at__gte": batch.created_at,
        "rubric_version__number__gte": batch.rubric_version.number,
    }
    return {
        "batch": batch.pk,
        "promotion": batch.promotion,
        "dimension": batch.dimension or None,
        "promoted_at": batch.created_at,
        "rubric_version": batch.rubric_version.number,
        "relabelled_items": _compare(
            counted.filter(item_id__in=item_ids, submitted_at__lt=batch.created_at),
            counted.filter(item_id__in=item_ids, **since),
        ),
        "project": _compare(
            counted.filter(submitted_at__lt=batch.created_at), counted.filter(**since)
        ),
    }
