"""Payout runs, stage 3: Stripe's transfer events confirm sent lines and book reversals.

As with every money event, the body only names the transfer: `transfer_fetch` reads it back
from Stripe (with all its reversals) before any database transaction, and what Stripe says is
booked. A reversal is booked by its own amount, once per reversal id (`payout-reversal:<trr>`):
a partial reversal returns that part to the expert's payable and leaves the line paid; only a
transfer reversed in full fails the line, which may then be retried (docs/MONEY.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe
from django.db import transaction

from payouts.models import (
    LedgerTransaction,
    PayoutLine,
    PayoutLineStatus,
    StripeEventStatus,
    TransactionKind,
)
from payouts.services.funding import PaymentProviderUnavailable, _as_dict, stripe_unavailable
from payouts.services.ledger import ledger_post
from payouts.services.payout_runs.execute import _accounts, _line_transition, _mark_sent
from payouts.stripe_gateway import stripe_client


@dataclass(frozen=True)
class TransferEvidence:
    """Stripe's view of one transfer: amounts, our metadata, and every reversal of it."""

    transfer_id: str
    found: bool = True
    amount: int = 0
    amount_reversed: int = 0
    destination: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    reversals: tuple[tuple[str, int], ...] = ()

    @property
    def is_fully_reversed(self) -> bool:
        return self.amount > 0 and self.amount_reversed >= self.amount


def transfer_fetch(*, transfer_id: str) -> TransferEvidence:
    """Read a transfer and all its reversals from Stripe (network; no transaction open)."""
    client = stripe_client()
    try:
        transfer = _as_dict(client.v1.transfers.retrieve(transfer_id))
        reversals = transfer.get("reversals") or {}
        rows = list(reversals.get("data") or [])
        if reversals.get("has_more"):
            rows = [
                _as_dict(reversal)
                for reversal in client.v1.transfers.reversals.list(
                    transfer_id, params={"limit": 100}
                ).auto_paging_iter()
            ]
    except stripe.StripeError as error:
        if stripe_unavailable(error):
            raise PaymentProviderUnavailable(
                "The payment provider did not answer; the event will be applied on its retry."
            ) from error
        return TransferEvidence(transfer_id=transfer_id, found=False)
    return TransferEvidence(
        transfer_id=transfer_id,
        amount=int(transfer.get("amount") or 0),
        amount_reversed=int(transfer.get("amount_reversed") or 0),
        destination=str(transfer.get("destination") or ""),
        metadata={str(k): str(v) for k, v in (transfer.get("metadata") or {}).items()},
        reversals=tuple(
            (str(row["id"]), int(row.get("amount") or 0))
            for row in rows
            if int(row.get("amount") or 0) > 0
        ),
    )


def payout_event_apply(*, event_type: str, evidence: TransferEvidence) -> tuple[str, str]:
    """Transfer webhooks: confirm sent lines, book reversals by amount, fail fully reversed
    lines (and only those)."""
    if not evidence.found:
        return StripeEventStatus.IGNORED, f"Stripe has no transfer {evidence.transfer_id}."
    line_id = evidence.metadata.get("payout_line", "")
    if not line_id.isdigit():
        return StripeEventStatus.IGNORED, "not a payout line transfer"
    line = PayoutLine.objects.select_related("run", "user").filter(pk=int(line_id)).first()
    if line is None:
        return StripeEventStatus.IGNORED, "unknown payout line"
    generation = evidence.metadata.get("generation", "")
    with transaction.atomic():
        current = PayoutLine.objects.select_for_update().get(pk=line.pk)
        is_current = generation == str(current.key_generation)
        if is_current and current.status == PayoutLineStatus.SUBMITTING:
            # The event beat our own response (for instance it was lost): it proves the
            # transfer exists, so the line is sent (and booked as sent).
            _mark_sent(current, evidence.transfer_id)
            current.refresh_from_db()
        sent_booked = LedgerTransaction.objects.filter(
            idempotency_key=f"payout-sent:{line.pk}:g{generation}"
        ).exists()
        if not sent_booked:
            return StripeEventStatus.IGNORED, "the transfer was never booked as sent"
        booked = _book_reversals(line, evidence)
        if not evidence.amount_reversed:
            if is_current and current.status == PayoutLineStatus.SENT:
                _line_transition(current, PayoutLineStatus.SENT, PayoutLineStatus.PAID)
            return StripeEventStatus.APPLIED, ""
        if not evidence.is_fully_reversed:
            PayoutLine.objects.filter(pk=line.pk).update(
                last_error=(
                    f"{evidence.amount_reversed} of {evidence.amount} reversed on "
                    f"{evidence.transfer_id}; the line stays paid"
                )
            )
            return (StripeEventStatus.APPLIED if booked else StripeEventStatus.IGNORED), ""
        if is_current and current.status in (PayoutLineStatus.SENT, PayoutLineStatus.PAID):
            # Only a transfer reversed in full frees the line for a retry (with a new key).
            PayoutLine.objects.filter(pk=line.pk).update(
                status=PayoutLineStatus.FAILED,
                last_error=f"{event_type}: {evidence.transfer_id} reversed in full",
                key_generation=current.key_generation + 1,
            )
            return StripeEventStatus.APPLIED, ""
    if booked:
        return StripeEventStatus.APPLIED, ""
    return StripeEventStatus.IGNORED, f"line is {current.status}; reversals already booked"


def _book_reversals(line: PayoutLine, evidence: TransferEvidence) -> int:
    """Every reversal of the transfer, back from Stripe clearing to the expert's payable, once
    per reversal id. Returns how many were booked now."""
    payable, _, clearing = _accounts(line)
    booked = 0
    for reversal_id, amount in evidence.reversals:
        _, created = ledger_post(
            idempotency_key=f"payout-reversal:{reversal_id}",
            currency=line.run.currency,
            postings=[(clearing, -amount), (payable, amount)],
            kind=TransactionKind.PAYOUT_REVERSED,
            metadata={
                "line_id": line.pk,
                "transfer_id": evidence.transfer_id,
                "reversal_id": reversal_id,
                "user_id": line.user_id,
            },
        )
        booked += created
    return booked


def event_transfer_id(obj: dict[str, Any]) -> str:
    """The transfer a `transfer.*` event names (its object is the transfer)."""
    value = obj.get("id")
    return value if isinstance(value, str) and value.startswith("tr") else ""
