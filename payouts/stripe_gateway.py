"""The one place the application builds its Stripe client (the official SDK, always)."""

from __future__ import annotations

import stripe
from django.conf import settings


def stripe_client() -> stripe.StripeClient:
    base = settings.STRIPE_API_BASE
    addresses = {"api": base, "connect": base} if base else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=addresses,  # type: ignore[arg-type]
        # Our own code decides when to retry money calls (with the same idempotency key).
        max_network_retries=0,
        http_client=stripe.new_default_http_client(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )
