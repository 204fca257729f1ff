"""Stripe webhooks: verify, store first, then apply each event exactly once."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketplace.errors import DomainError
from payouts.models import StripeEvent, StripeEventStatus
from payouts.services import accounts, funding, payout_runs, reversals
from payouts.services.payout_runs import events

logger = logging.getLogger(__name__)


class WebhookRejected(DomainError):
    default_code = "invalid_signature"


def _timestamp(signature_header: str) -> int | None:
    for part in signature_header.split(","):
        name, _, value = part.partition("=")
        if name.strip() == "t" and value.strip().isdigit():
            return int(value)
    return None


def stripe_event_receive(*, payload: bytes, signature_header: str) -> StripeEvent:
    """Verify the signature, store the raw event, apply it once. Replays are no-ops."""
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    try:
        event = stripe.Webhook.construct_event(
            payload, signature_header, settings.STRIPE_WEBHOOK_SECRET, tolerance=tolerance
        )
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise WebhookRejected("The Stripe signature does not verify.") from error
    # Stripe's library refuses old timestamps only; a timestamp from the future is just as
    # suspicious (a replay prepared in advance, or a wrong clock).
    signed_at = _timestamp(signature_header)
    if signed_at is None or signed_at > time.time() + tolerance:
        raise WebhookRejected("The Stripe signature timestamp is in the future.")

    body = json.loads(payload)
    try:
        with transaction.atomic():
            stored, _ = StripeEvent.objects.get_or_create(
                event_id=event.id,
                defaults={
                    "type": event.type,
                    "livemode": bool(body.get("livemode")),
                    "account": body.get("account") or "",
                    "payload": body,
                },
            )
    except IntegrityError:
        stored = StripeEvent.objects.get(event_id=event.id)
    return stripe_event_apply(event_pk=stored.pk)


CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


def stripe_event_apply(*, event_pk: int) -> StripeEvent:
    """Apply a stored event once. What the event is about is first read back from Stripe
    (outside any database transaction: never network I/O while holding row locks), then the
    event row is locked and the change booked from Stripe's answer, not from the event body.

    If Stripe cannot answer, PaymentProviderUnavailable (503) leaves the event `received`:
    Stripe retries a delivery that was not answered 2xx, and the retry applies it.
    """
    stored = StripeEvent.objects.get(pk=event_pk)
    if stored.status != StripeEventStatus.RECEIVED:
        return stored
    evidence = _fetch(stored)
    with transaction.atomic():
        # The row lock makes concurrent deliveries of one event apply it once: the second
        # waits here, then sees it already applied (its fetch was wasted, nothing more).
        stored = StripeEvent.objects.select_for_update().get(pk=event_pk)
        if stored.status != StripeEventStatus.RECEIVED:
            return stored
        status, note = _dispatch(stored, evidence)
        stored.status = status
        stored.note = note
        stored.processed_at = timezone.now()
        stored.save(update_fields=["status", "note", "processed_at"])
    if status == StripeEventStatus.IGNORED and note:
        logger.info("stripe event %s ignored: %s", stored.event_id, note)
    return stored


def _object(stored: StripeEvent) -> dict[str, Any]:
    obj = stored.payload.get("data", {}).get("object", {})
    return obj if isinstance(obj, dict) else {}


def _fetch(stored: StripeEvent) -> Any:
    """Stripe's own view of the event's object, for the types that move money."""
    if stored.livemode != settings.STRIPE_LIVEMODE:
        return None
    obj = _object(stored)
    if stored.type in CHECKOUT_EVENTS and isinstance(obj.get("id"), str):
        return funding.funding_session_fetch(session_id=obj["id"])
    if stored.type in reversals.REFUND_EVENTS:
        return reversals.charge_fetch(event_type=stored.type, obj=obj)
    if stored.type in reversals.DISPUTE_EVENTS:
        return reversals.dispute_fetch(obj=obj)
    if stored.type.startswith("transfer."):
        transfer_id = events.event_transfer_id(obj)
        return events.transfer_fetch(transfer_id=transfer_id) if transfer_id else None
    return None


def _dispatch(stored: StripeEvent, evidence: Any) -> tuple[str, str]:
    if stored.livemode != settings.STRIPE_LIVEMODE:
        return StripeEventStatus.IGNORED, "livemode does not match this deployment"
    obj = _object(stored)
    if stored.type in CHECKOUT_EVENTS:
        if evidence is None:
            return StripeEventStatus.IGNORED, "no session id"
        booked, note = funding.funding_credit(evidence=evidence)
        return (StripeEventStatus.APPLIED, "") if booked else (StripeEventStatus.IGNORED, note)
    if stored.type in reversals.REFUND_EVENTS:
        if evidence is None:
            return StripeEventStatus.IGNORED, "no charge named"
        return reversals.refund_apply(evidence=evidence)
    if stored.type in reversals.DISPUTE_EVENTS:
        if evidence is None:
            return StripeEventStatus.IGNORED, "no dispute named"
        return reversals.dispute_apply(evidence=evidence)
    if stored.type == "account.updated":
        if accounts.payout_account_sync(stripe_account=obj):
            return StripeEventStatus.APPLIED, ""
        return StripeEventStatus.IGNORED, "unknown connected account"
    if stored.type == "capability.updated":
        if accounts.payout_account_capability_sync(capability=obj):
            return StripeEventStatus.APPLIED, ""
        return StripeEventStatus.IGNORED, "unknown connected account"
    if stored.type.startswith("payout."):
        booked, note = accounts.bank_payout_record(stripe_account=stored.account, payout=obj)
        return (StripeEventStatus.APPLIED, "") if booked else (StripeEventStatus.IGNORED, note)
    if stored.type.startswith("transfer."):
        if evidence is None:
            return StripeEventStatus.IGNORED, "no transfer named"
        return payout_runs.payout_event_apply(event_type=stored.type, evidence=evidence)
    return StripeEventStatus.IGNORED, "event type not used"


def stripe_events_retry(*, older_than_seconds: int = 60, limit: int = 500) -> int:
    """Apply stored events left `received` because Stripe could not be read back; each one
    is applied once (the row lock in `stripe_event_apply`). Returns how many were applied."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    applied = 0
    pending = StripeEvent.objects.filter(
        status=StripeEventStatus.RECEIVED, received_at__lte=cutoff
    ).order_by("pk")[:limit]
    for event_pk in list(pending.values_list("pk", flat=True)):
        try:
            stored = stripe_event_apply(event_pk=event_pk)
        except funding.PaymentProviderUnavailable:
            break  # Stripe is still down: the next run tries again
        applied += stored.status != StripeEventStatus.RECEIVED
    return applied
