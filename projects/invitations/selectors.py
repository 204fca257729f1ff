"""Reads of invitations: an expert's own, and a project's as its lab sees them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from projects.models import InvitationStatus, ProjectInvitation

# An accepted invitee counts as waiting for the project's scarce work for this long after
# accepting (projects/priority.py), or while they have been served in the last window; an
# invitee who never comes stops holding work back after a day.
INVITEE_WAITING_WINDOW = timedelta(hours=24)


def invitations_of_expert(*, expert: Any) -> QuerySet[ProjectInvitation]:
    return (
        ProjectInvitation.objects.filter(expert=expert)
        .select_related("project__lab", "from_project")
        .order_by("-created_at", "-pk")
    )


def invitations_of_project(*, project: Any) -> QuerySet[ProjectInvitation]:
    return (
        ProjectInvitation.objects.filter(project=project)
        .select_related("expert")
        .order_by("rank", "pk")
    )


def invitees_waiting(*, project: Any, since_active: Any) -> set[int]:
    """Accepted invitees of a project who count as waiting for its work right now."""
    recent = timezone.now() - INVITEE_WAITING_WINDOW
    return set(
        ProjectInvitation.objects.filter(project=project, status=InvitationStatus.ACCEPTED)
        .filter(
            Q(accepted_at__gte=recent)
            | Q(
                expert__assignments__project=project,
                expert__assignments__served_at__gte=since_active,
            )
        )
        .values_list("expert_id", flat=True)
        .distinct()
    )


def accepted_invitees(*, project: Any, expert_ids: set[int]) -> set[int]:
    return set(
        ProjectInvitation.objects.filter(
            project=project, status=InvitationStatus.ACCEPTED, expert_id__in=expert_ids
        ).values_list("expert_id", flat=True)
    )
