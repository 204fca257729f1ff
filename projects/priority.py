"""Who gets work first when work is scarce (a project's `priority`).

Routing is pull-based: an expert asks, the server leases the best item for them. Priority acts
only when more qualified experts are working on the project than there are open task slots:
then an expert answers 204 ("nothing right now") while at least as many experts stronger than
them have been active in the last PRIORITY_WINDOW, so the strongest get the remaining work and
the rest are not kept busy on it. With enough work for everyone, it changes nothing.

Strength, for `heaviest_dimension`: the expert's gold mean on the rubric's heaviest dimension in
the project's latest scoring run (0.5, neutral, before they have any there).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import F, Sum
from django.utils import timezone

from projects.models import Assignment, Item, Project
from scoring.models import ContributorScore
from scoring.selectors import latest_succeeded_run

PRIORITY_WINDOW = timedelta(minutes=15)
NEUTRAL_STRENGTH = 0.5


def _heaviest_dimension(config: Any) -> str | None:
    rubric = config.rubric
    if rubric is None:
        return None
    dimensions = sorted(rubric.dimensions.all(), key=lambda d: (-d.weight, d.position))
    return dimensions[0].key if dimensions else None


def _strengths(project: Project, key: str, experts: set[int]) -> dict[int, float]:
    run = latest_succeeded_run(project=project)
    if run is None:
        return {}
    strengths = {}
    rows = ContributorScore.objects.filter(run=run, expert_id__in=experts).values_list(
        "expert_id", "dimensions"
    )
    for expert, dimensions in rows:
        gold = (dimensions or {}).get(key, {}).get("gold") or {}
        if gold.get("mean") is not None:
            strengths[expert] = float(gold["mean"])
    return strengths


def yields_to_stronger(*, project: Project, expert: Any, config: Any) -> bool:
    """Whether this expert should wait: work is scarce and stronger experts are waiting."""
    if project.priority != "heaviest_dimension":
        return False
    key = _heaviest_dimension(config)
    if key is None:
        return False
    open_slots = (
        Item.objects.filter(project=project, is_gold=False, is_open=True).aggregate(
            slots=Sum(F("target_labels") - F("assigned_count"))
        )["slots"]
        or 0
    )
    since = timezone.now() - PRIORITY_WINDOW
    active = set(
        Assignment.objects.filter(project=project, served_at__gte=since)
        .exclude(expert=expert)
        .values_list("expert_id", flat=True)
        .distinct()
    )
    if open_slots > len(active):
        return False
    strengths = _strengths(project, key, active | {expert.pk})
    mine = strengths.get(expert.pk, NEUTRAL_STRENGTH)
    stronger = sum(1 for other in active if strengths.get(other, NEUTRAL_STRENGTH) > mine)
    return stronger >= open_slots
