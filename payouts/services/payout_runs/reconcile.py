"""Payout runs, stage 4: reconcile a run with Stripe's view of its transfer group.

Per line, what Stripe holds as paid out (each transfer's amount less what was reversed) must be
what the ledger booked (`payout-sent` less `payout-reversal`), a sent or paid line must have
exactly one live transfer (not reversed in full) of its amount to its destination, and any
other line none. `manage.py payouts_verify` runs this for every run that sent money, with
`ledger_verify`, and exits 1 on any difference: the ledger alone cannot see a second transfer
Stripe made.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from payouts.models import AccountKind, LedgerEntry, PayoutLineStatus, PayoutRun, TransactionKind
from payouts.services.ledger import ledger_verify
from payouts.services.notify import staff_alert
from payouts.services.payout_runs.execute import _metadata
from payouts.stripe_gateway import stripe_client


def _ledger_paid_out(line_ids: list[int]) -> dict[int, int]:
    """line -> net amount the ledger booked as sent to Stripe (sent less reversals)."""
    rows = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.STRIPE_CLEARING,
            transaction__kind__in=[TransactionKind.PAYOUT_SENT, TransactionKind.PAYOUT_REVERSED],
            transaction__metadata__line_id__in=line_ids,
        )
        .values_list("transaction__metadata__line_id")
        .annotate(total=Sum("amount"))
    )
    return {int(line_id): int(total) for line_id, total in rows}


def payout_run_reconcile(*, run: PayoutRun, include_ledger: bool = True) -> dict[str, Any]:
    """Compare the run with Stripe's view of its transfer group, and the ledger with itself."""

    client = stripe_client()
    transfers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    stray = []
    live_total = 0
    for transfer in client.v1.transfers.list(
        params={"transfer_group": run.transfer_group, "limit": 100}
    ).auto_paging_iter():
        row = transfer.to_dict()
        live_total += int(row["amount"]) - int(row.get("amount_reversed") or 0)
        line_id = _metadata(row).get("payout_line")
        if line_id:
            transfers[str(line_id)].append(row)
        else:
            stray.append(row["id"])
    lines = list(run.lines.select_related("payout_account").order_by("pk"))
    booked = _ledger_paid_out([line.pk for line in lines])
    differences: list[dict[str, Any]] = []
    for line in lines:
        rows = transfers.pop(str(line.pk), [])
        live = [t for t in rows if int(t.get("amount_reversed") or 0) < int(t["amount"])]
        at_stripe = sum(int(t["amount"]) - int(t.get("amount_reversed") or 0) for t in rows)
        in_ledger = booked.get(line.pk, 0)
        if at_stripe != in_ledger:
            differences.append(
                {
                    "line": line.pk,
                    "problem": f"Stripe holds {at_stripe} paid out, the ledger {in_ledger}",
                }
            )
        if line.status in (PayoutLineStatus.SENT, PayoutLineStatus.PAID):
            if len(live) != 1:
                differences.append({"line": line.pk, "problem": f"{len(live)} live transfers"})
                continue
            only = live[0]
            if (
                only["id"] != line.transfer_id
                or int(only["amount"]) != line.total
                or only.get("destination") != line.payout_account.stripe_account_id
            ):
                differences.append(
                    {"line": line.pk, "problem": "transfer, amount or destination differs"}
                )
        elif live:
            differences.append(
                {"line": line.pk, "problem": f"{line.status} line has a live transfer"}
            )
    for line_id, extra in transfers.items():
        differences.append(
            {"line": line_id, "problem": f"{len(extra)} transfers for an unknown line"}
        )
    differences += [
        {"transfer": transfer_id, "problem": "transfer without a line"} for transfer_id in stray
    ]
    ledger_total = sum(booked.values())
    if live_total != ledger_total:
        differences.append(
            {"problem": f"transfer group pays out {live_total}, the ledger {ledger_total}"}
        )
    ledger = ledger_verify() if include_ledger else None
    report = {
        "checked_at": timezone.now().isoformat(),
        "differences": differences,
        "transfer_total": live_total,
        "sent_total": ledger_total,
        "ledger": ledger.as_dict() if ledger else None,
        "clean": not differences and (ledger is None or ledger.is_clean),
    }
    PayoutRun.objects.filter(pk=run.pk).update(reconciliation=report)
    if not report["clean"]:
        staff_alert(
            f"Payout run {run.pk} does not reconcile",
            "Differences between the ledger and Stripe:\n"
            + "\n".join(str(difference) for difference in differences)
            + (f"\nLedger clean: {ledger.is_clean}" if ledger else ""),
        )
    return report
