"""Verify money against Stripe: the ledger (as `ledger_verify`), then every payout run that sent
money reconciled with Stripe's transfers. Exit 1 on any difference.

`ledger_verify` checks the ledger with itself only; a second transfer Stripe made for a line,
or a reversal never booked, is invisible to it. This command is the one to alert on.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import stripe
from django.core.management.base import BaseCommand

from payouts.models import PayoutRun, PayoutRunStatus
from payouts.services.ledger import ledger_verify
from payouts.services.payout_runs import payout_run_reconcile

SENT_MONEY = (PayoutRunStatus.EXECUTING, PayoutRunStatus.PAUSED, PayoutRunStatus.COMPLETED)


class Command(BaseCommand):
    help = "Verify the ledger and reconcile every payout run with Stripe (exit 1 on differences)."

    def handle(self, *args: Any, **options: Any) -> None:
        ledger = ledger_verify()
        problems: dict[str, Any] = {}
        if not ledger.is_clean:
            problems["ledger"] = ledger.as_dict()
        runs = 0
        for run in PayoutRun.objects.filter(status__in=SENT_MONEY).order_by("pk").iterator():
            runs += 1
            try:
                report = payout_run_reconcile(run=run, include_ledger=False)
            except stripe.StripeError as error:
                problems[f"run {run.pk}"] = f"Stripe did not answer: {error}"
                continue
            if not report["clean"]:
                problems[f"run {run.pk}"] = report["differences"]
        if problems:
            self.stderr.write(json.dumps(problems, indent=2, default=str))
            sys.exit(1)
        self.stdout.write(
            self.style.SUCCESS(
                f"money verified: ledger clean ({ledger.accounts_checked} accounts, "
                f"{ledger.transactions_checked} transactions), {runs} payout run(s) reconcile "
                "with Stripe"
            )
        )
