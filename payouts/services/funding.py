"""Money in: Stripe Checkout funding of a project's escrow."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.errors import Conflict, DomainError
from marketplace.models import User
from payouts.models import AccountKind, Funding, FundingStatus, TransactionKind
from payouts.services.ledger import account_for, ledger_post
from payouts.services.notify import staff_alert
from payouts.stripe_gateway import stripe_client
from projects.models import Project


class PaymentProviderUnavailable(DomainError):
    status_code = 503
    default_code = "payment_provider_unavailable"


def platform_fee(gross: int) -> int:
    """The platform's share of a funding, rounded half-up to a whole minor unit."""
    percent = Decimal(settings.PLATFORM_FEE_PERCENT)
    return int((Decimal(gross) * percent / Decimal(100)).quantize(Decimal(1), ROUND_HALF_UP))


def funding_checkout_create(*, project: Any, amount: int, created_by: User) -> tuple[Funding, str]:
    """Open a Checkout Session for `amount` (minor units, the project's currency).

    The Funding row is committed before Stripe is called (never network I/O inside a database
    transaction), and the session is created with an idempotency key naming that row, so a
    retried request cannot open a second session for the same funding.
    """
    if project.status == "closed":
        raise Conflict("The project is closed.", code="project_closed")
    funding = Funding.objects.create(
        project=project, amount=amount, currency=project.currency, created_by=created_by
    )
    base = settings.SITE_URL
    try:
        session = stripe_client().v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "line_items": [
                    {
                        "quantity": 1,
                        "price_data": {
                            "currency": project.currency,
                            "unit_amount": amount,
                            "product_data": {"name": f"Funding for '{project.title}'"},
                        },
                    }
                ],
                "metadata": {"project_id": str(project.pk), "funding_id": str(funding.pk)},
                "client_reference_id": f"funding-{funding.pk}",
                "success_url": f"{base}/?funded={project.pk}",
                "cancel_url": f"{base}/?funding_cancelled={project.pk}",
            },
            options={"idempotency_key": f"funding-{funding.pk}"},
        )
    except stripe.StripeError as error:
        raise PaymentProviderUnavailable(
            "The payment provider did not answer; nothing was charged. Try again."
        ) from error
    Funding.objects.filter(pk=funding.pk).update(checkout_session_id=session.id)
    funding.checkout_session_id = session.id
    return funding, str(session.url)


@dataclass(frozen=True)
class CheckoutEvidence:
    """What Stripe itself says about a Checkout Session (and its payment intent), read back
    through the SDK. A webhook's body is only a hint of which session to look at: a signed
    event could still lie about the amount (a leaked secret, a replay from another account),
    so escrow is credited from this, never from the event."""

    session_id: str
    found: bool = True
    payment_status: str = ""
    amount_total: int | None = None
    currency: str = ""
    payment_intent_id: str = ""
    intent_status: str = ""
    intent_amount_received: int | None = None
    intent_currency: str = ""
    charge_id: str = ""


def stripe_unavailable(error: stripe.StripeError) -> bool:
    """Whether a Stripe error says nothing about the object (Stripe down, a timeout, a rate
    limit, our key refused): the caller must retry later, not conclude anything."""
    return not isinstance(error, stripe.InvalidRequestError) or (error.http_status or 500) >= 500


def _as_dict(stripe_object: Any) -> dict[str, Any]:
    if isinstance(stripe_object, stripe.StripeObject):
        return stripe_object.to_dict()
    return dict(stripe_object or {})


def _id_of(value: Any) -> str:
    """An expandable field: an id, or the object itself."""
    if isinstance(value, stripe.StripeObject):
        value = value.to_dict()
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def funding_session_fetch(*, session_id: str) -> CheckoutEvidence:
    """Read a Checkout Session and its payment intent from Stripe (network; call it outside any
    database transaction). Raises PaymentProviderUnavailable when Stripe cannot say."""
    client = stripe_client()
    try:
        session = _as_dict(client.v1.checkout.sessions.retrieve(session_id))
        intent: dict[str, Any] = {}
        intent_id = _id_of(session.get("payment_intent"))
        if intent_id:
            intent = _as_dict(client.v1.payment_intents.retrieve(intent_id))
    except stripe.StripeError as error:
        if stripe_unavailable(error):
            raise PaymentProviderUnavailable(
                "The payment provider did not answer; the event will be applied on its retry."
            ) from error
        return CheckoutEvidence(session_id=session_id, found=False)
    amount_total = session.get("amount_total")
    received = intent.get("amount_received", intent.get("amount"))
    return CheckoutEvidence(
        session_id=session_id,
        payment_status=str(session.get("payment_status") or ""),
        amount_total=int(amount_total) if isinstance(amount_total, int) else None,
        currency=str(session.get("currency") or "").lower(),
        payment_intent_id=intent_id,
        intent_status=str(intent.get("status") or ""),
        intent_amount_received=int(received) if isinstance(received, int) else None,
        intent_currency=str(intent.get("currency") or "").lower(),
        charge_id=_id_of(intent.get("latest_charge")),
    )


