"""The expert's invitations: labs asking them to a new project; accept with one button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from marketplace.pages.common import REFUSALS, flash_errors, page_user
from projects.invitations import selectors, services


@login_required
def expert_invitations(request: HttpRequest) -> HttpResponse:
    invitations = selectors.invitations_of_expert(expert=page_user(request))
    return render(request, "projects/expert_invitations.html", {"invitations": invitations})


@login_required
@require_POST
def expert_invitation_accept(request: HttpRequest, invitation_id: int) -> HttpResponse:
    try:
        invitation = services.invitation_accept(
            invitation_id=invitation_id, expert=page_user(request)
        )
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(request, f"Accepted: {invitation.project.title}.")
    return redirect("expert-invitations")
