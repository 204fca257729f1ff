"""A project's accepted labels as the arrays the engine reads.

Who counts: every person, and an AI judge only when the project lets its labels count
(`ai_judge_counts`). The labels of a judge that does not count are loaded apart
(`Labels.apart`): the judge is scored against the human gold and the humans, but it takes no
part in any human's agreement, consensus, impact or percentile, so adding it changes no human
score (docs/SCORING.md, "AI judges")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from projects.models import (
    DimensionKind,
    GoldAnswer,
    Item,
    Project,
    Submission,
    SubmissionStatus,
    TaskType,
)
from scoring.ai import ai_contributor_ids
from scoring.engine.gold import GoldDimension, age_weight

ENGINE_VERSION = "2.0"
PREFERENCES = ("a", "b", "tie")


@dataclass
class Labels:
    """A project's accepted labels, as arrays the engine reads. `experts` are the players
    (people and counting judges), indexed by `expert_index`."""

    experts: list[int]
    expert_index: dict[int, int]
    submissions: list[Submission]
    gold: dict[int, dict[str, Any]]
    items: dict[int, Item]
    dimensions: list[GoldDimension]
    rows_by_expert: dict[int, list[Submission]] = field(default_factory=dict)
    # Per gold item, its weight in gold posteriors (1 when new, halving every half-life).
    gold_weight: dict[int, float] = field(default_factory=dict)
    # Every AI judge among the project's labellers, counting or not.
    judges: set[int] = field(default_factory=set)
    # The labels of judges that do not count, kept out of everything above.
    apart: list[Submission] = field(default_factory=list)

    def is_gold(self, row: Submission) -> bool:
        return self.items[row.item_id].is_gold


def gold_dimensions(rubric: Any) -> list[GoldDimension]:
    """The rubric's dimensions as the engine's gold and agreement code reads them."""
    if rubric is None:
        return []
    return [
        GoldDimension(
            key=dimension.key,
            kind=dimension.kind,
            weight=dimension.weight,
            tolerance=dimension.tolerance,
            low=dimension.min_value if dimension.kind == DimensionKind.LIKERT else None,
            high=dimension.max_value if dimension.kind == DimensionKind.LIKERT else None,
            options=len(dimension.options or ()),
        )
        for dimension in rubric.dimensions.all()
    ]


def load_labels(project: Project, high_water: int, now: datetime | None = None) -> Labels:
    now = now or timezone.now()
    submissions = list(
        Submission.objects.filter(
            project=project, status=SubmissionStatus.ACCEPTED, id__lte=high_water
        ).order_by("id")
    )
    labellers = sorted({row.expert_id for row in submissions})
    judges = ai_contributor_ids(expert_ids=labellers)
    apart_ids = set() if project.ai_judge_counts else judges
    counting = [row for row in submissions if row.expert_id not in apart_ids]
    experts = sorted({row.expert_id for row in counting})
    items = Item.objects.in_bulk({row.item_id for row in submissions})
    gold: dict[int, dict[str, Any]] = {}
    gold_weight: dict[int, float] = {}
    for item_id, answer, created_at in GoldAnswer.objects.filter(item__project=project).values_list(
        "item_id", "answer", "created_at"
    ):
        gold[item_id] = answer
        # Whole days: a run's weights do not depend on the second it ran.
        age_days = (now - created_at).days
        gold_weight[item_id] = age_weight(age_days, project.gold_half_life_days)
    rubric = project.rubric_versions.order_by("-number").first()
    labels = Labels(
        experts=experts,
        expert_index={expert: index for index, expert in enumerate(experts)},
        submissions=counting,
        gold=gold,
        items=items,
        dimensions=gold_dimensions(rubric),
        gold_weight=gold_weight,
        judges=judges,
        apart=[row for row in submissions if row.expert_id in apart_ids],
    )
    for row in counting:
        labels.rows_by_expert.setdefault(row.expert_id, []).append(row)
    return labels


def category_of(project: Project, answer: dict[str, Any]) -> int | None:
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


def numeric_answer(value: Any, codes: dict[str, int]) -> float | None:
    """An answer as a number: numbers as they are, strings coded in order of appearance."""
    if isinstance(value, str):
        return float(codes.setdefault(value, len(codes)))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
