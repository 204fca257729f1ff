"""The admin desk's money work: payout runs (review, approve, execute) and pay per tier."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from marketplace.models import User
from marketplace.pages.common import (
    REFUSALS,
    error_messages,
    flash_errors,
    page_user,
    posted_number,
    staff_desk,
)
from payouts import selectors, tasks
from payouts.api import PayoutRunCreateSerializer
from payouts.models import PayoutLine, PayoutRun, PayoutRunStatus
from payouts.services import payout_runs
from projects.models import Project
from scoring import selectors as scoring_selectors


@staff_desk
def desk_payout_runs(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        payload = PayoutRunCreateSerializer(
            data={
                "period_start": request.POST.get("period_start", ""),
                "period_end": request.POST.get("period_end", ""),
                "currency": request.POST.get("currency", "usd").strip().lower() or "usd",
            }
        )
        try:
            payload.is_valid(raise_exception=True)
            run = payout_runs.payout_run_create(
                created_by=page_user(request), **payload.validated_data
            )
        except REFUSALS as error:
            errors = error_messages(error)
        else:
            messages.success(request, f"Payout run #{run.pk} drafted.")
            return redirect("desk-payout-run", run_id=run.pk)
    runs = PayoutRun.objects.order_by("-id")[:100]
    return render(request, "payouts/desk_payout_runs.html", {"runs": runs, "errors": errors})


@staff_desk
def desk_payout_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(PayoutRun, pk=run_id)
    counts: dict[str, int] = {}
    for status in run.lines.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return render(
        request,
        "payouts/desk_payout_run.html",
        {
            "run": run,
            "approvals": run.approvals.select_related("approver"),
            "counts": counts,
            "lines": run.lines.select_related("user").order_by("pk")[:500],
        },
    )


@staff_desk
@require_POST
def desk_payout_run_action(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(PayoutRun, pk=run_id)
    action = request.POST.get("action")
    try:
        if action == "approve":
            payout_runs.payout_run_approve(run=run, approver=page_user(request))
            messages.success(request, "Approved.")
        elif action == "execute":
            if run.status == PayoutRunStatus.DRAFT:
                messages.error(request, "The run is not approved yet.")
            else:
                # The same Celery task as the API (eager in the embedded default).
                transaction.on_commit(lambda: tasks.payout_run_execute_task.delay(run.pk))
                messages.success(request, "Execution started; refresh to follow the lines.")
        elif action == "reconcile":
            report = payout_runs.payout_run_reconcile(run=run)
            if report["clean"]:
                messages.success(request, "Reconciled: Stripe and the ledger agree.")
            else:
                messages.error(request, f"{len(report['differences'])} difference(s); see below.")
        elif action == "retry":
            line = get_object_or_404(PayoutLine, pk=posted_number(request.POST, "line", 0), run=run)
            payout_runs.payout_line_retry(line=line)
            messages.success(request, f"Line #{line.pk} queued for retry.")
    except REFUSALS as error:
        flash_errors(request, error)
    return redirect("desk-payout-run", run_id=run.pk)


@staff_desk
def desk_pay(request: HttpRequest) -> HttpResponse:
    """Pay per hour, per project: by tier, and per expert (released pay and bonuses per hour of
    server-measured active time), with what is pending and forfeited."""

    rows = []
    for project in (
        Project.objects.exclude(status="draft").select_related("lab").order_by("-id")[:50]
    ):
        pay = selectors.effective_hourly_by_expert(project=project)
        if not pay:
            continue
        run = scoring_selectors.latest_succeeded_run(project=project)
        tiers = scoring_selectors.contributor_tiers(run=run)
        users = {user.pk: user for user in User.objects.filter(pk__in=pay)}
        experts = sorted(
            (
                {"user": users[expert_id], "tier": tiers.get(expert_id, "unscored"), **row}
                for expert_id, row in pay.items()
                if expert_id in users
            ),
            key=lambda row: -(row["hourly"] or 0),
        )
        rows.append(
            {
                "project": project,
                "by_tier": scoring_selectors.hourly_by_tier(run=run, pay=pay),
                "experts": experts,
            }
        )
    return render(request, "payouts/desk_pay.html", {"rows": rows})
