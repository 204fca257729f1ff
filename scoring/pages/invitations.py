"""The lab's invitations page: invite a past project's best experts, see who accepted, and
each invitee's reputation by skill and capability (pseudonyms and evidence, never emails)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from contributors.selectors import expert_pseudonym
from marketplace.models import MANAGING_ROLES
from marketplace.pages.common import REFUSALS, flash_errors, page_user, posted_number
from projects import selectors as project_selectors
from projects.invitations import selectors as invitation_selectors
from projects.models import Project
from scoring import selectors
from scoring.services.invitations import invitations_from_past_project

MAX_INVITATIONS = 100


@login_required
def project_invitations(request: HttpRequest, project_id: int) -> HttpResponse:
    access = project_selectors.project_access(caller=request.user, project_id=project_id)
    if access is None or not access.is_lab:
        raise Http404
    project = access.project
    can_manage = access.lab_role in MANAGING_ROLES
    if request.method == "POST":
        if not can_manage:
            raise Http404
        top = posted_number(request.POST, "top", 5)
        source = posted_number(request.POST, "from_project", 0)
        if not 1 <= top <= MAX_INVITATIONS:
            messages.error(request, f"Invite between 1 and {MAX_INVITATIONS} experts.")
        else:
            try:
                invited = invitations_from_past_project(
                    project=project, from_project_id=source, top=top, invited_by=page_user(request)
                )
            except REFUSALS as error:
                flash_errors(request, error)
            else:
                messages.success(request, f"{len(invited)} experts invited.")
        return redirect("console-project-invitations", project_id=project.pk)
    invitations = list(invitation_selectors.invitations_of_project(project=project))
    rows = [
        {
            "invitation": invitation,
            "pseudonym": expert_pseudonym(expert=invitation.expert, lab_id=project.lab_id),
            "reputation": selectors.expert_reputation(
                expert=invitation.expert, lab_id=project.lab_id
            ),
        }
        for invitation in invitations
    ]
    return render(
        request,
        "scoring/project_invitations.html",
        {
            "project": project,
            "can_manage": can_manage,
            "rows": rows,
            "past_projects": Project.objects.filter(lab_id=project.lab_id)
            .exclude(pk=project.pk)
            .order_by("-pk"),
            "max_invitations": MAX_INVITATIONS,
        },
    )
