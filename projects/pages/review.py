"""Reviewer pages: take the next sampled submission of a project, then accept, reject (with a
reason) or fix it. `projects.reviews` holds every rule; these pages only collect the input."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from marketplace.answer_forms import controls, rubric_dicts
from marketplace.pages.common import REFUSALS, error_messages, page_user, refusal_text
from projects import reviews, selectors
from projects.models import Project, ProjectStatus, Review, ReviewStatus
from projects.pages.work import (
    PER_RESPONSE_TASKS,
    answer_as_selected,
    answer_from_post,
    response_rows,
)


@login_required
def review_index(request: HttpRequest) -> HttpResponse:
    reviewer = page_user(request)
    projects = [
        project
        for project in Project.objects.filter(status=ProjectStatus.OPEN, review_rate__gt=0)
        if reviews.reviewer_is_qualified(reviewer=reviewer, project=project)
    ]
    return render(request, "projects/review_index.html", {"projects": projects})


@login_required
@require_POST
def review_next(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("project", "")
    project = selectors.project_for_work(project_id=int(raw) if raw.isdigit() else 0)
    try:
        review = reviews.review_claim(reviewer=page_user(request), project=project)
    except REFUSALS as error:
        messages.error(request, refusal_text(error))
        return redirect("review-index")
    if review is None:
        messages.info(request, "No submission waits for review in this project.")
        return redirect("review-index")
    return redirect("review-task", review_id=review.pk)


@login_required
def review_task(request: HttpRequest, review_id: int) -> HttpResponse:
    reviewer = page_user(request)
    review = get_object_or_404(
        Review.objects.select_related("submission__item", "submission__rubric_version", "project"),
        pk=review_id,
        reviewer=reviewer,
        status=ReviewStatus.PENDING,
    )
    submission = review.submission
    task_type = review.project.task_type
    count = len(submission.item.responses)
    dimensions = rubric_dicts(submission.rubric_version.dimensions.order_by("position"))
    errors: list[str] = []
    selected: Any = answer_as_selected(task_type, submission.answer)
    if request.method == "POST":
        decision = request.POST.get("decision", "")
        fixed = None
        if decision == ReviewStatus.FIXED:
            fixed = answer_from_post(task_type, count, dimensions, request.POST)
            selected = request.POST
        try:
            if decision not in (ReviewStatus.ACCEPTED, ReviewStatus.REJECTED, ReviewStatus.FIXED):
                raise exceptions.ValidationError({"decision": "accept, reject or fix"})
            reviews.review_decide(
                review=review,
                reviewer=reviewer,
                decision=decision,
                reason=request.POST.get("reason", ""),
                fixed_answer=fixed,
            )
        except REFUSALS as error:
            errors = error_messages(error)
        else:
            messages.success(request, f"Review saved ({decision}).")
            return redirect("review-index")
    return render(
        request,
        "projects/review_task.html",
        {
            "review": review,
            "project": review.project,
            "item": submission.item,
            "rubric": submission.rubric_version,
            "task_type": task_type,
            "submitted": submission.answer,
            "rationale": submission.rationale,
            "controls": controls(
                dimensions, response_count=count if task_type in PER_RESPONSE_TASKS else None
            ),
            "places": range(1, count + 1),
            "responses": response_rows(submission.item.responses, selected),
            "selected": selected,
            "errors": errors,
        },
        status=400 if errors else 200,
    )
