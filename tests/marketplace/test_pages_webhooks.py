"""The lab's webhooks page: add an endpoint (secret shown once), the test button, the delivery
log, disable; owners and managers only; hostile forms write nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from marketplace.models import Lab, User, WebhookDelivery, WebhookEndpoint
from tests.conftest import browser
from tests.marketplace.test_webhooks import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_UNSAFE_ALLOWED_HOSTS = ["127.0.0.1"]
    server = Receiver()
    yield server
    server.server.shutdown()


def test_a_manager_adds_an_endpoint_tests_it_and_reads_the_log(
    lab: Lab, lab_manager: User, receiver: Receiver
) -> None:
    page = browser(lab_manager)
    added = page.post(
        f"/labs/{lab.pk}/webhooks/", {"url": receiver.url, "event_types": ["export.ready"]}
    )
    endpoint = WebhookEndpoint.objects.get()
    assert added.status_code == 200 and endpoint.secret in added.content.decode()
    assert endpoint.event_types == ["export.ready"]
    # The secret is shown once: not on the next visit.
    assert endpoint.secret not in page.get(f"/labs/{lab.pk}/webhooks/").content.decode()
    tested = page.post(f"/labs/{lab.pk}/webhooks/{endpoint.pk}/test/", follow=True)
    html = tested.content.decode()
    assert "Test message delivered (HTTP 200)" in html and "webhook.test" in html
    assert len(receiver.requests) == 1
    receiver.statuses = [500]
    html = page.post(f"/labs/{lab.pk}/webhooks/{endpoint.pk}/test/", follow=True).content.decode()
    assert "not delivered: HTTP 500. It is retried later." in html
    page.post(f"/labs/{lab.pk}/webhooks/{endpoint.pk}/disable/")
    endpoint.refresh_from_db()
    assert not endpoint.is_active


def test_hostile_or_unauthorised_webhook_forms_write_nothing(
    lab: Lab, lab_owner: User, lab_viewer: User, other_lab_owner: User, settings: Any
) -> None:
    settings.WEBHOOK_ALLOW_HTTP = False
    page = browser(lab_owner)
    url = f"/labs/{lab.pk}/webhooks/"
    for body in (
        {"url": "http://169.254.169.254/latest/"},
        {"url": "https://127.0.0.1/x"},
        {"url": "not a url"},
        {"url": "https://example.org/x", "event_types": ["nope"]},
        {"url": "https://example.org/x", "event_types": ["webhook.test"]},
        {"url": "https://exa\x00mple.org/"},
    ):
        response = page.post(url, body)
        assert response.status_code in (302, 400), (body, response.status_code)
    assert not WebhookEndpoint.objects.exists()
    assert browser(lab_viewer).get(url).status_code == 404
    assert browser(other_lab_owner).get(url).status_code == 404
    endpoint = WebhookEndpoint.objects.create(
        lab=lab, url="https://example.org/x", secret="whsec_" + "A" * 44
    )
    for path in ("", "test/", "disable/"):
        stranger = browser(other_lab_owner)
        answer = stranger.post(f"/labs/{lab.pk}/webhooks/{endpoint.pk}/{path}")
        assert answer.status_code == 404
    assert not WebhookDelivery.objects.exists()
    endpoint.refresh_from_db()
    assert endpoint.is_active
