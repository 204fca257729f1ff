"""Money test helpers: book fundings and earnings, and onboard accounts on the local server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils import timezone

from marketplace.models import User
from payouts.models import AccountKind, Funding, PayoutAccount, TransactionKind
from payouts.services import funding as funding_service
from payouts.services.ledger import account_for, ledger_post
from projects.models import Project

if TYPE_CHECKING:
    from tests.payouts.conftest import LocalStripe


def fund_project(project: Project, gross: int, *, session_id: str | None = None) -> None:
    """Book a paid funding directly (no HTTP, no Stripe), as the verified webhook does with what
    Stripe said about the session."""
    session_id = session_id or f"cs_test_{project.pk}_{gross}_{timezone.now().timestamp()}"
    Funding.objects.create(
        project=project, amount=gross, currency=project.currency, checkout_session_id=session_id
    )
    funding_service.funding_credit(
        evidence=funding_service.CheckoutEvidence(
            session_id=session_id,
            payment_status="paid",
            amount_total=gross,
            currency=project.currency,
        )
    )


def book_earning(project: Project, expert: User, amount: int, key: str) -> None:
    """Money already released to an expert's payable (what a payout run pays)."""
    ledger_post(
        idempotency_key=key,
        currency=project.currency,
        postings=[
            (
                account_for(
                    kind=AccountKind.PROJECT_ESCROW, currency=project.currency, project=project
                ),
                -amount,
            ),
            (
                account_for(
                    kind=AccountKind.EXPERT_PAYABLE, currency=project.currency, user=expert
                ),
                amount,
            ),
        ],
        kind=TransactionKind.EARNING_RELEASE,
        metadata={"project_id": project.pk, "user_id": expert.pk},
    )


def onboarded(stripe: LocalStripe, user: User) -> PayoutAccount:
    account = stripe.server.stripe.account_create(
        {"capabilities": {"transfers": {"requested": "true"}}, "email": user.email}
    )
    account["capabilities"]["transfers"] = "active"
    return PayoutAccount.objects.create(
        user=user, stripe_account_id=account["id"], transfers_active=True, details_submitted=True
    )
