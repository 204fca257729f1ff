"""Funding through Checkout, and the Stripe webhook: verified, stored, applied once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from payouts.models import AccountKind, Funding, LedgerTransaction, PayoutAccount, StripeEvent
from payouts.services.ledger import balance_of
from payouts.stripe_local.server import sign_payload
from projects.models import Project
from tests.payouts.conftest import WEBHOOK_SECRET, LocalStripe
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db
Client_ = Callable[[User], APIClient]


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return make_project(lab, lab_owner)


def escrow(project: Project) -> int:
    return balance_of(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project)


def test_funding_credits_escrow_only_after_the_verified_webhook(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.id}/fund/", {"amount": 100_000}, format="json"
    )
    assert response.status_code == 201, response.content
    url = response.json()["checkout_url"]
    assert url.startswith(stripe_local.server.url + "/pay/cs_test_")
    assert escrow(project) == 0

    # A person opens the local checkout page and presses Pay.
    import urllib.request

    page = urllib.request.urlopen(url).read().decode()  # noqa: S310  (the local test server)
    assert "Pay 1000.00 USD" in page
    session_id = url.rsplit("/", 1)[1]
    stripe_local.server.stripe.checkout_pay(session_id)
    assert escrow(project) == 0  # nothing until the webhook arrives

    [delivered] = stripe_local.deliver()
    assert delivered.status_code == 200, delivered.content
    assert escrow(project) == 80_000
    assert balance_of(kind=AccountKind.PLATFORM_REVENUE, currency="usd") == 20_000
    assert balance_of(kind=AccountKind.STRIPE_CLEARING, currency="usd") == -100_000
    funding = Funding.objects.get()
    assert (funding.status, funding.checkout_session_id) == ("paid", session_id)


def test_the_same_checkout_event_is_applied_once(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    url = (
        client_for(lab_owner)
        .post(f"/api/v1/projects/{project.id}/fund/", {"amount": 5_000}, format="json")
        .json()["checkout_url"]
    )
    stripe_local.server.stripe.checkout_pay(url.rsplit("/", 1)[1])
    _, payload, headers = stripe_local.queue[0]
    stripe_local.queue.append(("again", payload, headers))
    responses = stripe_local.deliver()
    assert [r.status_code for r in responses] == [200, 200]
    assert escrow(project) == 4_000
    assert LedgerTransaction.objects.filter(kind="funding").count() == 1
    assert StripeEvent.objects.count() == 1


@pytest.mark.parametrize("bad", [-1, 0, 1.5, "100", None, 2**63, 2**64, 10**13, True])
def test_bad_funding_amounts_are_refused_and_nothing_stored(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe, bad: Any
) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.id}/fund/", {"amount": bad}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "amount"
    assert not Funding.objects.exists()
    assert stripe_local.state.calls == 0


def test_nan_amount_is_refused(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.id}/fund/",
        data=b'{"amount": NaN}',
        content_type="application/json",
    )
    assert response.status_code == 400
    assert not Funding.objects.exists()


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("lab_manager", 201),
        ("lab_viewer", 403),
        ("other_lab_owner", 404),
        ("expert", 404),
        ("anonymous", 401),
    ],
)
def test_fund_personas(
    request: Any,
    client_for: Client_,
    project: Project,
    stripe_local: LocalStripe,
    persona: str,
    expected: int,
) -> None:
    client = APIClient() if persona == "anonymous" else client_for(request.getfixturevalue(persona))
    response = client.post(f"/api/v1/projects/{project.id}/fund/", {"amount": 1000}, format="json")
    assert response.status_code == expected
    assert Funding.objects.exists() is (expected == 201)


def test_an_api_key_cannot_fund(
    key_client_for: Any, project: Project, lab_api_key: str, stripe_local: LocalStripe
) -> None:
    response = key_client_for(lab_api_key).post(
        f"/api/v1/projects/{project.id}/fund/", {"amount": 1000}, format="json"
    )
    assert response.status_code == 403


def test_stripe_down_is_a_clear_503_and_charges_nothing(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    stripe_local.state.faults.fail_next = 1
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.id}/fund/", {"amount": 1000}, format="json"
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "payment_provider_unavailable"
    # The provider is down, not the request wrong: the client is told when to come back.
    assert int(response["Retry-After"]) >= 1


def _event(
    event_id: str = "evt_test_1", event_type: str = "account.updated", **extra: Any
) -> bytes:
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "livemode": False,
        "data": {"object": {"id": "acct_unknown", "object": "account", "capabilities": {}}},
    }
    body.update(extra)
    return json.dumps(body).encode()


def post_event(payload: bytes, signature: str | None) -> Any:
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return Client().post(
        "/api/v1/webhooks/stripe/", data=payload, content_type="application/json", **headers
    )


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "garbage",
        "t=123,v1=deadbeef",
        sign_payload(b"other payload", WEBHOOK_SECRET),
        sign_payload(_event(), "whsec_wrong_secret"),
        sign_payload(_event(), WEBHOOK_SECRET, timestamp=int(time.time()) - 3600),
        sign_payload(_event(), WEBHOOK_SECRET, timestamp=int(time.time()) + 3600),
    ],
    ids=["missing", "garbled", "bad-hmac", "tampered", "wrong-secret", "old", "future"],
)
def test_bad_signatures_are_refused_and_nothing_applied(
    stripe_local: LocalStripe, signature: str | None
) -> None:
    response = post_event(_event(), signature)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()


def test_unknown_types_unknown_accounts_and_livemode_are_stored_and_ignored(
    stripe_local: LocalStripe,
) -> None:
    for event_id, payload in [
        ("evt_a", _event("evt_a", "customer.created")),
        ("evt_b", _event("evt_b")),
        ("evt_c", _event("evt_c", livemode=True)),
    ]:
        assert post_event(payload, sign_payload(payload, WEBHOOK_SECRET)).status_code == 200
        assert StripeEvent.objects.get(event_id=event_id).status == "ignored"


def test_onboarding_creates_one_account_and_account_updated_activates_transfers(
    client_for: Client_, expert: User, stripe_local: LocalStripe
) -> None:
    client = client_for(expert)
    first = client.post("/api/v1/me/payout-account/")
    second = client.post("/api/v1/me/payout-account/")
    assert first.status_code == second.status_code == 200
    assert first.json()["onboarding_url"] != second.json()["onboarding_url"]
    account = PayoutAccount.objects.get(user=expert)
    assert account.transfers_active is False
    stripe_local.server.stripe.onboarding_complete(account.stripe_account_id)
    stripe_local.deliver()
    account.refresh_from_db()
    assert (account.transfers_active, account.details_submitted) == (True, True)
    assert [
        o for o in stripe_local.state.objects.values() if o["object"] == "account"
    ].__len__() == 1


def test_payout_account_personas(
    key_client_for: Any, lab_api_key: str, stripe_local: LocalStripe
) -> None:
    assert APIClient().post("/api/v1/me/payout-account/").status_code == 401
    assert key_client_for(lab_api_key).post("/api/v1/me/payout-account/").status_code == 403
    assert not PayoutAccount.objects.exists()


def test_unknown_account_then_known_account_events(expert: User, stripe_local: LocalStripe) -> None:
    early = _event(
        "evt_1", data={"object": {"id": "acct_later", "object": "account", "capabilities": {}}}
    )
    assert post_event(early, sign_payload(early, WEBHOOK_SECRET)).status_code == 200
    assert StripeEvent.objects.get(event_id="evt_1").status == "ignored"
    PayoutAccount.objects.create(user=expert, stripe_account_id="acct_later")
    active = _event(
        "evt_2",
        data={
            "object": {
                "id": "acct_later",
                "object": "account",
                "capabilities": {"transfers": "active"},
                "payouts_enabled": True,
                "details_submitted": True,
            }
        },
    )
    assert post_event(active, sign_payload(active, WEBHOOK_SECRET)).status_code == 200
    assert PayoutAccount.objects.get(user=expert).transfers_active is True


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_replay_is_applied_once(
    lab: Lab, lab_owner: User, stripe_local: LocalStripe
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent deliveries need PostgreSQL row locks")
    project = make_project(lab, lab_owner)
    # A session Stripe holds as paid: every delivery reads it back before booking.
    session = stripe_local.server.stripe.checkout_create(
        {"line_items": [{"quantity": 1, "price_data": {"currency": "usd", "unit_amount": 9_000}}]}
    )
    Funding.objects.create(
        project=project, amount=9_000, currency="usd", checkout_session_id=session["id"]
    )
    stripe_local.server.stripe.checkout_pay(session["id"])
    [(_, payload, _)] = stripe_local.queue
    signature = sign_payload(payload, WEBHOOK_SECRET)
    statuses: list[int] = []

    def deliver() -> None:
        try:
            statuses.append(post_event(payload, signature).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 5
    assert LedgerTransaction.objects.filter(kind="funding").count() == 1
    assert escrow(project) == 7_200


def test_the_stripe_local_command_serves_and_signs_for_this_site(tmp_path: Any) -> None:
    import os
    import socket
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    env["DJANGO_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "stripe_local", "--port", str(port), "--webhook-url", ""],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Django's start-up on a loaded two-core machine can take many seconds: wait for the
        # port up to a minute, and fail at once with the server's own error if it exits.
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/balance",
                    headers={"Authorization": "Bearer sk_test_local"},
                )
                body = json.loads(urllib.request.urlopen(request, timeout=1).read())  # noqa: S310
                break
            except OSError:
                if process.poll() is not None:
                    raise AssertionError(process.stderr.read().decode()) from None
                if time.monotonic() > deadline:
                    raise AssertionError("the local Stripe server did not start") from None
                time.sleep(0.2)
        assert body["object"] == "balance"
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- Issue 17: the funding webhook's amount is never trusted as sent ---------------------------


def _open_checkout(client: APIClient, project: Project, amount: int) -> str:
    response = client.post(
        f"/api/v1/projects/{project.id}/fund/", {"amount": amount}, format="json"
    )
    assert response.status_code == 201, response.content
    return str(response.json()["checkout_url"]).rsplit("/", 1)[1]


def _forged_completion(session_id: str, amount_total: int, event_id: str = "evt_forged") -> bytes:
    """A correctly signed event whose body lies about the session."""
    return _event(
        event_id,
        "checkout.session.completed",
        data={
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "payment_status": "paid",
                "status": "complete",
                "amount_total": amount_total,
                "currency": "usd",
            }
        },
    )


def test_a_signed_event_claiming_payment_for_an_unpaid_session_credits_nothing(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    session_id = _open_checkout(client_for(lab_owner), project, 5_000)
    forged = _forged_completion(session_id, 5_000_000)
    response = post_event(forged, sign_payload(forged, WEBHOOK_SECRET))
    assert response.status_code == 200
    assert escrow(project) == 0
    assert not LedgerTransaction.objects.filter(kind="funding").exists()
    event = StripeEvent.objects.get(event_id="evt_forged")
    assert event.status == "ignored" and "unpaid" in event.note
    assert Funding.objects.get().status == "open"


def test_a_signed_event_lying_about_the_amount_credits_what_stripe_holds(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    session_id = _open_checkout(client_for(lab_owner), project, 5_000)
    stripe_local.server.stripe.checkout_pay(session_id)
    stripe_local.queue.clear()  # the genuine event is lost; only the forged one arrives
    forged = _forged_completion(session_id, 5_000_000)
    assert post_event(forged, sign_payload(forged, WEBHOOK_SECRET)).status_code == 200
    assert escrow(project) == 4_000
    assert balance_of(kind=AccountKind.STRIPE_CLEARING, currency="usd") == -5_000
    funding = Funding.objects.get()
    assert funding.status == "paid" and funding.payment_intent_id.startswith("pi_")


def test_a_session_that_differs_from_the_funding_row_is_refused_with_a_note(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    session_id = _open_checkout(client_for(lab_owner), project, 5_000)
    stripe_local.server.stripe.checkout_pay(session_id)
    # Stripe holds another amount than the row we opened the session for.
    stripe_local.state.objects[session_id]["amount_total"] = 6_000
    [delivered] = stripe_local.deliver()
    assert delivered.status_code == 200
    assert escrow(project) == 0
    event = StripeEvent.objects.get()
    assert event.status == "ignored" and "differs" in event.note
    assert Funding.objects.get().status == "open"


def test_an_unknown_session_at_stripe_credits_nothing(
    lab: Lab, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    Funding.objects.create(
        project=project, amount=9_000, currency="usd", checkout_session_id="cs_not_at_stripe"
    )
    forged = _forged_completion("cs_not_at_stripe", 9_000)
    assert post_event(forged, sign_payload(forged, WEBHOOK_SECRET)).status_code == 200
    assert escrow(project) == 0
    assert StripeEvent.objects.get().status == "ignored"


def test_stripe_down_while_verifying_leaves_the_event_for_a_retry(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    session_id = _open_checkout(client_for(lab_owner), project, 5_000)
    stripe_local.server.stripe.checkout_pay(session_id)
    _, payload, headers = stripe_local.queue[0]
    stripe_local.state.faults.fail_next = 1
    [first] = stripe_local.deliver()
    # Not applied, and not a client error: Stripe retries a non-2xx delivery.
    assert first.status_code == 503
    assert first.json()["error"]["code"] == "payment_provider_unavailable"
    assert StripeEvent.objects.get().status == "received"
    assert escrow(project) == 0
    stripe_local.queue.append(("retry", payload, headers))
    [second] = stripe_local.deliver()
    assert second.status_code == 200
    assert escrow(project) == 4_000


def test_events_left_received_are_applied_by_the_retry_task(
    client_for: Client_, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from payouts.tasks import stripe_events_retry_task

    session_id = _open_checkout(client_for(lab_owner), project, 5_000)
    stripe_local.server.stripe.checkout_pay(session_id)
    stripe_local.state.faults.fail_next = 1
    assert [r.status_code for r in stripe_local.deliver()] == [503]
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    stripe_local.state.faults.fail_next = 1  # still down: nothing applied, nothing lost
    assert stripe_events_retry_task.apply().get() == 0
    assert stripe_events_retry_task.apply().get() == 1
    assert StripeEvent.objects.get().status == "applied"
    assert escrow(project) == 4_000


# --- Issue 17: payouts of a connected account to its bank -------------------------------------


def test_bank_payouts_are_recorded_and_a_failure_is_emailed_and_shown(
    expert: User, stripe_local: LocalStripe, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core import mail

    from payouts.models import BankPayout
    from tests.conftest import browser
    from tests.payouts.factories import onboarded

    account = onboarded(stripe_local, expert)
    server = stripe_local.server.stripe
    payout = server.payout_create(
        {"amount": "12345", "currency": "usd"}, account=account.stripe_account_id
    )
    stripe_local.deliver()
    recorded = BankPayout.objects.get()
    assert (recorded.payout_account_id, recorded.stripe_payout_id) == (account.pk, payout["id"])
    assert (recorded.status, recorded.amount, recorded.currency) == ("paid", 12_345, "usd")
    assert recorded.arrival_date is not None and not mail.outbox

    server.payout_fail(payout["id"], "The bank account was closed.", account.stripe_account_id)
    queued = list(stripe_local.queue)
    with django_capture_on_commit_callbacks(execute=True):
        stripe_local.deliver()
        stripe_local.queue.extend(queued)  # replayed: recorded once, emailed once
        stripe_local.deliver()
    recorded.refresh_from_db()
    assert recorded.status == "failed" and recorded.failure_message.startswith("The bank")
    [email] = mail.outbox
    assert email.to == [expert.email] and "123.45 USD" in email.body
    # A late `payout.paid` for the same payout does not undo the failure.
    late = _event(
        "evt_late_paid",
        "payout.paid",
        account=account.stripe_account_id,
        data={"object": {**payout, "status": "paid"}},
    )
    assert post_event(late, sign_payload(late, WEBHOOK_SECRET)).status_code == 200
    recorded.refresh_from_db()
    assert recorded.status == "failed"

    page = browser(expert).get("/expert/payout-account/").content.decode()
    assert "123.45 USD" in page and "The bank account was closed." in page and "failed" in page


def test_a_payout_of_an_unknown_account_is_ignored(stripe_local: LocalStripe) -> None:
    from payouts.models import BankPayout

    stripe_local.server.stripe.payout_create({"amount": "100"}, account="acct_nobody")
    stripe_local.server.stripe.payout_create({"amount": "100"})  # the platform's own payout
    assert [r.status_code for r in stripe_local.deliver()] == [200, 200]
    assert not BankPayout.objects.exists()
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"ignored"}
