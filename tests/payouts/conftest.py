"""The local Stripe-compatible server for money tests.

One server per test session, its state reset for every test. Webhooks it emits are queued and
delivered by `stripe.deliver()` on the test's own thread through the real webhook URL, so they
see the test's database transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from marketplace.models import Lab, User
from payouts.stripe_local.server import RunningServer, State, start_in_thread
from projects.models import Project
from tests.payouts.factories import fund_project
from tests.projects.factories import make_project

WEBHOOK_SECRET = "whsec_test_secret"
WEBHOOK_URL = "http://testserver/api/v1/webhooks/stripe/"


@dataclass
class LocalStripe:
    server: RunningServer
    queue: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    @property
    def state(self) -> State:
        return self.server.stripe.state

    def deliver(self) -> list[Any]:
        """Post every queued webhook to the application; returns the responses."""
        responses = []
        client = Client()
        while self.queue:
            _, payload, headers = self.queue.pop(0)
            responses.append(
                client.post(
                    "/api/v1/webhooks/stripe/",
                    data=payload,
                    content_type="application/json",
                    HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
                )
            )
        return responses

    def transfers(self, group: str | None = None) -> list[dict[str, Any]]:
        rows = [obj for obj in self.state.objects.values() if obj["object"] == "transfer"]
        return [row for row in rows if group is None or row["transfer_group"] == group]


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[RunningServer]:
    server = start_in_thread()
    yield server
    server.stop()


@pytest.fixture
def stripe_local(stripe_server: RunningServer, settings: Any) -> LocalStripe:
    harness = LocalStripe(stripe_server)
    with stripe_server.stripe.state.lock:
        stripe_server.stripe.state = State(
            public_url=stripe_server.url,
            deliver=lambda url, payload, headers: harness.queue.append((url, payload, headers)),
        )
        stripe_server.stripe.state.webhooks.append((WEBHOOK_URL, WEBHOOK_SECRET))
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.STRIPE_API_BASE = stripe_server.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_LIVEMODE = False
    settings.STRIPE_TIMEOUT_SECONDS = 5
    # Resume submitting lines at once: the tests play the crash and the restart back to back.
    settings.PAYOUT_INFLIGHT_GRACE_SECONDS = 0
    return harness


@pytest.fixture
def funded_project(lab: Lab, lab_owner: User) -> Project:
    project = make_project(lab, lab_owner)
    fund_project(project, 1_000_000)
    return project


PERIOD = {
    "period_start": (timezone.now() - timedelta(days=30)).date().isoformat(),
    "period_end": timezone.now().date().isoformat(),
}
