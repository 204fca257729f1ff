"""Invite a past project's best experts to a new project of the same lab: the ranking comes
from the past project's latest scoring run, the invitations are written by projects' own
service."""

from __future__ import annotations

from typing import Any

from marketplace.errors import Conflict, DomainValidationError
from marketplace.models import User
from projects.invitations import services as invitation_services
from projects.models import Project, ProjectInvitation
from scoring import lab_selectors, selectors


def invitations_from_past_project(
    *, project: Project, from_project_id: int, top: int, invited_by: User
) -> list[ProjectInvitation]:
    from_project: Any = Project.objects.filter(pk=from_project_id, lab_id=project.lab_id).first()
    if from_project is None or from_project.pk == project.pk:
        raise DomainValidationError(
            {"from_project": "no other project with this id in this project's lab"}
        )
    if selectors.latest_succeeded_run(project=from_project) is None:
        raise Conflict(
            "The past project has no scoring run yet: its experts are not ranked.",
            code="no_scoring_run",
        )
    ranked = lab_selectors.project_top_experts(project=from_project, top=top)
    return invitation_services.invitations_create(
        project=project,
        from_project=from_project,
        invitees=[invitation_services.Invitee(**row) for row in ranked],
        invited_by=invited_by,
    )
