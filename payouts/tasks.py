from __future__ import annotations

from celery import shared_task

from payouts.models import PayoutRun
from payouts.services import ledger, payout_runs, release, webhooks
from projects.models import Project
from scoring.models import ScoringRun


@shared_task(
    name="payouts.tasks.payout_run_execute_task",
    time_limit=3600,
    soft_time_limit=3500,
)
def payout_run_execute_task(run_id: int) -> dict[str, object]:
    report = payout_runs.payout_run_execute(run=PayoutRun.objects.get(pk=run_id))
    return report.__dict__


@shared_task(name="payouts.tasks.earnings_release_task", time_limit=1800, soft_time_limit=1740)
def earnings_release_task(run_id: int) -> dict[str, int]:
    """Release what a succeeded scoring run's evidence clears (idempotent per run)."""

    run = ScoringRun.objects.select_related("project").get(pk=run_id)
    return release.earnings_release(run=run).__dict__


@shared_task(name="payouts.tasks.earnings_settle_task", time_limit=1800, soft_time_limit=1740)
def earnings_settle_task(project_id: int) -> None:
    """A closed project settles its pending pay (see `earnings_settle_closed_project`)."""

    release.earnings_settle_closed_project(project=Project.objects.get(pk=project_id))


@shared_task(name="payouts.tasks.ledger_verify_task", time_limit=1800, soft_time_limit=1740)
def ledger_verify_task() -> dict[str, object]:
    return ledger.ledger_verify().as_dict()


@shared_task(name="payouts.tasks.payout_runs_reconcile_task", time_limit=1800, soft_time_limit=1740)
def payout_runs_reconcile_task() -> int:
    """Reconcile every run that sent money and is not yet known to be clean."""
    checked = 0
    for run in PayoutRun.objects.filter(status__in=["executing", "paused", "completed"]):
        if not run.reconciliation.get("clean"):
            payout_runs.payout_run_reconcile(run=run)
            checked += 1
    return checked


@shared_task(name="payouts.tasks.stripe_events_retry_task", time_limit=600, soft_time_limit=540)
def stripe_events_retry_task() -> int:
    """Apply verified events still `received` (Stripe could not be read back when they arrived):
    Stripe redelivers them too, this does not wait for it. Returns how many were applied."""
    return webhooks.stripe_events_retry()
