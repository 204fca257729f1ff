"""Experts' Stripe Connect accounts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from marketplace.models import User
from marketplace.templatetags.marketplace_tags import money
from payouts.models import BankPayout, BankPayoutStatus, PayoutAccount
from payouts.services.funding import PaymentProviderUnavailable
from payouts.services.notify import email_after_commit
from payouts.stripe_gateway import stripe_client


def payout_account_onboarding_url(*, user: User) -> str:
    """Create the expert's connected account once, then return a fresh onboarding link.

    The account is created with an idempotency key naming the user, so two concurrent first
    calls get the same Stripe account; the link is never logged (it grants access to the
    expert's onboarding).
    """
    client = stripe_client()
    account = PayoutAccount.objects.filter(user=user).first()
    try:
        if account is None:
            created = client.v1.accounts.create(
                params={
                    "email": user.email,
                    "controller": {
                        "fees": {"payer": "application"},
                        "losses": {"payments": "application"},
                        "stripe_dashboard": {"type": "express"},
                    },
                    "capabilities": {"transfers": {"requested": True}},
                    "metadata": {"user_id": str(user.pk)},
                },
                options={"idempotency_key": f"payout-account-{user.pk}"},
            )
            try:
                account = PayoutAccount.objects.create(user=user, stripe_account_id=created.id)
            except IntegrityError:
                account = PayoutAccount.objects.get(user=user)
        link = client.v1.account_links.create(
            params={
                "account": account.stripe_account_id,
                "type": "account_onboarding",
                "refresh_url": f"{settings.SITE_URL}/?payout_onboarding=refresh",
                "return_url": f"{settings.SITE_URL}/?payout_onboarding=done",
            }
        )
    except stripe.StripeError as error:
        raise PaymentProviderUnavailable(
            "The payment provider did not answer. Try again."
        ) from error
    return str(link.url)


def payout_account_sync(*, stripe_account: dict[str, Any]) -> bool:
    """Apply an `account.updated` snapshot. Returns False for an account we do not know."""
    capabilities = stripe_account.get("capabilities") or {}
    updated = PayoutAccount.objects.filter(stripe_account_id=stripe_account.get("id")).update(
        transfers_active=capabilities.get("transfers") == "active",
        payouts_enabled=bool(stripe_account.get("payouts_enabled")),
        details_submitted=bool(stripe_account.get("details_submitted")),
    )
    return bool(updated)


def payout_account_capability_sync(*, capability: dict[str, Any]) -> bool:
    """Apply a `capability.updated` event for the `transfers` capability."""
    if capability.get("id") != "transfers":
        return True
    updated = PayoutAccount.objects.filter(stripe_account_id=capability.get("account")).update(
        transfers_active=capability.get("status") == "active"
    )
    return bool(updated)


def bank_payout_record(*, stripe_account: str, payout: dict[str, Any]) -> tuple[bool, str]:
    """Record a connected account's `payout.*` event on the expert's payout account, once per
    payout id, and email the expert when it failed.

    The signed event body is used as sent: no money moves on it (the ledger paid the expert
    with the transfer; this is Stripe paying their balance out to the bank), so there is
    nothing to credit wrongly. A failure is final: a late `payout.paid` does not undo it.
    """
    account = PayoutAccount.objects.filter(stripe_account_id=stripe_account).first()
    if account is None or not stripe_account:
        return False, "not a payout of a connected account we know"
    payout_id = payout.get("id")
    amount = payout.get("amount")
    if not isinstance(payout_id, str) or not isinstance(amount, int):
        return False, "not a payout object"
    status = str(payout.get("status") or "")
    if status not in BankPayoutStatus.values:
        status = BankPayoutStatus.PENDING
    arrival = payout.get("arrival_date")
    fields = {
        "amount": amount,
        "currency": str(payout.get("currency") or "").lower()[:3],
        "arrival_date": (
            datetime.fromtimestamp(arrival, tz=UTC) if isinstance(arrival, int) else None
        ),
        "failure_code": str(payout.get("failure_code") or "")[:100],
        "failure_message": str(payout.get("failure_message") or ""),
    }
    with transaction.atomic():
        row, created = BankPayout.objects.select_for_update().get_or_create(
            stripe_payout_id=payout_id,
            defaults={"payout_account": account, "status": status, **fields},
        )
        if created:
            newly_failed = status == BankPayoutStatus.FAILED
        elif row.status == BankPayoutStatus.FAILED:
            return False, "already failed"
        else:
            newly_failed = status == BankPayoutStatus.FAILED
            BankPayout.objects.filter(pk=row.pk).update(status=status, **fields)
        if newly_failed:
            _tell_expert_payout_failed(account, amount, fields)
    return True, ""


def _tell_expert_payout_failed(account: PayoutAccount, amount: int, fields: dict[str, Any]) -> None:
    email_after_commit(
        recipients=[account.user.email],
        subject="Your payout to your bank failed",
        message=(
            f"Stripe could not pay {money(amount, fields['currency'])} out to your bank: "
            f"{fields['failure_message'] or fields['failure_code'] or 'no reason given'}.\n\n"
            "The money is back in your Stripe balance. Check your bank details with Stripe "
            f"from your payout account page: {settings.SITE_URL}/expert/payout-account/"
        ),
    )
