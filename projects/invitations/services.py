"""Writes of invitations: invite experts (chosen by the scoring app), and accept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from contributors.services import expert_notify
from marketplace.errors import Conflict, NotFoundError
from marketplace.models import User
from projects.models import (
    INVITATION_TRANSITIONS,
    InvitationStatus,
    Project,
    ProjectInvitation,
    ProjectStatus,
)


@dataclass(frozen=True)
class Invitee:
    expert_id: int
    rank: int
    evidence: dict[str, Any]


def invitations_create(
    *, project: Project, from_project: Project, invitees: list[Invitee], invited_by: User
) -> list[ProjectInvitation]:
    """Invite each expert once (inviting again changes nothing: the first invitation, its rank
    and evidence stand). Returns the invitations of these experts, best first."""
    if project.status == ProjectStatus.CLOSED:
        raise Conflict("The project is closed.", code="project_closed")
    with transaction.atomic():
        already = set(
            ProjectInvitation.objects.filter(
                project=project, expert_id__in=[invitee.expert_id for invitee in invitees]
            ).values_list("expert_id", flat=True)
        )
        # ignore_conflicts: the unique (project, expert) constraint keeps a concurrent second
        # invitation of the same expert from being written twice.
        ProjectInvitation.objects.bulk_create(
            [
                ProjectInvitation(
                    project=project,
                    expert_id=invitee.expert_id,
                    from_project=from_project,
                    rank=invitee.rank,
                    evidence=invitee.evidence,
                    invited_by=invited_by,
                )
                for invitee in invitees
            ],
            ignore_conflicts=True,
        )
        # Told by email after commit (a race with a concurrent invitation may tell someone
        # twice; it never invites them twice).
        for expert in User.objects.filter(
            pk__in=[invitee.expert_id for invitee in invitees if invitee.expert_id not in already]
        ):
            expert_notify(
                user=expert,
                subject=f"An invitation from {project.lab.name}",
                message=(
                    f"{project.lab.name} invites you to its project '{project.title}' because "
                    f"of your work on '{from_project.title}'. Accept it on your invitations "
                    "page to be served its work first while it is scarce."
                ),
            )
    return list(
        ProjectInvitation.objects.filter(
            project=project, expert_id__in=[invitee.expert_id for invitee in invitees]
        )
        .select_related("expert")
        .order_by("rank", "pk")
    )


def invitation_accept(*, invitation_id: int, expert: User) -> ProjectInvitation:
    """The expert accepts their invitation (a compare-and-swap from pending; accepting again
    answers the same accepted invitation). Someone else's invitation is not found."""
    with transaction.atomic():
        invitation = (
            ProjectInvitation.objects.select_for_update()
            .select_related("project")
            .filter(pk=invitation_id, expert=expert)
            .first()
        )
        if invitation is None:
            raise NotFoundError()
        if invitation.status == InvitationStatus.ACCEPTED:
            return invitation
        if InvitationStatus.ACCEPTED not in INVITATION_TRANSITIONS[invitation.status]:
            raise Conflict("This invitation cannot be accepted.", code="invalid_transition")
        if invitation.project.status == ProjectStatus.CLOSED:
            raise Conflict("The project is closed.", code="project_closed")
        updated = ProjectInvitation.objects.filter(
            pk=invitation.pk, status=InvitationStatus.PENDING
        ).update(status=InvitationStatus.ACCEPTED, accepted_at=timezone.now())
        if updated != 1:
            raise Conflict("The invitation changed meanwhile.", code="invitation_changed")
        invitation.refresh_from_db()
    return invitation
