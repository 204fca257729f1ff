"""Payout runs, stage 3: Stripe's transfer events confirm sent lines and undo reversed ones."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from payouts.models import PayoutLine, PayoutLineStatus, StripeEventStatus, TransactionKind
from payouts.services.ledger import ledger_post
from payouts.services.payout_runs.execute import _accounts, _line_transition, _mark_sent


def payout_event_apply(*, event_type: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Transfer webhooks: confirm sent lines, and undo reversed ones."""
    metadata = obj.get("metadata") or {}
    line_id = metadata.get("payout_line")
    if not line_id or not str(line_id).isdigit():
        return StripeEventStatus.IGNORED, "not a payout line transfer"
    line = PayoutLine.objects.select_related("run", "user").filter(pk=int(line_id)).first()
    if line is None:
        return StripeEventStatus.IGNORED, "unknown payout line"
    if str(line.key_generation) != str(metadata.get("generation")):
        return StripeEventStatus.IGNORED, "event for an earlier key generation"
    if event_type in ("transfer.created", "transfer.updated") and not obj.get("reversed"):
        if line.status == PayoutLineStatus.SUBMITTING:
            # The webhook beat our own response (for instance it was lost): it proves the
            # transfer exists, so the line is sent.
            _mark_sent(line, str(obj["id"]))
            line.refresh_from_db()
        if line.status == PayoutLineStatus.SENT:
            _line_transition(line, PayoutLineStatus.SENT, PayoutLineStatus.PAID)
        return StripeEventStatus.APPLIED, ""
    if event_type in ("transfer.reversed", "transfer.failed") or obj.get("reversed"):
        with transaction.atomic():
            current = PayoutLine.objects.select_for_update().get(pk=line.pk)
            if current.status == PayoutLineStatus.SUBMITTING:
                # Out of order: the reversal arrived before we learned the transfer was made
                # (its response was lost). The reversal proves it was made: book it, then undo.
                _mark_sent(current, str(obj["id"]))
                current.refresh_from_db()
            if current.status not in (PayoutLineStatus.SENT, PayoutLineStatus.PAID):
                return StripeEventStatus.IGNORED, f"line is {current.status}"
            PayoutLine.objects.filter(pk=line.pk).update(
                status=PayoutLineStatus.FAILED,
                last_error=f"{event_type} {obj.get('id')}",
                key_generation=current.key_generation + 1,
            )
            payable, _, clearing = _accounts(line)
            ledger_post(
                idempotency_key=f"payout-reversed:{line.pk}:g{current.key_generation}",
                currency=line.run.currency,
                postings=[(clearing, -line.total), (payable, line.total)],
                kind=TransactionKind.PAYOUT_REVERSED,
                metadata={
                    "line_id": line.pk,
                    "transfer_id": obj.get("id"),
                    "user_id": line.user_id,
                },
            )
        return StripeEventStatus.APPLIED, ""
    return StripeEventStatus.IGNORED, "transfer event not used"
