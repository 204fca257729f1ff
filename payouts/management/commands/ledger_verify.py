"""Recompute every balance from the ledger entries and report any drift (exit 1 if any)."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand

from payouts.services.ledger import ledger_verify


class Command(BaseCommand):
    help = "Verify the ledger: cached balances, zero-sum transactions, trial balance."

    def handle(self, *args: Any, **options: Any) -> None:
        report = ledger_verify()
        if report.is_clean:
            self.stdout.write(
                self.style.SUCCESS(
                    f"ledger clean: {report.accounts_checked} accounts, "
                    f"{report.transactions_checked} transactions, "
                    f"trial balance {report.trial_balance}"
                )
            )
            return
        self.stderr.write(json.dumps(report.as_dict(), indent=2))
        sys.exit(1)
