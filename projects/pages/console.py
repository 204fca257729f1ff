"""The lab console: labs, projects, the project form with its rubric editor, imports with the
API's line-level error report, status changes and the live feed's rules. The project's
dashboard, funding, scoring and AI-judge actions are in `dashboard.py`.

Input is validated by the API's own serializers and written by the same services; reads come
from the same selectors (stats, contributors, runs). Exports link to the API's streaming export,
which accepts the browser session.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from marketplace import selectors as marketplace_selectors
from marketplace import services as marketplace_services
from marketplace.answer_forms import controls, rubric_dicts
from marketplace.models import MANAGING_ROLES
from marketplace.pages.common import (
    REFUSALS,
    error_messages,
    flash_errors,
    lab_for_page,
    page_user,
)
from marketplace.permissions import LAB_READ_ROLES
from projects import feed, selectors, services
from projects.models import (
    RESPONSE_COUNTS,
    Project,
    ProjectStatus,
)
from projects.pages.project_form import (
    form_context,
    project_data,
    rubric_changed,
)
from projects.pages.work import PER_RESPONSE_TASKS, response_rows
from projects.serializers import ProjectCreateSerializer, ProjectWriteSerializer

STATUS_ACTIONS = {
    "publish": ProjectStatus.OPEN,
    "pause": ProjectStatus.PAUSED,
    "close": ProjectStatus.CLOSED,
}


def lab_project_page(request: HttpRequest, project_id: int, roles: Any = LAB_READ_ROLES) -> Any:
    """A project of one of the caller's labs (404 otherwise; 403 when the role is too weak)."""
    access = selectors.project_access(caller=request.user, project_id=project_id)
    if access is None or not access.is_lab:
        raise Http404
    if access.lab_role not in roles:
        raise PermissionDenied
    return access


@login_required
def console_home(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    errors: list[str] = []
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name or len(name) > 200:
            errors = ["A lab needs a name (at most 200 characters)."]
        else:
            lab = marketplace_services.lab_create(name=name, created_by=user)
            return redirect("console-lab", lab_id=lab.pk)
    labs = marketplace_selectors.lab_list_for_caller(caller=user)
    return render(request, "projects/console_home.html", {"labs": labs, "errors": errors})


@login_required
def console_lab(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, role = lab_for_page(request, lab_id, LAB_READ_ROLES)
    projects = Project.objects.filter(lab=lab).order_by("-created_at")
    return render(
        request,
        "projects/console_lab.html",
        {"lab": lab, "role": role, "projects": projects, "can_manage": role in MANAGING_ROLES},
    )


@login_required
def project_new(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, _ = lab_for_page(request, lab_id, MANAGING_ROLES)
    errors: list[str] = []
    if request.method == "POST":
        payload = ProjectCreateSerializer(data={**project_data(request.POST), "lab": lab.pk})
        if payload.is_valid():
            data = dict(payload.validated_data)
            data.pop("lab")
            project = services.project_create(lab=lab, created_by=page_user(request), data=data)
            messages.success(request, "Project created as a draft. Import items, fund it, publish.")
            return redirect("console-project", project_id=project.pk)
        errors = error_messages(exceptions.ValidationError(payload.errors))
    context = form_context(None, request.POST if request.method == "POST" else None, errors)
    return render(request, "projects/project_form.html", {**context, "lab": lab, "project": None})


@login_required
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    errors: list[str] = []
    if request.method == "POST":
        payload = ProjectWriteSerializer(data=project_data(request.POST))
        if payload.is_valid():
            data = dict(payload.validated_data)
            rubric = data.pop("rubric", None)
            try:
                if project.status == ProjectStatus.DRAFT:
                    services.project_update(
                        project=project, data=data, updated_by=page_user(request)
                    )
                if rubric is not None and rubric_changed(project, rubric):
                    services.rubric_version_create(
                        project=project, rubric=rubric, created_by=page_user(request)
                    )
            except REFUSALS as error:
                errors = error_messages(error)
            else:
                messages.success(request, "Saved.")
                return redirect("console-project", project_id=project.pk)
        else:
            errors = error_messages(exceptions.ValidationError(payload.errors))
    context = form_context(project, request.POST if request.method == "POST" else None, errors)
    return render(
        request,
        "projects/project_form.html",
        {**context, "lab": project.lab, "project": project},
    )


@login_required
def project_preview(request: HttpRequest, project_id: int) -> HttpResponse:
    """The expert's view of the current rubric on a real item (or a placeholder), inert."""
    project = lab_project_page(request, project_id).project
    rubric = selectors.project_current_rubric(project=project)
    item = project.items.filter(is_gold=False).order_by("id").first()
    low, _ = RESPONSE_COUNTS[project.task_type]
    placeholders = [f"(response {chr(65 + index)} shows here)" for index in range(low)]
    responses = item.responses if item else placeholders
    task_type = project.task_type
    count = len(responses)
    dimensions = rubric_dicts(rubric.dimensions.order_by("position")) if rubric else []
    return render(
        request,
        "projects/project_preview.html",
        {
            "project": project,
            "rubric": rubric,
            "prompt": item.prompt if item else "(an item's prompt shows here)",
            "item": {"responses": responses},
            "task_type": task_type,
            "controls": controls(
                dimensions, response_count=count if task_type in PER_RESPONSE_TASKS else None
            ),
            "places": range(1, count + 1),
            "responses": response_rows(responses, {}),
            "selected": {},
        },
    )


@login_required
def project_import(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    report: dict[str, Any] | None = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        is_gold = request.POST.get("kind") == "gold"
        if upload is None:
            report = {"message": "Choose a JSON Lines file.", "errors": [], "error_count": 0}
        else:
            try:
                created = services.items_import(
                    project=project, stream=upload, content_length=upload.size, is_gold=is_gold
                )
            except services.ImportFailed as failure:
                report = {
                    "message": failure.message,
                    "errors": [error.as_dict() for error in failure.errors],
                    "error_count": failure.error_count,
                }
            except REFUSALS as error:
                report = {
                    "message": "; ".join(error_messages(error)),
                    "errors": [],
                    "error_count": 0,
                }
            else:
                noun = "gold items" if is_gold else "items"
                messages.success(request, f"Imported {created} {noun}.")
                return redirect("console-project", project_id=project.pk)
    return render(
        request,
        "projects/project_import.html",
        {"project": project, "report": report},
        status=400 if report else 200,
    )


@login_required
@require_POST
def project_status(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    target = STATUS_ACTIONS.get(request.POST.get("action", ""))
    if target is None:
        raise Http404
    try:
        services.project_transition(
            project=project,
            to_status=target,
            changed_by=page_user(request),
            reason=request.POST.get("reason", ""),
        )
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(request, f"The project is now {target}.")
    return redirect("console-project", project_id=project.pk)


@login_required
@require_POST
def project_feed_rules(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    correction = None
    raw = request.POST.get("correction_project", "")
    if raw.isdigit():
        correction = lab_project_page(request, int(raw), MANAGING_ROLES).project
    try:
        feed.feed_configure(
            project=project,
            gray_low=float(request.POST.get("gray_low", "0.4")),
            gray_high=float(request.POST.get("gray_high", "0.8")),
            audit_rate=float(request.POST.get("audit_rate", "0")),
            correction_project=correction,
        )
    except ValueError:
        messages.error(request, "The gray zone and audit rate are numbers between 0 and 1.")
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(request, "Feed rules saved.")
    return redirect("console-project", project_id=project.pk)
