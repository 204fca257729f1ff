"""Outbound webhooks: Standard Webhooks signatures verified by the reference library, retries
on 500, SSRF refusals (loopback, cloud metadata, private ranges, redirects to them), the
events, the test button, the delivery log and scoping."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook

from marketplace import webhooks
from marketplace.models import Lab, User, WebhookDelivery, WebhookEndpoint
from marketplace.safe_http import UnsafeTarget, check_target

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


class Receiver:
    """A local HTTP receiver answering with a scripted list of statuses (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.redirect_to: str | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.redirect_to:
                    self.send_response(307)
                    self.send_header("Location", receiver.redirect_to)
                else:
                    self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_UNSAFE_ALLOWED_HOSTS = ["127.0.0.1"]
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
def endpoint(lab: Lab, lab_owner: User, receiver: Receiver) -> WebhookEndpoint:
    return webhooks.webhook_endpoint_create(
        lab=lab, url=receiver.url, event_types=[], created_by=lab_owner
    )


def test_messages_are_signed_the_standard_webhooks_way(
    endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    delivery = webhooks.webhook_test(endpoint=endpoint)
    assert delivery.status == "succeeded" and delivery.last_status_code == 200
    headers, body = receiver.requests[0]
    verified = Webhook(endpoint.secret).verify(body, headers)
    assert verified["type"] == "webhook.test" and verified["data"]["endpoint"] == endpoint.pk
    assert headers["webhook-id"] == delivery.message_id
    with pytest.raises(Exception):  # noqa: B017 (the library raises its own verification error)
        Webhook(webhooks.new_secret()).verify(body, headers)


def test_a_500_is_retried_with_backoff_until_it_succeeds(
    endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    delivery = webhooks.webhook_test(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=3)
    assert webhooks.webhook_deliver_due() == 0  # not due yet
    for expected_attempts in (2, 3):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        webhooks.webhook_deliver_due()
        delivery.refresh_from_db()
        assert delivery.attempts == expected_attempts
    assert delivery.status == "succeeded" and delivery.delivered_at is not None
    ids = {headers["webhook-id"] for headers, _ in receiver.requests}
    assert len(receiver.requests) == 3 and ids == {delivery.message_id}  # one id per message


def test_delivery_gives_up_after_the_schedule(
    endpoint: WebhookEndpoint, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOK_RETRY_SCHEDULE = [1, 1]
    receiver.statuses = [500, 500, 500, 500]
    delivery = webhooks.webhook_test(endpoint=endpoint)
    for _ in range(2):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        webhooks.webhook_deliver_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 3)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://localhost/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/",
        "http://192.168.1.10/",
        "http://172.16.0.1/",
        "http://[::1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "ftp://example.org/",
        "http://user:pw@example.org/",
    ],
)
def test_internal_targets_are_refused(url: str, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_UNSAFE_ALLOWED_HOSTS = []
    with pytest.raises(UnsafeTarget):
        check_target(url)


def test_https_is_required_in_production(
    settings: Any, client_for: Client, lab_owner: User, lab: Lab
) -> None:
    settings.WEBHOOK_ALLOW_HTTP = False
    response = client_for(lab_owner).post(
        f"/api/v1/labs/{lab.pk}/webhooks/", {"url": "http://example.org/hooks"}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsafe_url"
    metadata = client_for(lab_owner).post(
        f"/api/v1/labs/{lab.pk}/webhooks/",
        {"url": "https://169.254.169.254/latest"},
        format="json",
    )
    assert metadata.status_code == 400
    assert not WebhookEndpoint.objects.exists()


def test_a_redirect_to_an_internal_address_is_refused(
    endpoint: WebhookEndpoint, receiver: Receiver
) -> None:
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    delivery = webhooks.webhook_test(endpoint=endpoint)
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("refused") and "not public" in delivery.last_error
    assert len(receiver.requests) == 1  # the redirect was never followed


def test_events_reach_subscribed_endpoints_only(
    lab: Lab, lab_owner: User, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    only_scoring = webhooks.webhook_endpoint_create(
        lab=lab, url=receiver.url, event_types=["scoring_run.completed"], created_by=lab_owner
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert webhooks.webhook_emit(lab_id=lab.pk, event_type="item.completed", data={}) == 0
        sent = webhooks.webhook_emit(
            lab_id=lab.pk, event_type="scoring_run.completed", data={"scoring_run": 7}
        )
    assert sent == 1
    delivery = WebhookDelivery.objects.get(endpoint=only_scoring)
    assert delivery.status == "succeeded"
    assert json.loads(receiver.requests[0][1])["data"] == {"scoring_run": 7}


def test_item_completed_and_budget_low_are_emitted(
    lab: Lab,
    lab_owner: User,
    expert: User,
    endpoint: WebhookEndpoint,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from projects import routing
    from tests.contributors.factories import qualify_for_cardiology
    from tests.payouts.factories import fund_project
    from tests.projects.factories import open_project

    settings.BUDGET_LOW_TASKS = 10**6  # any escrow is "low" here
    project = open_project(lab, lab_owner, items=1, redundancy=1)
    qualify_for_cardiology(expert)
    with django_capture_on_commit_callbacks(execute=True):
        claim = routing.assignment_claim(expert=expert, project=project)
        assert claim is not None
        routing.assignment_submit(
            assignment=claim.assignment,
            answer={"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}},
            rationale="",
            seconds_spent=30,
        )
    types = sorted(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert types == ["item.completed", "project.budget_low"]
    item_event = WebhookDelivery.objects.get(event_type="item.completed").payload["data"]
    assert item_event["item"] == str(claim.assignment.item.public_id)
    project.refresh_from_db()
    assert project.budget_low_notified_at is not None
    fund_project(project, 10_000)  # money arrives: re-armed
    project.refresh_from_db()
    assert project.budget_low_notified_at is None


def test_webhook_api_scoping_and_log(
    lab: Lab,
    lab_owner: User,
    lab_viewer: User,
    other_lab_owner: User,
    client_for: Client,
    receiver: Receiver,
) -> None:
    owner = client_for(lab_owner)
    created = owner.post(f"/api/v1/labs/{lab.pk}/webhooks/", {"url": receiver.url}, format="json")
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    endpoint_id = created.json()["id"]
    listed = owner.get(f"/api/v1/labs/{lab.pk}/webhooks/").json()
    assert "secret" not in listed[0]
    tested = owner.post(f"/api/v1/labs/{lab.pk}/webhooks/{endpoint_id}/test/")
    assert tested.json()["status"] == "succeeded"
    log = owner.get(f"/api/v1/labs/{lab.pk}/webhooks/{endpoint_id}/deliveries/").json()
    assert [row["event_type"] for row in log] == ["webhook.test"]
    assert client_for(other_lab_owner).get(f"/api/v1/labs/{lab.pk}/webhooks/").status_code == 404
    assert client_for(lab_viewer).get(f"/api/v1/labs/{lab.pk}/webhooks/").status_code == 403
    assert owner.delete(f"/api/v1/labs/{lab.pk}/webhooks/{endpoint_id}/").status_code == 204
    assert WebhookEndpoint.objects.get(pk=endpoint_id).is_active is False


def test_a_broken_reply_is_a_failed_attempt_not_a_crash(
    endpoint: WebhookEndpoint, monkeypatch: Any
) -> None:
    import http.client

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise http.client.BadStatusLine("garbage")

    monkeypatch.setattr(webhooks, "safe_post", broken)
    delivery = webhooks.webhook_test(endpoint=endpoint)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error.startswith("BadStatusLine")


def test_zoned_ipv6_answers_are_judged_without_their_zone() -> None:
    from marketplace.safe_http import _is_public

    assert _is_public("fe80::1%eth0") is False
    assert _is_public("2606:4700:4700::1111") is True
