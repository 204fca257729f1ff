"""Payout runs, stage 4: reconcile a run with Stripe's view of its transfer group."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.utils import timezone

from payouts.models import PayoutLineStatus, PayoutRun
from payouts.services.notify import staff_alert
from payouts.services.payout_runs.execute import _metadata
from payouts.stripe_gateway import stripe_client


def payout_run_reconcile(*, run: PayoutRun) -> dict[str, Any]:
    """Compare the run with Stripe's view of its transfer group, and the ledger with itself."""
    from payouts.services.ledger import ledger_verify

    client = stripe_client()
    transfers: dict[str, list[Any]] = defaultdict(list)
    stray = []
    for transfer in client.v1.transfers.list(
        params={"transfer_group": run.transfer_group, "limit": 100}
    ).auto_paging_iter():
        line_id = _metadata(transfer).get("payout_line")
        if line_id:
            transfers[str(line_id)].append(transfer)
        else:
            stray.append(transfer.id)
    differences: list[dict[str, Any]] = []
    expected_total = 0
    for line in run.lines.select_related("payout_account").order_by("pk"):
        found = [t for t in transfers.pop(str(line.pk), []) if not t.reversed]
        if line.status in (PayoutLineStatus.SENT, PayoutLineStatus.PAID):
            expected_total += line.total
            if len(found) != 1:
                differences.append({"line": line.pk, "problem": f"{len(found)} live transfers"})
                continue
            transfer = found[0]
            if (
                transfer.amount != line.total
                or transfer.destination != line.payout_account.stripe_account_id
            ):
                differences.append({"line": line.pk, "problem": "amount or destination differs"})
        elif found:
            differences.append({"line": line.pk, "problem": f"{line.status} line has a transfer"})
    for line_id, extra in transfers.items():
        differences.append(
            {"line": line_id, "problem": f"{len(extra)} transfers for an unknown line"}
        )
    differences += [
        {"transfer": transfer_id, "problem": "transfer without a line"} for transfer_id in stray
    ]
    live_total = sum(
        t.amount - (t.amount_reversed or 0)
        for t in client.v1.transfers.list(
            params={"transfer_group": run.transfer_group, "limit": 100}
        ).auto_paging_iter()
    )
    if live_total != expected_total:
        differences.append(
            {"problem": f"transfer group sums to {live_total}, sent lines to {expected_total}"}
        )
    ledger = ledger_verify()
    report = {
        "checked_at": timezone.now().isoformat(),
        "differences": differences,
        "transfer_total": live_total,
        "sent_total": expected_total,
        "ledger": ledger.as_dict(),
        "clean": not differences and ledger.is_clean,
    }
    PayoutRun.objects.filter(pk=run.pk).update(reconciliation=report)
    if not report["clean"]:
        staff_alert(
            f"Payout run {run.pk} does not reconcile",
            "Differences between the ledger and Stripe:\n"
            + "\n".join(str(difference) for difference in differences)
            + f"\nLedger clean: {ledger.is_clean}",
        )
    return report
