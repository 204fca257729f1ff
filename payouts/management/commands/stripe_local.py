"""Run the local Stripe-compatible server (tests and the embedded demo use it instead of Stripe).

It registers this site's webhook URL with the configured signing secret, so checkout and
onboarding events reach the application exactly as Stripe's would.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from payouts.stripe_local.server import LocalStripe, LocalStripeHTTPServer, State


class Command(BaseCommand):
    help = "Serve the local Stripe-compatible test server."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=12111)
        parser.add_argument(
            "--balance", type=int, default=0, help="start the platform balance with this (usd)"
        )
        parser.add_argument(
            "--webhook-url",
            default=f"{settings.SITE_URL}/api/v1/webhooks/stripe/",
            help="where to send signed events (empty: none)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        state = State(public_url=f"http://{options['host']}:{options['port']}")
        if options["balance"]:
            state.balance["usd"] = options["balance"]
        if options["webhook_url"]:
            state.webhooks.append((options["webhook_url"], settings.STRIPE_WEBHOOK_SECRET))
        server = LocalStripeHTTPServer((options["host"], options["port"]), LocalStripe(state))
        self.stdout.write(
            f"Local Stripe-compatible server on {state.public_url} "
            f"(webhooks to {options['webhook_url'] or 'nowhere'})"
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
