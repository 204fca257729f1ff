"""Money out: payout runs, split by stage (draft and approve, execute, Stripe events,
reconcile); reads live in `payouts.selectors`. The public names are re-exported here."""

from payouts.services.payout_runs.draft import payout_run_approve, payout_run_create
from payouts.services.payout_runs.events import payout_event_apply
from payouts.services.payout_runs.execute import (
    ExecuteReport,
    payout_line_retry,
    payout_run_execute,
)
from payouts.services.payout_runs.reconcile import payout_run_reconcile

__all__ = [
    "ExecuteReport",
    "payout_event_apply",
    "payout_line_retry",
    "payout_run_approve",
    "payout_run_create",
    "payout_run_execute",
    "payout_run_reconcile",
]