def _refusal(evidence: CheckoutEvidence, funding: Funding) -> str:
    """Why Stripe's view of the session does not allow crediting this funding ('' if it does)."""
    if evidence.payment_status != "paid":
        return (
            f"Stripe says session {evidence.session_id} is "
            f"{evidence.payment_status or 'unpaid'}: nothing credited."
        )
    if evidence.amount_total != funding.amount or evidence.currency != funding.currency:
        return (
            f"Stripe's session {evidence.session_id} ({evidence.amount_total} "
            f"{evidence.currency}) differs from funding {funding.pk} ({funding.amount} "
            f"{funding.currency}): nothing credited."
        )
    if evidence.payment_intent_id and (
        evidence.intent_status != "succeeded"
        or evidence.intent_amount_received != evidence.amount_total
        or evidence.intent_currency != evidence.currency
    ):
        return (
            f"Stripe's payment intent {evidence.payment_intent_id} "
            f"({evidence.intent_status}, {evidence.intent_amount_received} "
            f"{evidence.intent_currency}) differs from its session: nothing credited."
        )
    return ""


def funding_credit(*, evidence: CheckoutEvidence) -> tuple[bool, str]:
    """Credit escrow for a session Stripe holds as paid, once per session id.

    Returns (booked, note): the note says why nothing was booked. Gross to Stripe clearing,
    gross minus the platform fee to the project's escrow, the fee to platform revenue; the
    gross is Stripe's amount, which must also be the Funding row's.
    """
    if not evidence.found:
        return False, f"Stripe has no checkout session {evidence.session_id}."
    with transaction.atomic():
        funding = (
            Funding.objects.select_for_update()
            .select_related("project")
            .filter(checkout_session_id=evidence.session_id)
            .first()
        )
        if funding is None:
            return False, f"No funding was opened for session {evidence.session_id}."
        refusal = _refusal(evidence, funding)
        if refusal:
            if evidence.payment_status == "paid" and funding.note != refusal:
                # Paid at Stripe, but not what we asked for: someone must look at it.
                Funding.objects.filter(pk=funding.pk).update(note=refusal)
                _alert_staff_mismatch(funding, refusal)
            return False, refusal
        gross = funding.amount
        currency = funding.currency
        fee = platform_fee(gross)
        postings = [
            (account_for(kind=AccountKind.STRIPE_CLEARING, currency=currency), -gross),
            (
                account_for(
                    kind=AccountKind.PROJECT_ESCROW, currency=currency, project=funding.project
                ),
                gross - fee,
            ),
        ]
        if fee:
            postings.append(
                (account_for(kind=AccountKind.PLATFORM_REVENUE, currency=currency), fee)
            )
        _, created = ledger_post(
            idempotency_key=f"funding:{evidence.session_id}",
            currency=currency,
            postings=postings,
            kind=TransactionKind.FUNDING,
            memo=f"Checkout {evidence.session_id} for project {funding.project_id}",
            metadata={"project_id": funding.project_id, "funding_id": funding.pk, "fee": fee},
        )
        if created:
            # Money arrived: the next low-budget crossing is worth telling the lab about again.

            Project.objects.filter(pk=funding.project_id).update(budget_low_notified_at=None)
        if funding.status != FundingStatus.PAID:
            funding.status = FundingStatus.PAID
            funding.paid_at = timezone.now()
            funding.payment_intent_id = evidence.payment_intent_id or None
            funding.charge_id = evidence.charge_id
            funding.note = ""
            funding.save(
                update_fields=["status", "paid_at", "payment_intent_id", "charge_id", "note"]
            )
    return created, "" if created else "Already booked."


def _alert_staff_mismatch(funding: Funding, message: str) -> None:
    staff_alert(f"Funding {funding.pk} does not match Stripe", message)
