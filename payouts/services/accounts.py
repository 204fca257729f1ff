"""Experts' Stripe Connect accounts."""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError

from marketplace.models import User
from payouts.models import PayoutAccount
from payouts.services.funding import PaymentProviderUnavailable
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
