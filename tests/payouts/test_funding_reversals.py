"""Refunds and disputes of a lab's payment (issue 17): the refunded or disputed money leaves the
project's escrow as far as escrow goes; what escrow no longer holds (already committed to
experts' work) is recorded as a shortfall, the project pauses and the lab is told."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from marketplace.models import Lab, User, WebhookDelivery, WebhookEndpoint
from marketplace.webhooks import new_secret
from payouts.models import AccountKind, Funding, LedgerTransaction, StripeEvent
from payouts.services.ledger import balance_of, ledger_verify
from payouts.stripe_local.server import sign_payload
from projects.models import Project
from tests.payouts.conftest import WEBHOOK_SECRET, LocalStripe
from tests.payouts.factories import book_earning
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db
Client_ = Callable[[User], APIClient]
GROSS = 100_000


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    project = make_project(lab, lab_owner)
    Project.objects.filter(pk=project.pk).update(status="open")
    project.refresh_from_db()
    return project


@pytest.fixture
def endpoint(lab: Lab, lab_owner: User) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        lab=lab, url="https://hooks.example.org/lab", secret=new_secret(), created_by=lab_owner
    )


@pytest.fixture
def paid(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> Funding:
    """A lab paid GROSS through Checkout and the webhook credited 80% of it to escrow."""
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.id}/fund/", {"amount": GROSS}, format="json"
    )
    assert response.status_code == 201, response.content
    stripe_local.server.stripe.checkout_pay(response.json()["checkout_url"].rsplit("/", 1)[1])
    assert [r.status_code for r in stripe_local.deliver()] == [200]
    funding = Funding.objects.get()
    assert funding.charge_id.startswith("ch_") and escrow(project) == 80_000
    return funding


def escrow(project: Project) -> int:
    return balance_of(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project)


def revenue() -> int:
    return balance_of(kind=AccountKind.PLATFORM_REVENUE, currency="usd")


def clearing() -> int:
    return balance_of(kind=AccountKind.STRIPE_CLEARING, currency="usd")


def shortfall_account() -> int:
    return balance_of(kind=AccountKind.FUNDING_SHORTFALL, currency="usd")


def reversals_told(endpoint: WebhookEndpoint) -> list[dict[str, Any]]:
    return [
        delivery.payload["data"]
        for delivery in WebhookDelivery.objects.filter(
            endpoint=endpoint, event_type="project.funding_reversed"
        ).order_by("pk")
    ]


def test_a_full_refund_takes_the_money_back_out_of_escrow_and_revenue(
    paid: Funding, project: Project, stripe_local: LocalStripe, endpoint: WebhookEndpoint
) -> None:
    stripe_local.server.stripe.refund_create({"charge": paid.charge_id})
    responses = stripe_local.deliver()  # refund.created and charge.refunded
    assert all(response.status_code == 200 for response in responses)
    assert (escrow(project), revenue(), clearing()) == (0, 0, 0)
    paid.refresh_from_db()
    assert (paid.amount_refunded, paid.shortfall) == (GROSS, 0)
    assert LedgerTransaction.objects.filter(kind="funding_reversal").count() == 1
    project.refresh_from_db()
    assert project.status == "open"  # escrow covered it: nothing committed was touched
    [told] = reversals_told(endpoint)
    assert (told["project"], told["amount"], told["shortfall"]) == (project.pk, GROSS, 0)
    assert ledger_verify().is_clean


def test_partial_refunds_are_booked_once_each_by_refund_id(
    paid: Funding, project: Project, stripe_local: LocalStripe
) -> None:
    stripe_local.server.stripe.refund_create({"charge": paid.charge_id, "amount": "30000"})
    queued = list(stripe_local.queue)
    stripe_local.deliver()
    stripe_local.queue.extend(queued)  # every event delivered twice
    stripe_local.deliver()
    assert escrow(project) == 80_000 - 24_000 and revenue() == 20_000 - 6_000
    stripe_local.server.stripe.refund_create({"charge": paid.charge_id, "amount": "10000"})
    stripe_local.deliver()
    assert escrow(project) == 80_000 - 32_000 and revenue() == 20_000 - 8_000
    assert LedgerTransaction.objects.filter(kind="funding_reversal").count() == 2
    paid.refresh_from_db()
    assert paid.amount_refunded == 40_000
    assert ledger_verify().is_clean


def test_a_refund_beyond_escrow_records_a_shortfall_pauses_the_project_and_tells_the_lab(
    paid: Funding,
    project: Project,
    stripe_local: LocalStripe,
    endpoint: WebhookEndpoint,
    lab_owner: User,
    lab_manager: User,
    lab_viewer: User,
    expert: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # 70,000 of the 80,000 in escrow is already an expert's (released work).
    book_earning(project, expert, 70_000, "earning:committed")
    stripe_local.server.stripe.refund_create({"charge": paid.charge_id})
    with django_capture_on_commit_callbacks(execute=True):
        stripe_local.deliver()
    assert escrow(project) == 0
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=expert) == 70_000
    assert shortfall_account() == -70_000  # the lab owes it; the platform advanced it
    assert (revenue(), clearing()) == (0, 0)
    paid.refresh_from_db()
    assert (paid.amount_refunded, paid.shortfall) == (GROSS, 70_000)
    project.refresh_from_db()
    assert project.status == "paused"
    assert project.status_changes.get(to_status="paused").reason.startswith("Refund")
    [told] = reversals_told(endpoint)
    assert (told["shortfall"], told["paused"]) == (70_000, True)
    [email] = [m for m in mail.outbox if "refunded" in m.subject.lower()]
    assert sorted(email.to) == sorted([lab_owner.email, lab_manager.email])
    assert lab_viewer.email not in email.to and "70,000" not in email.body  # minor units shown
    assert "700.00 USD" in email.body
    assert ledger_verify().is_clean


def test_a_dispute_takes_the_money_out_and_a_won_dispute_puts_it_back(
    paid: Funding, project: Project, stripe_local: LocalStripe, endpoint: WebhookEndpoint
) -> None:
    dispute = stripe_local.server.stripe.dispute_create(paid.charge_id)
    stripe_local.deliver()  # created and funds_withdrawn: booked once
    assert escrow(project) == 0 and revenue() == 0
    paid.refresh_from_db()
    assert paid.amount_disputed == GROSS
    assert LedgerTransaction.objects.filter(kind="funding_reversal").count() == 1
    assert len(reversals_told(endpoint)) == 1
    stripe_local.server.stripe.dispute_close(dispute["id"], "won")
    stripe_local.deliver()  # funds_reinstated and closed: reinstated once
    assert (escrow(project), revenue(), clearing()) == (80_000, 20_000, -GROSS)
    assert LedgerTransaction.objects.filter(kind="funding_reinstated").count() == 1
    paid.refresh_from_db()
    assert (paid.amount_disputed, paid.shortfall) == (0, 0)
    assert ledger_verify().is_clean


def test_a_won_dispute_after_a_shortfall_clears_the_shortfall(
    paid: Funding, project: Project, stripe_local: LocalStripe, expert: User
) -> None:
    book_earning(project, expert, 50_000, "earning:committed")
    dispute = stripe_local.server.stripe.dispute_create(paid.charge_id)
    stripe_local.deliver()
    paid.refresh_from_db()
    assert paid.shortfall == 50_000 and shortfall_account() == -50_000
    stripe_local.server.stripe.dispute_close(dispute["id"], "won")
    stripe_local.deliver()
    paid.refresh_from_db()
    assert paid.shortfall == 0 and shortfall_account() == 0
    assert escrow(project) == 30_000
    assert ledger_verify().is_clean


def test_a_lost_dispute_books_nothing_more(
    paid: Funding, project: Project, stripe_local: LocalStripe
) -> None:
    dispute = stripe_local.server.stripe.dispute_create(paid.charge_id, 40_000)
    stripe_local.deliver()
    assert escrow(project) == 80_000 - 32_000
    stripe_local.server.stripe.dispute_close(dispute["id"], "lost")
    stripe_local.deliver()
    assert escrow(project) == 80_000 - 32_000
    assert LedgerTransaction.objects.filter(kind__startswith="funding_re").count() == 1
    assert StripeEvent.objects.get(type="charge.dispute.closed").status == "ignored"


def test_a_refund_event_that_lies_books_what_stripe_holds(
    paid: Funding, project: Project, stripe_local: LocalStripe
) -> None:
    """A signed `charge.refunded` claiming a full refund, for a charge Stripe never refunded."""
    body = json.dumps(
        {
            "id": "evt_forged_refund",
            "object": "event",
            "type": "charge.refunded",
            "livemode": False,
            "data": {
                "object": {
                    "id": paid.charge_id,
                    "object": "charge",
                    "amount": GROSS,
                    "amount_refunded": GROSS,
                    "refunded": True,
                    "currency": "usd",
                    "payment_intent": paid.payment_intent_id,
                }
            },
        }
    ).encode()
    from django.test import Client

    response = Client().post(
        "/api/v1/webhooks/stripe/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(body, WEBHOOK_SECRET),
    )
    assert response.status_code == 200
    assert escrow(project) == 80_000
    assert StripeEvent.objects.get(event_id="evt_forged_refund").status == "ignored"


def test_the_funding_is_found_through_stripe_when_its_payment_intent_was_not_stored(
    paid: Funding, project: Project, stripe_local: LocalStripe
) -> None:
    Funding.objects.filter(pk=paid.pk).update(payment_intent_id=None, charge_id="")
    stripe_local.server.stripe.refund_create({"charge": paid.charge_id, "amount": "10000"})
    stripe_local.deliver()
    assert escrow(project) == 80_000 - 8_000


def test_a_refund_of_a_charge_that_is_no_funding_is_ignored(
    stripe_local: LocalStripe, project: Project
) -> None:
    session = stripe_local.server.stripe.checkout_create(
        {"line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 500}}]}
    )
    stripe_local.server.stripe.checkout_pay(session["id"])
    intent = stripe_local.state.objects[stripe_local.state.objects[session["id"]]["payment_intent"]]
    stripe_local.server.stripe.refund_create({"charge": intent["latest_charge"]})
    assert all(response.status_code == 200 for response in stripe_local.deliver())
    assert not LedgerTransaction.objects.exists()
    assert StripeEvent.objects.get(type="charge.refunded").status == "ignored"


def test_the_local_servers_control_routes_refund_dispute_and_close(
    paid: Funding, project: Project, stripe_local: LocalStripe
) -> None:
    """The same actions over HTTP, as a demo or another process would drive them."""
    import urllib.request

    def control(path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310  (the local test server)
            f"{stripe_local.server.url}/_test/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(request, timeout=5).read())  # noqa: S310

    refund = control(f"charges/{paid.charge_id}/refund", {"amount": 10_000})
    assert refund["object"] == "refund" and refund["amount"] == 10_000
    dispute = control(f"charges/{paid.charge_id}/dispute", {"amount": 20_000})
    assert dispute["status"] == "needs_response"
    stripe_local.deliver()
    assert escrow(project) == 80_000 - 8_000 - 16_000
    assert control(f"disputes/{dispute['id']}/close", {"status": "won"})["status"] == "won"
    stripe_local.deliver()
    assert escrow(project) == 80_000 - 8_000
    assert ledger_verify().is_clean
