"""Money in: Stripe Checkout funding of a project's escrow."""

from __future__ import annotations

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
from payouts.stripe_gateway import stripe_client


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


def funding_credit(*, session: dict[str, Any]) -> bool:
    """Credit escrow for a paid Checkout Session, once per session id. Returns True if booked.

    Gross to Stripe clearing, gross minus the platform fee to the project's escrow, the fee to
    platform revenue.
    """
    if session.get("payment_status") != "paid":
        return False
    with transaction.atomic():
        funding = (
            Funding.objects.select_for_update()
            .select_related("project")
            .filter(checkout_session_id=session["id"])
            .first()
        )
        if funding is None:
            return False
        gross = int(session["amount_total"])
        currency = str(session["currency"]).lower()
        if currency != funding.currency:
            raise DomainError(
                "The paid currency differs from the funding's.", code="currency_mismatch"
            )
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
            idempotency_key=f"funding:{session['id']}",
            currency=currency,
            postings=postings,
            kind=TransactionKind.FUNDING,
            memo=f"Checkout {session['id']} for project {funding.project_id}",
            metadata={"project_id": funding.project_id, "funding_id": funding.pk, "fee": fee},
        )
        if created:
            # Money arrived: the next low-budget crossing is worth telling the lab about again.
            from projects.models import Project

            Project.objects.filter(pk=funding.project_id).update(budget_low_notified_at=None)
        if funding.status != FundingStatus.PAID:
            funding.status = FundingStatus.PAID
            funding.paid_at = timezone.now()
            funding.save(update_fields=["status", "paid_at"])
    return created
