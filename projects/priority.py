"""Who gets work first when work is scarce (a project's `priority`).

Routing is pull-based: an expert asks, the server leases the best item for them. Priority acts
only when more qualified experts are working on the project than there are open task slots:
then an expert answers 204 ("nothing right now") while at least as many experts stronger than
them have been active in the last PRIORITY_WINDOW, so the strongest get the remaining work and
the rest are not kept busy on it. With enough work for everyone, it changes nothing.

Strength, for `heaviest_dimension`: the expert's gold mean on the rubric's heaviest dimension in
the project's latest scoring run (0.5, neutral, before they have any there).

For `reputation`: accepted invitees first (the lab chose them from a past project), then by
reputation on the project's capability, or else its required skills, in the lab's projects
(scoring.selectors.reputation_strengths; 0.5 without evidence). Accepted invitees count as
waiting for a day after accepting even before their first task, so work is kept for them.

Races accepted (both modes): two claims decide at the same moment from the same counts, so a
weaker expert may take a slot a stronger one asks for a millisecond later; and an expert
counted as waiting may never ask again, holding a slot back until the window passes. Neither
costs money or correctness: priority only orders who is served, never how often an item is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import F, Sum
from django.utils import timezone

from projects.invitations.selectors import accepted_invitees, invitees_waiting
from projects.models import Assignment, Item, Project
from scoring.models import ContributorScore
from scoring.selectors import latest_succeeded_run, reputation_strengths

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


def _open_slots(project: Project) -> int:
    return int(
        Item.objects.filter(project=project, is_gold=False, is_open=True).aggregate(
            slots=Sum(F("target_labels") - F("assigned_count"))
        )["slots"]
        or 0
    )


def _recently_active(project: Project, expert: Any, since: Any) -> set[int]:
    return set(
        Assignment.objects.filter(project=project, served_at__gte=since)
        .exclude(expert=expert)
        .values_list("expert_id", flat=True)
        .distinct()
    )


def _yields_by_reputation(project: Project, expert: Any) -> bool:
    open_slots = _open_slots(project)
    since = timezone.now() - PRIORITY_WINDOW
    waiting = (
        _recently_active(project, expert, since)
        | invitees_waiting(project=project, since_active=since)
    ) - {expert.pk}
    if open_slots > len(waiting):
        return False
    everyone = waiting | {expert.pk}
    invited = accepted_invitees(project=project, expert_ids=everyone)
    reputation = reputation_strengths(project=project, expert_ids=everyone)

    def strength(expert_id: int) -> tuple[bool, float]:
        return (expert_id in invited, reputation.get(expert_id, NEUTRAL_STRENGTH))

    mine = strength(expert.pk)
    stronger = sum(1 for other in waiting if strength(other) > mine)
    return stronger >= open_slots


def yields_to_stronger(*, project: Project, expert: Any, config: Any) -> bool:
    """Whether this expert should wait: work is scarce and stronger experts are waiting."""
    if project.priority == "reputation":
        return _yields_by_reputation(project, expert)
    if project.priority != "heaviest_dimension":
        return False
    key = _heaviest_dimension(config)
    if key is None:
        return False
    open_slots = _open_slots(project)
    since = timezone.now() - PRIORITY_WINDOW
    active = _recently_active(project, expert, since)
    if open_slots > len(active):
        return False
    strengths = _strengths(project, key, active | {expert.pk})
    mine = strengths.get(expert.pk, NEUTRAL_STRENGTH)
    stronger = sum(1 for other in active if strengths.get(other, NEUTRAL_STRENGTH) > mine)
    return stronger >= open_slots
