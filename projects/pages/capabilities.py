"""The capability library and catalogue pages: save a project as a capability, publish it,
see how experts did on it, and build a new project on one with a one-field form."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from marketplace import selectors as marketplace_selectors
from marketplace.models import MANAGING_ROLES
from marketplace.pages.common import (
    REFUSALS,
    error_messages,
    flash_errors,
    lab_for_page,
    page_user,
    posted_number,
)
from marketplace.permissions import LAB_READ_ROLES
from projects.api.capabilities import CapabilityCreateSerializer
from projects.capabilities import selectors, services
from projects.models import Capability, Project, ProjectPriority
from projects.serializers import ProjectCreateSerializer
from scoring.lab_selectors import capability_performance


def _capability(request: HttpRequest, lab_id: int, capability_id: int) -> Capability:
    capability = selectors.capability_for_caller(caller=request.user, capability_id=capability_id)
    if capability is None:
        raise Http404
    return capability


@login_required
def capability_library(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, role = lab_for_page(request, lab_id, LAB_READ_ROLES)
    own = list(
        selectors.capability_list_for_caller(caller=request.user, scope="own").filter(lab=lab)
    )
    catalogue = list(
        selectors.capability_list_for_caller(caller=request.user, scope="catalogue").exclude(
            lab=lab
        )
    )
    return render(
        request,
        "projects/capability_library.html",
        {
            "lab": lab,
            "can_manage": role in MANAGING_ROLES,
            "own": [
                {
                    "capability": capability,
                    "performance": capability_performance(capability=capability)[:10],
                }
                for capability in own
            ],
            "catalogue": catalogue,
            "projects": Project.objects.filter(lab=lab).order_by("-pk"),
        },
    )


@login_required
@require_POST
def capability_save(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, _role = lab_for_page(request, lab_id, MANAGING_ROLES)
    payload = CapabilityCreateSerializer(
        data={
            "lab": lab.pk,
            "name": request.POST.get("name", ""),
            "from_project": posted_number(request.POST, "from_project", None),
            "description": request.POST.get("description", ""),
        }
    )
    try:
        payload.is_valid(raise_exception=True)
        project = Project.objects.filter(pk=payload.validated_data["from_project"], lab=lab).first()
        if project is None:
            raise Http404
        capability = services.capability_create(
            lab=lab,
            name=payload.validated_data["name"],
            from_project=project,
            created_by=page_user(request),
            description=payload.validated_data["description"],
        )
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(request, f"Saved {capability.name} v{capability.version}.")
    return redirect("console-capabilities", lab_id=lab.pk)


@login_required
@require_POST
def capability_publish(request: HttpRequest, lab_id: int, capability_id: int) -> HttpResponse:
    lab, _role = lab_for_page(request, lab_id, MANAGING_ROLES)
    capability = _capability(request, lab_id, capability_id)
    if capability.lab_id != lab.pk:
        raise Http404
    services.capability_publish(capability=capability)
    messages.success(request, f"{capability.name} v{capability.version} is in the catalogue.")
    return redirect("console-capabilities", lab_id=lab.pk)


@login_required
def capability_new_project(request: HttpRequest, lab_id: int, capability_id: int) -> HttpResponse:
    lab, _role = lab_for_page(request, lab_id, MANAGING_ROLES)
    capability = _capability(request, lab_id, capability_id)
    errors: list[str] = []
    values: dict[str, Any] = {"title": "", "priority": ProjectPriority.REPUTATION}
    if request.method == "POST":
        values = {
            "title": request.POST.get("title", ""),
            "priority": request.POST.get("priority", ProjectPriority.NONE),
        }
        data = {"lab": lab.pk, "capability": capability.pk, **values}
        payload = ProjectCreateSerializer(data=data)
        try:
            payload.is_valid(raise_exception=True)
            validated = dict(payload.validated_data)
            validated.pop("lab")
            validated.pop("capability")
            project = services.project_create_from_capability(
                lab=marketplace_selectors.lab_get(lab_id=lab.pk),
                created_by=page_user(request),
                capability=capability,
                data=validated,
                given=set(data),
            )
        except REFUSALS as error:
            errors = error_messages(error)
        else:
            messages.success(request, f"Built on {capability.name} v{capability.version}.")
            return redirect("console-project", project_id=project.pk)
    return render(
        request,
        "projects/capability_new_project.html",
        {
            "lab": lab,
            "capability": capability,
            "values": values,
            "errors": errors,
            "priorities": ProjectPriority.choices,
        },
        status=400 if errors else 200,
    )
