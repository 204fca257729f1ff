"""The lab console's project dashboard: progress, money, contributors with their scores and
pay, trends and bad cases; and its actions that reach other apps (fund through Checkout, start
a scoring run, set an AI judge). Pages are the HTTP edge: they compose every app's selectors
(docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from contributors.selectors import expert_pseudonym
from marketplace.charts import bar_chart, line_chart
from marketplace.models import MANAGING_ROLES
from marketplace.pages.common import (
    REFUSALS,
    page_user,
    refusal_text,
)
from marketplace.templatetags.marketplace_tags import ZERO_DECIMAL
from payouts.api import FundSerializer
from payouts.lab_money import project_fundings
from payouts.selectors import effective_hourly_by_expert, project_spent_by_day
from payouts.services import funding
from projects import evolution, exports, selectors
from projects.feed import feed_summary
from projects.models import (
    Project,
    ProjectStatus,
)
from projects.pages.console import lab_project_page
from projects.pages.project_form import minor_units
from scoring import selectors as scoring_selectors
from scoring.ai import ai_judge_configure
from scoring.engine.tiers import TIERS, flag_text
from scoring.services import scoring_run_create
from scoring.tasks import ai_judge_run_task

DASHBOARD_DAYS = 30


@login_required
@require_POST
def project_fund(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    payload = FundSerializer(
        data={"amount": minor_units(request.POST.get("amount", ""), project.currency)}
    )
    if not payload.is_valid():
        messages.error(request, "Give an amount to fund, e.g. 500.00.")
        return redirect("console-project", project_id=project.pk)
    try:
        _, url = funding.funding_checkout_create(
            project=project, amount=payload.validated_data["amount"], created_by=page_user(request)
        )
    except REFUSALS as error:
        messages.error(request, refusal_text(error))
        return redirect("console-project", project_id=project.pk)
    return redirect(url)


@login_required
@require_POST
def project_scoring_run(request: HttpRequest, project_id: int) -> HttpResponse:
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    run = scoring_run_create(project=project, created_by=page_user(request))
    messages.success(request, f"Scoring run #{run.pk}: {run.status}.")
    return redirect("console-project", project_id=project.pk)


def _daily_series(project: Project) -> dict[str, Any]:
    today = timezone.now().date()
    since = timezone.now() - timedelta(days=DASHBOARD_DAYS)
    labels = selectors.project_labels_by_day(project=project, since=since)
    spent = project_spent_by_day(project=project, since=since)
    days = [today - timedelta(days=offset) for offset in range(DASHBOARD_DAYS - 1, -1, -1)]
    first = next(
        (i for i, day in enumerate(days) if labels.get(day) or spent.get(day)), len(days) - 1
    )
    days = days[first:]
    names = [day.isoformat() for day in days]
    cost = [
        (spent.get(day, 0) / labels[day] / (1 if project.currency in ZERO_DECIMAL else 100))
        if labels.get(day)
        else None
        for day in days
    ]
    return {
        "throughput": line_chart(
            names,
            [float(labels.get(day, 0)) for day in days],
            title="Accepted labels per day",
            fmt=".0f",
        ),
        "cost": line_chart(
            names, cost, title=f"Cost per accepted label ({project.currency.upper()})"
        ),
    }


@login_required
def project_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    access = lab_project_page(request, project_id)
    project = access.project
    stats = selectors.project_stats(project=project)
    for dimension in stats["dimensions"]:
        counts = dimension["counts"]
        dimension["chart"] = bar_chart(
            list(counts),
            [float(v) for v in counts.values()],
            title=f"Answers for {dimension['key']}",
        )
    run = scoring_selectors.latest_succeeded_run(project=project)
    rows = scoring_selectors.contributor_rows(run=run)
    pay = effective_hourly_by_expert(project=project)
    contributors = [
        {
            "pseudonym": expert_pseudonym(expert=row.expert, lab_id=project.lab_id),
            "row": row,
            "flags": [flag_text(flag) for flag in row.flags],
            "impact_low": None
            if row.impact_value is None
            else row.impact_value - 1.96 * (row.impact_se or 0.0),
            "impact_high": None
            if row.impact_value is None
            else row.impact_value + 1.96 * (row.impact_se or 0.0),
            "pay": pay.get(row.expert_id),
        }
        for row in rows
    ]
    by_tier = scoring_selectors.hourly_by_tier(run=run, pay=pay)
    reviewers = scoring_selectors.reviewer_rows(run=run, lab_id=project.lab_id)
    return render(
        request,
        "projects/project_dashboard.html",
        {
            "project": project,
            "role": access.lab_role,
            "can_manage": access.lab_role in MANAGING_ROLES,
            "stats": stats,
            "preference_chart": bar_chart(
                list(stats["preference"]),
                [float(v) for v in stats["preference"].values()],
                title="Preferences",
            )
            if stats["preference"]
            else None,
            "series": _daily_series(project),
            "contributors": contributors,
            "hourly_by_tier": by_tier,
            "reviewers": reviewers,
            "runs": scoring_selectors.recent_runs(project=project),
            "problems": selectors.project_publish_problems(project=project)
            if project.status == ProjectStatus.DRAFT
            else [],
            "formats": sorted(exports.FORMATS_BY_TASK_TYPE[project.task_type]),
            "bad_cases": evolution.bad_cases_by_dimension(project=project),
            "feed_summary": feed_summary(project=project),
            "fundings": list(project_fundings(project=project)[:20]),
            "correction_projects": selectors.correction_projects(project=project),
            "ai_judges": sorted(settings.AI_JUDGES),
            "trends": evolution.dimension_trends(project=project),
            "tiers": TIERS,
        },
    )


@login_required
@require_POST
def project_ai_judge(request: HttpRequest, project_id: int) -> HttpResponse:
    """The dashboard's AI reviewer form: the same configure-and-run as the API."""
    project = lab_project_page(request, project_id, MANAGING_ROLES).project
    judge = request.POST.get("judge", "")
    if judge and judge not in settings.AI_JUDGES:
        raise Http404
    ai_judge_configure(project=project, judge=judge, counts=request.POST.get("counts") == "on")
    if judge:
        transaction.on_commit(lambda: ai_judge_run_task.delay(project.pk))
        messages.success(request, f"AI judge '{judge}' set; it is labeling the items.")
    else:
        messages.success(request, "AI judge removed.")
    return redirect("console-project", project_id=project.pk)
