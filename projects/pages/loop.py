"""The lab's weekly loop in the console (issue 18): bad cases and their promotion, re-label
batches with their before/after trend, the live feed with its gray-zone calibration, and export
jobs with their progress. The same services and selectors as the API (docs/LOOP.md)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from marketplace.models import MANAGING_ROLES, User
from marketplace.pages.common import REFUSALS, flash_errors, page_user, posted_number
from projects import calibration, evolution, exports, relabel, relabel_trend
from projects.api.projects import ExportQuerySerializer
from projects.export_jobs import export_job_create
from projects.feed import FeedDecision, feed_events_for, feed_summary
from projects.models import DimensionKind, ExportJob, Item, RelabelBatch
from projects.pages.console import lab_project_page
from projects.serializers import DimensionInSerializer
from scoring.engine.tiers import TIERS

BAD_CASES_SHOWN = 200


@login_required
def bad_cases_page(request: HttpRequest, project_id: int) -> HttpResponse:
    access = lab_project_page(request, project_id)
    project = access.project
    items = list(
        Item.objects.filter(project=project, context__bad_case=True, is_gold=False).order_by("-id")[
            :BAD_CASES_SHOWN
        ]
    )
    return render(
        request,
        "projects/bad_cases.html",
        {
            "project": project,
            "can_manage": access.lab_role in MANAGING_ROLES,
            "groups": evolution.bad_cases_by_dimension(project=project),
            "items": items,
            "kinds": DimensionKind.choices,
            "batches": relabel.relabel_batch_states(
                batches=list(
                    RelabelBatch.objects.filter(project=project)
                    .select_related("project", "rubric_version")
                    .order_by("-id")[:20]
                )
            ),
        },
    )


def _optional_int(request: HttpRequest, name: str) -> int | None:
    value: int | None = posted_number(request.POST, name, None)
    return value


@login_required
@require_POST
def bad_case_promote_dimension_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    fields: dict[str, Any] = {
        "key": request.POST.get("key", ""),
        "label": request.POST.get("label", ""),
        "kind": request.POST.get("kind", ""),
        "description": request.POST.get("description", ""),
    }
    for name in ("min", "max"):
        if request.POST.get(name, "").strip():
            fields[name] = posted_number(request.POST, name, None)
    chosen = request.POST.getlist("items")
    try:
        dimension = DimensionInSerializer(data=fields)
        dimension.is_valid(raise_exception=True)
        _, batch = relabel.bad_case_promote_dimension(
            project=project,
            dimension=dict(dimension.validated_data),
            items=chosen or None,
            similar=_checked_range(_optional_int(request, "similar"), 0, relabel.MAX_SIMILAR),
            labels_per_item=_checked_range(_optional_int(request, "labels_per_item"), 1, 10),
            created_by=page_user(request),
        )
    except REFUSALS as error:
        flash_errors(request, error)
        return redirect("console-bad-cases", project_id=project.pk)
    return _after_promotion(request, project.pk, batch, f"Dimension '{fields['key']}' added.")


def _checked_range(value: int | None, low: int, high: int) -> int | None:
    if value is not None and not low <= value <= high:
        raise exceptions.ValidationError({"value": [f"a whole number from {low} to {high}"]})
    return value


def _after_promotion(
    request: HttpRequest, project_id: int, batch: RelabelBatch | None, done: str
) -> HttpResponse:
    if batch is None:
        messages.success(request, f"{done} Nothing was re-queued (no items).")
        return redirect("console-bad-cases", project_id=project_id)
    messages.success(request, f"{done} {batch.entries.count()} items are re-queued for new labels.")
    return redirect("console-relabel-batch", batch_id=batch.pk)


@login_required
@require_POST
def bad_case_promote_gold_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    try:
        answer = json.loads(request.POST.get("gold", ""))
    except ValueError:
        messages.error(request, 'The gold answer is JSON, e.g. {"preference": "b"}.')
        return redirect("console-bad-cases", project_id=project.pk)
    chosen = request.POST.getlist("items")
    if not chosen:
        messages.error(request, "Choose at least one bad-case item.")
        return redirect("console-bad-cases", project_id=project.pk)
    try:
        created, batch = relabel.bad_case_promote_gold(
            project=project,
            promotions=[{"item": item, "gold": answer} for item in chosen],
            similar=_checked_range(_optional_int(request, "similar"), 0, relabel.MAX_SIMILAR),
            labels_per_item=_checked_range(_optional_int(request, "labels_per_item"), 1, 10),
            created_by=page_user(request),
        )
    except REFUSALS as error:
        flash_errors(request, error)
        return redirect("console-bad-cases", project_id=project.pk)
    return _after_promotion(request, project.pk, batch, f"{len(created)} gold items added.")


@login_required
def relabel_batch_page(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = (
        RelabelBatch.objects.select_related("project", "rubric_version").filter(pk=batch_id).first()
    )
    if batch is None:
        raise Http404
    lab_project_page(request, batch.project_id)
    state = relabel.relabel_batch_state(batch=batch)
    trend = relabel_trend.relabel_batch_trend(batch=batch)
    return render(
        request,
        "projects/relabel_batch.html",
        {
            "project": batch.project,
            "batch": state,
            "trend": trend,
            "scopes": [
                ("The re-labelled items", trend["relabelled_items"]),
                ("The whole project", trend["project"]),
            ],
            "is_running": state["status"] in ("relabelling", "scoring"),
        },
    )


@login_required
def feed_page(request: HttpRequest, project_id: int) -> HttpResponse:
    access = lab_project_page(request, project_id)
    project = access.project
    return render(
        request,
        "projects/feed.html",
        {
            "project": project,
            "can_manage": access.lab_role in MANAGING_ROLES,
            "summary": feed_summary(project=project),
            "latest": feed_events_for(
                project=project, decisions=list(FeedDecision.values)
            ).select_related("item")[:50],
            "calibration": calibration.feed_calibration(project=project),
        },
    )


@login_required
@require_POST
def feed_target_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    raw = request.POST.get("target_error_rate", "").strip()
    try:
        target = float(raw)
        calibration.feed_target_set(project=project, target_error_rate=target)
    except ValueError:
        messages.error(request, "The target error rate is a number between 0 and 1.")
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(request, "Target error rate saved.")
    return redirect("console-feed", project_id=project.pk)


@login_required
def exports_page(request: HttpRequest, project_id: int) -> HttpResponse:
    access = lab_project_page(request, project_id)
    project = access.project
    jobs = list(ExportJob.objects.filter(project=project).order_by("-id")[:30])
    for job in jobs:
        total = job.items_total
        job.share = None if total is None else (1.0 if total == 0 else job.items_done / total)  # type: ignore[attr-defined]
    return render(
        request,
        "projects/exports.html",
        {
            "project": project,
            "jobs": jobs,
            "formats": sorted(exports.FORMATS_BY_TASK_TYPE[project.task_type]),
            "tiers": TIERS,
            "is_running": any(job.status == "queued" for job in jobs),
        },
    )


@login_required
@require_POST
def export_job_start_page(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id).project
    query = ExportQuerySerializer(
        data={
            key: request.POST[key]
            for key in ("format", "min_tier", "min_confidence", "split")
            if request.POST.get(key, "") != ""
        }
    )
    if not query.is_valid():
        flash_errors(request, exceptions.ValidationError(query.errors))
        return redirect("console-exports", project_id=project.pk)
    filters = exports.ExportFilters(**query.validated_data)
    if filters.format not in exports.FORMATS_BY_TASK_TYPE[project.task_type]:
        messages.error(request, "This format does not fit the task type.")
        return redirect("console-exports", project_id=project.pk)
    user = request.user if isinstance(request.user, User) else None
    job = export_job_create(project=project, filters=filters, created_by=user)
    messages.success(request, f"Export #{job.pk} started.")
    return redirect("console-exports", project_id=project.pk)
