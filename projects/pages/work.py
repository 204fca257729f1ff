"""The expert's labeling pages: choose a project or "best for me", label with the keyboard,
release or skip. Claims and submits go through `projects.routing` exactly as the API's do; the
page never says whether a task is gold (same template, same fields)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from marketplace.answer_forms import controls, dimension_answers, rubric_dicts
from marketplace.errors import Conflict, Gone
from marketplace.pages.common import (
    REFUSALS,
    error_messages,
    flash_errors,
    page_user,
    posted_number,
    refusal_text,
)
from projects import routing, selectors
from projects.api.work import SubmitSerializer
from projects.models import Assignment, AssignmentStatus, Submission, TaskType

PER_RESPONSE_TASKS = (TaskType.PAIRWISE, TaskType.RANKING)


def _claim_and_show(request: HttpRequest, project_id: int | None) -> HttpResponse:
    expert = page_user(request)
    try:
        if project_id is None:
            claim = routing.assignment_claim_any(expert=expert)
        else:
            claim = routing.assignment_claim(
                expert=expert, project=selectors.project_for_work(project_id=project_id)
            )
    except REFUSALS as error:
        flash_errors(request, error)
        return redirect("work-index")
    if claim is None:
        messages.info(request, "Nothing to label right now. Try again later or another project.")
        return redirect("work-index")
    return redirect("work-task", assignment_id=claim.assignment.public_id)


@login_required
def work_index(request: HttpRequest) -> HttpResponse:
    expert = page_user(request)
    projects = routing.qualified_projects_ranked(expert=expert)
    active = (
        Assignment.objects.filter(
            expert=expert, status=AssignmentStatus.ACTIVE, leased_until__gt=timezone.now()
        )
        .select_related("project")
        .order_by("leased_until")
    )
    done = dict(
        Submission.objects.filter(expert=expert)
        .values_list("project_id")
        .annotate(n=Count("id"))
        .values_list("project_id", "n")
    )
    return render(
        request,
        "projects/work_index.html",
        {
            "projects": [(project, done.get(project.pk, 0)) for project in projects],
            "active": active,
            "submitted_total": sum(done.values()),
        },
    )


@login_required
@require_POST
def work_next(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("project", "")
    return _claim_and_show(request, int(raw) if raw.isdigit() else None)


def _own_assignment(request: HttpRequest, assignment_id: Any) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("item", "project", "rubric_version"),
        public_id=assignment_id,
        expert=page_user(request),
    )


def answer_from_post(
    task_type: str, count: int, dimensions: list[dict[str, Any]], post: Any
) -> dict[str, Any]:
    """The posted labeling form as an answer (docs/API.md, "Answers"), validated by the
    service."""
    if task_type in (TaskType.DEMONSTRATION, TaskType.CORRECTION):
        return {"text": post.get("text", "")}
    answer: dict[str, Any] = {
        "answers": dimension_answers(
            post, dimensions, response_count=count if task_type in PER_RESPONSE_TASKS else None
        )
    }
    if task_type == TaskType.PAIRWISE:
        answer["preference"] = post.get("preference")
    if task_type == TaskType.RANKING:
        # Each response gets a place (1 = best); the ranking lists indexes best first.
        places = []
        for index in range(count):
            raw = post.get(f"place.{index}", "")
            places.append((int(raw) if raw.isdigit() else count + 1, index))
        answer["ranking"] = (
            [index for _, index in sorted(places)]
            if sorted(place for place, _ in places) == list(range(1, count + 1))
            else None
        )
    return answer


@login_required
def work_task(request: HttpRequest, assignment_id: Any) -> HttpResponse:
    assignment = _own_assignment(request, assignment_id)
    if assignment.status != AssignmentStatus.ACTIVE:
        messages.info(request, f"This task is {assignment.status}.")
        return redirect("work-index")
    dimensions = rubric_dicts(assignment.rubric_version.dimensions.order_by("position"))
    task_type = assignment.project.task_type
    response_count = len(assignment.item.responses)
    errors: list[str] = []
    selected: Any = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        payload = SubmitSerializer(
            data={
                "rationale": request.POST.get("rationale", ""),
                "seconds_spent": posted_number(request.POST, "seconds_spent", 0),
                "pasted_share": posted_number(request.POST, "pasted_share", None, kind=float),
            }
        )
        try:
            payload.is_valid(raise_exception=True)
            routing.assignment_submit(
                assignment=assignment,
                answer=answer_from_post(task_type, response_count, dimensions, request.POST),
                rationale=payload.validated_data["rationale"],
                seconds_spent=payload.validated_data["seconds_spent"],
                pasted_share=payload.validated_data["pasted_share"],
                blame={
                    "dimension": request.POST["blame_dimension"],
                    "reason": request.POST.get("blame_reason", "")[:500],
                }
                if request.POST.get("blame_dimension")
                else None,
            )
        except (Conflict, Gone) as error:
            messages.error(request, refusal_text(error))
            return redirect("work-index")
        except REFUSALS as error:
            errors = error_messages(error)
        else:
            messages.success(request, "Submitted. Here is the next one.")
            return _claim_and_show(request, assignment.project_id)
    return render(
        request,
        "projects/work_task.html",
        {
            "assignment": assignment,
            "project": assignment.project,
            "item": assignment.item,
            "rubric": assignment.rubric_version,
            "task_type": task_type,
            "controls": controls(
                dimensions,
                response_count=response_count if task_type in PER_RESPONSE_TASKS else None,
            ),
            "dimensions": dimensions,
            "places": range(1, response_count + 1),
            "responses": response_rows(assignment.item.responses, selected),
            "errors": errors,
            "selected": selected,
        },
        status=400 if errors else 200,
    )


@login_required
@require_POST
def work_release(request: HttpRequest, assignment_id: Any) -> HttpResponse:
    assignment = _own_assignment(request, assignment_id)
    try:
        routing.assignment_release(assignment=assignment)
    except REFUSALS as error:
        messages.error(request, refusal_text(error))
        return redirect("work-index")
    if request.POST.get("then") == "next":
        return _claim_and_show(request, assignment.project_id)
    messages.info(request, "Task given back.")
    return redirect("work-index")


def response_rows(responses: list[str], selected: Any) -> list[tuple[int, str, int]]:
    """(index, text, chosen place) per response; places default to the order shown."""
    rows = []
    for index, text in enumerate(responses):
        raw = str(selected.get(f"place.{index}", "")) if selected else ""
        rows.append((index, text, int(raw) if raw.isdigit() else index + 1))
    return rows


def answer_as_selected(task_type: str, answer: dict[str, Any]) -> dict[str, str]:
    """A stored answer as form values, so a reviewer's fix starts from the expert's label."""
    selected: dict[str, str] = {}
    if "preference" in answer:
        selected["preference"] = str(answer["preference"])
    if "text" in answer:
        selected["text"] = str(answer["text"])
    for place, index in enumerate(answer.get("ranking") or [], start=1):
        selected[f"place.{index}"] = str(place)
    for key, value in (answer.get("answers") or {}).items():
        if isinstance(value, list):
            for index, element in enumerate(value):
                selected[f"dim.{key}.{index}"] = str(element)
        else:
            selected[f"dim.{key}"] = str(value)
    return selected
