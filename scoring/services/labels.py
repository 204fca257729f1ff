"""A project's accepted labels as the arrays the engine reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from projects.models import GoldAnswer, Item, Project, Submission, SubmissionStatus, TaskType
from scoring.engine.gold import GoldDimension

ENGINE_VERSION = "1.0"
PREFERENCES = ("a", "b", "tie")


@dataclass
class Labels:
    """A project's accepted labels, as arrays the engine reads."""

    experts: list[int]
    expert_index: dict[int, int]
    submissions: list[Submission]
    gold: dict[int, dict[str, Any]]
    items: dict[int, Item]
    dimensions: list[GoldDimension]
    rows_by_expert: dict[int, list[Submission]] = field(default_factory=dict)


def _load(project: Project, high_water: int) -> Labels:
    submissions = list(
        Submission.objects.filter(
            project=project, status=SubmissionStatus.ACCEPTED, id__lte=high_water
        ).order_by("id")
    )
    experts = sorted({row.expert_id for row in submissions})
    items = Item.objects.in_bulk({row.item_id for row in submissions})
    gold = dict(GoldAnswer.objects.filter(item__project=project).values_list("item_id", "answer"))
    rubric = project.rubric_versions.order_by("-number").first()
    dimensions = [
        GoldDimension(key=d.key, kind=d.kind, weight=d.weight, tolerance=d.tolerance)
        for d in (rubric.dimensions.all() if rubric else [])
    ]
    labels = Labels(
        experts=experts,
        expert_index={expert: index for index, expert in enumerate(experts)},
        submissions=submissions,
        gold=gold,
        items=items,
        dimensions=dimensions,
    )
    for row in submissions:
        labels.rows_by_expert.setdefault(row.expert_id, []).append(row)
    return labels


def _category(project: Project, answer: dict[str, Any]) -> int | None:
    """The categorical answer agreement and Dawid-Skene use: the preference (pairwise), the
    best response (ranking), the first dimension's value (rating)."""
    if project.task_type == TaskType.PAIRWISE:
        value = answer.get("preference")
        return PREFERENCES.index(value) if value in PREFERENCES else None
    if project.task_type == TaskType.RANKING:
        ranking = answer.get("ranking") or []
        return int(ranking[0]) if ranking else None
    if project.task_type == TaskType.RATING:
        values = answer.get("answers") or {}
        first = next(iter(values.values()), None)
        return int(first) if isinstance(first, int | bool) else None
    return None
