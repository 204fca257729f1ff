"""Money in, taken back: refunds and disputes of a lab's Checkout payment.

A refund or a dispute takes money out of the platform's Stripe balance. It comes out of the
project that money was paid into, in proportion: the fee's share of it out of platform revenue
and the rest out of the project's escrow, **as far as escrow goes**. What escrow no longer holds
was already committed to experts' work (pending, reserved, released or paid): that work stays
paid, the platform advances the difference (`funding_shortfall`, what the lab owes), the Funding
records it, the project pauses, and the lab is told (`project.funding_reversed` and an email to
its owners and managers). A refund that fails or a dispute won puts back exactly what was taken.

As with funding, the event body only names the object: the charge (with its refunds) or the
dispute is read back from Stripe through the SDK before any database transaction, and what
Stripe says is booked, once per refund or dispute id.

Past 400 lines on purpose: refunds, disputes and their outcomes share one proportional
split and one shortfall rule, read together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import stripe
from django.db import transaction
from django.db.models import Q

from marketplace.models import MANAGING_ROLES, Membership, WebhookEvent
from marketplace.templatetags.marketplace_tags import money
from marketplace.webhooks import webhook_emit
from payouts.models import (
    AccountKind,
    Funding,
    FundingStatus,
    LedgerAccount,
    LedgerTransaction,
    StripeEventStatus,
    TransactionKind,
)
from payouts.services.funding import (
    PaymentProviderUnavailable,
    _as_dict,
    _id_of,
    platform_fee,
    stripe_unavailable,
)
from payouts.services.ledger import account_for, ledger_post
from payouts.services.notify import email_after_commit, staff_alert
from payouts.stripe_gateway import stripe_client
from projects import services as project_services
from projects.models import ProjectStatus

REFUND_EVENTS = frozenset(
    {
        "charge.refunded",
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
        "refund.failed",
    }
)
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
# A refund whose money has left (or is leaving) the balance, and one that came back.
REFUND_OUT = frozenset({"succeeded", "pending", "requires_action"})
REFUND_BACK = frozenset({"failed", "canceled"})


@dataclass(frozen=True)
class RefundFact:
    refund_id: str
    amount: int
    currency: str
    status: str


@dataclass(frozen=True)
class PaymentLink:
    """How a charge leads to a Funding: its payment intent, itself, or (when neither was
    stored) the Checkout Sessions Stripe lists for the payment intent."""

    charge_id: str = ""
    payment_intent_id: str = ""
    session_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChargeEvidence:
    link: PaymentLink
    found: bool = True
    refunds: tuple[RefundFact, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DisputeEvidence:
    dispute_id: str
    link: PaymentLink = field(default_factory=PaymentLink)
    found: bool = True
    amount: int = 0
    currency: str = ""
    status: str = ""


def _unavailable() -> PaymentProviderUnavailable:
    return PaymentProviderUnavailable(
        "The payment provider did not answer; the event will be applied on its retry."
    )


def _link(client: stripe.StripeClient, charge_id: str, payment_intent_id: str) -> PaymentLink:
    condition = Q(pk__in=[])
    if charge_id:
        condition |= Q(charge_id=charge_id)
    if payment_intent_id:
        condition |= Q(payment_intent_id=payment_intent_id)
    known = Funding.objects.filter(condition).exists()
    sessions: tuple[str, ...] = ()
    if not known and payment_intent_id:
        listed = client.v1.checkout.sessions.list(
            params={"payment_intent": payment_intent_id, "limit": 10}
        )
        sessions = tuple(str(session.id) for session in listed.data)
    return PaymentLink(charge_id, payment_intent_id, sessions)


def _charge_id(event_type: str, obj: dict[str, Any]) -> str:
    if event_type.startswith("charge.") and obj.get("object") == "charge":
        return str(obj.get("id") or "")
    return _id_of(obj.get("charge"))


def charge_fetch(*, event_type: str, obj: dict[str, Any]) -> ChargeEvidence | None:
    """Read the charge an event names, with all its refunds, from Stripe (network)."""
    charge_id = _charge_id(event_type, obj)
    if not charge_id:
        return None
    client = stripe_client()
    try:
        charge = _as_dict(client.v1.charges.retrieve(charge_id))
        refunds = [
            _as_dict(refund)
            for refund in client.v1.refunds.list(
                params={"charge": charge_id, "limit": 100}
            ).auto_paging_iter()
        ]
        link = _link(client, charge_id, _id_of(charge.get("payment_intent")))
    except stripe.StripeError as error:
        if stripe_unavailable(error):
            raise _unavailable() from error
        return ChargeEvidence(link=PaymentLink(charge_id=charge_id), found=False)
    return ChargeEvidence(
        link=link,
        refunds=tuple(
            RefundFact(
                refund_id=str(refund["id"]),
                amount=int(refund.get("amount") or 0),
                currency=str(refund.get("currency") or "").lower(),
                status=str(refund.get("status") or ""),
            )
            for refund in refunds
            if _id_of(refund.get("charge")) == charge_id
        ),
    )


def dispute_fetch(*, obj: dict[str, Any]) -> DisputeEvidence | None:
    """Read the dispute an event names from Stripe (network)."""
    dispute_id = str(obj.get("id") or "")
    if not dispute_id.startswith("dp_") and obj.get("object") != "dispute":
        return None
    client = stripe_client()
    try:
        dispute = _as_dict(client.v1.disputes.retrieve(dispute_id))
        link = _link(client, _id_of(dispute.get("charge")), _id_of(dispute.get("payment_intent")))
    except stripe.StripeError as error:
        if stripe_unavailable(error):
            raise _unavailable() from error
        return DisputeEvidence(dispute_id=dispute_id, found=False)
    return DisputeEvidence(
        dispute_id=dispute_id,
        link=link,
        amount=int(dispute.get("amount") or 0),
        currency=str(dispute.get("currency") or "").lower(),
        status=str(dispute.get("status") or ""),
    )


def _funding_for(link: PaymentLink) -> Funding | None:
    """The Funding a charge paid, locked (callers are inside a transaction)."""
    condition = Q(pk__in=[])
    if link.payment_intent_id:
        condition |= Q(payment_intent_id=link.payment_intent_id)
    if link.charge_id:
        condition |= Q(charge_id=link.charge_id)
    if link.session_ids:
        condition |= Q(checkout_session_id__in=link.session_ids)
    return Funding.objects.select_for_update().select_related("project").filter(condition).first()


@dataclass
class _Accounts:
    clearing: LedgerAccount
    escrow: LedgerAccount
    revenue: LedgerAccount
    shortfall: LedgerAccount


def _locked_accounts(funding: Funding) -> _Accounts:
    currency = funding.currency
    accounts = _Accounts(
        clearing=account_for(kind=AccountKind.STRIPE_CLEARING, currency=currency),
        escrow=account_for(
            kind=AccountKind.PROJECT_ESCROW, currency=currency, project=funding.project
        ),
        revenue=account_for(kind=AccountKind.PLATFORM_REVENUE, currency=currency),
        shortfall=account_for(kind=AccountKind.FUNDING_SHORTFALL, currency=currency),
    )
    # Locked in primary-key order, as every poster does (ledger_post locks the same rows
    # again in the same order): the escrow balance read here cannot change before booking.
    pks = [
        accounts.clearing.pk,
        accounts.escrow.pk,
        accounts.revenue.pk,
        accounts.shortfall.pk,
    ]
    balances = dict(
        LedgerAccount.objects.select_for_update()
        .filter(pk__in=pks)
        .order_by("pk")
        .values_list("pk", "balance")
    )
    accounts.escrow.balance = balances[accounts.escrow.pk]
    return accounts


def _reverse(
    *, funding: Funding, key: str, amount: int, cause: str, stripe_id: str
) -> tuple[bool, str]:
    """Book `amount` of a paid funding back out (a refund or a dispute), once per `key`."""
    if LedgerTransaction.objects.filter(idempotency_key=key).exists():
        return False, "Already booked."
    if funding.status != FundingStatus.PAID:
        message = f"{cause} {stripe_id} for funding {funding.pk}, which was never credited."
        staff_alert(f"Funding {funding.pk}: {cause.lower()} before payment", message)
        return False, message
    before = funding.amount_refunded + funding.amount_disputed
    amount = min(amount, funding.amount - before)
    if amount <= 0:
        return False, f"Funding {funding.pk} is already reversed in full."
    # The fee's share follows the cumulative amount taken back, so several partial reversals
    # return exactly the fee that was charged, never more.
    fee_part = platform_fee(before + amount) - platform_fee(before)
    escrow_part = amount - fee_part
    accounts = _locked_accounts(funding)
    taken = min(max(accounts.escrow.balance, 0), escrow_part)
    short = escrow_part - taken
    postings: list[tuple[LedgerAccount, int]] = [(accounts.clearing, amount)]
    if taken:
        postings.append((accounts.escrow, -taken))
    if fee_part:
        postings.append((accounts.revenue, -fee_part))
    if short:
        postings.append((accounts.shortfall, -short))
    ledger_post(
        idempotency_key=key,
        currency=funding.currency,
        postings=postings,
        kind=TransactionKind.FUNDING_REVERSAL,
        memo=f"{cause} {stripe_id} of funding {funding.pk}",
        metadata={
            "project_id": funding.project_id,
            "funding_id": funding.pk,
            "cause": cause.lower(),
            "stripe_id": stripe_id,
            "amount": amount,
            "escrow": taken,
            "fee": fee_part,
            "shortfall": short,
        },
    )
    field_name = "amount_refunded" if cause == "Refund" else "amount_disputed"
    setattr(funding, field_name, getattr(funding, field_name) + amount)
    funding.shortfall += short
    funding.save(update_fields=[field_name, "shortfall"])
    paused = _pause_if_short(funding, short, cause, stripe_id)
    _tell_the_lab(funding, cause=cause, amount=amount, taken=taken, short=short, paused=paused)
    return True, ""


def _reinstate(*, funding: Funding, original_key: str, key: str, cause: str) -> tuple[bool, str]:
    """Put back exactly what a reversal took (a refund that failed, a dispute won)."""
    original = LedgerTransaction.objects.filter(idempotency_key=original_key).first()
    if original is None:
        return False, "Nothing was booked for it."
    if LedgerTransaction.objects.filter(idempotency_key=key).exists():
        return False, "Already reinstated."
    booked = original.metadata
    accounts = _locked_accounts(funding)
    postings: list[tuple[LedgerAccount, int]] = [(accounts.clearing, -int(booked["amount"]))]
    if booked["escrow"]:
        postings.append((accounts.escrow, int(booked["escrow"])))
    if booked["fee"]:
        postings.append((accounts.revenue, int(booked["fee"])))
    if booked["shortfall"]:
        postings.append((accounts.shortfall, int(booked["shortfall"])))
    ledger_post(
        idempotency_key=key,
        currency=funding.currency,
        postings=postings,
        kind=TransactionKind.FUNDING_REINSTATED,
        memo=f"{cause} of funding {funding.pk}",
        metadata={**booked, "reinstates": original_key},
    )
    field_name = "amount_refunded" if booked["cause"] == "refund" else "amount_disputed"
    setattr(funding, field_name, getattr(funding, field_name) - int(booked["amount"]))
    funding.shortfall -= int(booked["shortfall"])
    funding.save(update_fields=[field_name, "shortfall"])
    recipients = _lab_managers(funding)
    email_after_commit(
        recipients=recipients,
        subject=f"{cause}: {money(booked['amount'], funding.currency)} back for "
        f"'{funding.project.title}'",
        message=(
            f"{cause}: {money(booked['escrow'], funding.currency)} is back in the escrow of "
            f"'{funding.project.title}'. A project paused for the reversal stays paused "
            "until you resume it."
        ),
    )
    return True, ""


def _pause_if_short(funding: Funding, short: int, cause: str, stripe_id: str) -> bool:
    if not short:
        return False

    project = funding.project
    if project.status != ProjectStatus.OPEN:
        return False
    project_services.project_transition(
        project=project,
        to_status=ProjectStatus.PAUSED,
        changed_by=None,
        reason=(
            f"{cause} {stripe_id}: {money(short, funding.currency)} of it was already "
            "committed to experts' work and is owed to the platform."
        ),
    )
    return True


def _lab_managers(funding: Funding) -> list[str]:
    return list(
        Membership.objects.filter(
            lab_id=funding.project.lab_id, role__in=MANAGING_ROLES, user__is_active=True
        ).values_list("user__email", flat=True)
    )


def _tell_the_lab(
    funding: Funding, *, cause: str, amount: int, taken: int, short: int, paused: bool
) -> None:
    project = funding.project
    webhook_emit(
        lab_id=project.lab_id,
        event_type=WebhookEvent.PROJECT_FUNDING_REVERSED,
        data={
            "project": project.pk,
            "funding": funding.pk,
            "reason": "refund" if cause == "Refund" else "dispute",
            "amount": amount,
            "currency": funding.currency,
            "from_escrow": taken,
            "shortfall": short,
            "shortfall_total": funding.shortfall,
            "paused": paused,
        },
    )
    currency = funding.currency
    verb = "refunded" if cause == "Refund" else "disputed"
    lines = [
        f"{money(amount, currency)} of your payment into '{project.title}' was {verb} at "
        "Stripe, so it is no longer in the project's budget.",
        f"{money(taken, currency)} came out of the project's escrow"
        + (
            "."
            if not short
            else f"; {money(short, currency)} had already been committed to experts' work, "
            "which stays paid. That amount is owed to the platform."
        ),
    ]
    if paused:
        lines.append("The project is paused: fund it again, then resume it.")
    email_after_commit(
        recipients=_lab_managers(funding),
        subject=f"Payment {verb}: {money(amount, currency)} for '{project.title}'",
        message="\n\n".join(lines),
    )


def refund_apply(*, evidence: ChargeEvidence) -> tuple[str, str]:
    """Book every refund Stripe holds for the charge that is not booked yet, and put back any
    that failed after it was booked."""
    if not evidence.found:
        return StripeEventStatus.IGNORED, f"Stripe has no charge {evidence.link.charge_id}."
    with transaction.atomic():
        funding = _funding_for(evidence.link)
        if funding is None:
            return StripeEventStatus.IGNORED, "The charge paid no funding."
        booked, notes = 0, []
        for refund in evidence.refunds:
            key = f"refund:{refund.refund_id}"
            if refund.currency != funding.currency:
                notes.append(f"refund {refund.refund_id} is in {refund.currency}")
                continue
            if refund.status in REFUND_OUT:
                created, note = _reverse(
                    funding=funding,
                    key=key,
                    amount=refund.amount,
                    cause="Refund",
                    stripe_id=refund.refund_id,
                )
            elif refund.status in REFUND_BACK:
                created, note = _reinstate(
                    funding=funding,
                    original_key=key,
                    key=f"refund-failed:{refund.refund_id}",
                    cause="Refund failed",
                )
            else:
                created, note = False, f"refund {refund.refund_id} is {refund.status}"
            booked += created
            if note and not created and note not in ("Already booked.", "Already reinstated."):
                notes.append(note)
    if booked:
        return StripeEventStatus.APPLIED, "; ".join(notes)
    return StripeEventStatus.IGNORED, "; ".join(notes) or "Every refund is already booked."


def dispute_apply(*, evidence: DisputeEvidence) -> tuple[str, str]:
    """A dispute withdrawn takes the money out once; one won puts it back once; an inquiry
    (`warning_*`: no money withdrawn) and a lost dispute change nothing more."""
    if not evidence.found:
        return StripeEventStatus.IGNORED, f"Stripe has no dispute {evidence.dispute_id}."
    key = f"dispute:{evidence.dispute_id}"
    with transaction.atomic():
        funding = _funding_for(evidence.link)
        if funding is None:
            return StripeEventStatus.IGNORED, "The disputed charge paid no funding."
        if evidence.currency != funding.currency:
            return StripeEventStatus.IGNORED, f"The dispute is in {evidence.currency}."
        if evidence.status.startswith("warning_"):
            return StripeEventStatus.IGNORED, "An inquiry: no money was withdrawn."
        if evidence.status == "won":
            created, note = _reinstate(
                funding=funding,
                original_key=key,
                key=f"dispute-won:{evidence.dispute_id}",
                cause="Dispute won",
            )
        else:
            created, note = _reverse(
                funding=funding,
                key=key,
                amount=evidence.amount,
                cause="Dispute",
                stripe_id=evidence.dispute_id,
            )
    if created:
        return StripeEventStatus.APPLIED, ""
    if evidence.status == "lost":
        note = "Dispute lost: the amount stays out (booked when it was withdrawn)."
    return StripeEventStatus.IGNORED, note
