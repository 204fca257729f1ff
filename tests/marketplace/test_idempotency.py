"""`Idempotency-Key` on the POSTs that create money or objects (issue 17): a repeat with the same
key and body answers the stored response without doing anything again; the same key with
another body is 422 and writes nothing; scoped per caller and endpoint; keys expire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.models import IdempotencyRecord, Lab, User
from payouts.models import Funding, PayoutRun
from projects.models import GoldAnswer, Item, Project
from tests.contributors.factories import enable_mfa
from tests.payouts import conftest as money_fixtures
from tests.payouts.conftest import PERIOD, LocalStripe
from tests.projects.factories import make_project, ndjson, pairwise_line, project_body

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
NDJSON = "application/x-ndjson"
# The local Stripe-compatible server, for the fund endpoint.
stripe_server = money_fixtures.stripe_server
stripe_local = money_fixtures.stripe_local


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return make_project(lab, lab_owner)


def _checkouts(stripe_local: LocalStripe) -> int:
    return sum(
        1 for obj in stripe_local.state.objects.values() if obj["object"] == "checkout.session"
    )


def test_fund_with_a_key_opens_one_checkout_however_often_it_is_sent(
    client_for: Client, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    client = client_for(lab_owner)
    url = f"/api/v1/projects/{project.id}/fund/"
    first = client.post(url, {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="fund-1")
    assert first.status_code == 201, first.content
    again = client.post(url, {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="fund-1")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert Funding.objects.count() == 1 and _checkouts(stripe_local) == 1
    # The issue: the same key with other bodies made three fundings.
    for amount in (2_000, 3_000):
        reused = client.post(url, {"amount": amount}, format="json", HTTP_IDEMPOTENCY_KEY="fund-1")
        assert reused.status_code == 422
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert Funding.objects.count() == 1 and _checkouts(stripe_local) == 1
    # Without a key, every request is its own.
    client.post(url, {"amount": 1_000}, format="json")
    assert Funding.objects.count() == 2


def test_keys_are_per_caller_and_per_endpoint(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    lab_manager: User,
    project: Project,
    stripe_local: LocalStripe,
) -> None:
    other_project = make_project(lab, lab_owner)
    owner, manager = client_for(lab_owner), client_for(lab_manager)
    for client, target in ((owner, project), (manager, project), (owner, other_project)):
        response = client.post(
            f"/api/v1/projects/{target.id}/fund/",
            {"amount": 1_000},
            format="json",
            HTTP_IDEMPOTENCY_KEY="same-key",
        )
        assert response.status_code == 201
    assert Funding.objects.count() == 3


def test_project_create_with_a_key(client_for: Client, lab: Lab, lab_owner: User) -> None:
    client = client_for(lab_owner)
    body = project_body(lab)
    first = client.post("/api/v1/projects/", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    again = client.post("/api/v1/projects/", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    reused = client.post(
        "/api/v1/projects/",
        project_body(lab, title="Another"),
        format="json",
        HTTP_IDEMPOTENCY_KEY="p-1",
    )
    assert reused.status_code == 422
    assert Project.objects.count() == 1


def test_a_refused_request_stores_nothing_and_its_key_can_be_used_again(
    client_for: Client, lab: Lab, lab_owner: User
) -> None:
    client = client_for(lab_owner)
    bad = client.post(
        "/api/v1/projects/",
        project_body(lab, redundancy=0),
        format="json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert bad.status_code == 400 and not IdempotencyRecord.objects.exists()
    fixed = client.post(
        "/api/v1/projects/", project_body(lab), format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert fixed.status_code == 201
    assert Project.objects.count() == 1


def test_payout_run_create_with_a_key(
    client_for: Client, staff: User, stripe_local: LocalStripe
) -> None:
    enable_mfa(staff)
    client = client_for(staff)
    url = "/api/v1/admin/payout-runs/"
    first = client.post(url, PERIOD, format="json", HTTP_IDEMPOTENCY_KEY="run-1")
    again = client.post(url, PERIOD, format="json", HTTP_IDEMPOTENCY_KEY="run-1")
    assert first.status_code == again.status_code == 201, again.content
    assert again.json()["id"] == first.json()["id"]
    other = {**PERIOD, "period_start": "2001-01-01"}
    assert client.post(url, other, format="json", HTTP_IDEMPOTENCY_KEY="run-1").status_code == 422
    assert PayoutRun.objects.count() == 1


@pytest.mark.parametrize("gold", [False, True], ids=["items", "gold"])
def test_imports_with_a_key(
    client_for: Client, lab_owner: User, project: Project, gold: bool
) -> None:
    client = client_for(lab_owner)
    kind = "gold" if gold else "items"
    url = f"/api/v1/projects/{project.id}/{kind}/import/"
    extra = {"gold": {"preference": "a"}} if gold else {}
    body = ndjson([pairwise_line(i, **extra) for i in range(3)])
    other = ndjson([pairwise_line(i + 10, **extra) for i in range(2)])

    def send(payload: bytes) -> Any:
        return client.generic(
            "POST", url, payload, content_type=NDJSON, HTTP_IDEMPOTENCY_KEY="import-1"
        )

    first = send(body)
    assert first.status_code == 201 and first.json() == {"created": 3}
    again = send(body)
    assert again.status_code == 201 and again.json() == {"created": 3}
    assert again["Idempotent-Replayed"] == "true"
    reused = send(other)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert Item.objects.filter(project=project).count() == 3
    assert GoldAnswer.objects.count() == (3 if gold else 0)


def test_an_api_key_has_its_own_keys(
    client_for: Client,
    key_client_for: Callable[[str], APIClient],
    lab_owner: User,
    lab_api_key: str,
    project: Project,
) -> None:
    url = f"/api/v1/projects/{project.id}/items/import/"
    for client, lines in ((key_client_for(lab_api_key), 2), (client_for(lab_owner), 3)):
        response = client.generic(
            "POST",
            url,
            ndjson([pairwise_line(i, external_id=f"{lines}-{i}") for i in range(lines)]),
            content_type=NDJSON,
            HTTP_IDEMPOTENCY_KEY="nightly",
        )
        assert response.status_code == 201
    assert Item.objects.filter(project=project).count() == 5


def test_a_key_still_in_flight_is_a_409_and_an_expired_key_is_new(
    client_for: Client, lab_owner: User, project: Project, stripe_local: LocalStripe, settings: Any
) -> None:
    client = client_for(lab_owner)
    url = f"/api/v1/projects/{project.id}/fund/"
    record = IdempotencyRecord.objects.create(
        caller=f"user:{lab_owner.pk}",
        endpoint=f"POST {url}",
        key="busy",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    busy = client.post(url, {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "idempotency_key_in_flight"
    assert not Funding.objects.exists()
    # Stored answers expire after IDEMPOTENCY_KEY_TTL_SECONDS: the key is then a new request.
    first = client.post(url, {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now())
    later = client.post(url, {"amount": 1_000}, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert later.json()["funding_id"] != first.json()["funding_id"]
    assert Funding.objects.count() == 2
    record.delete()
    stored = IdempotencyRecord.objects.get(key="old")
    assert stored.expires_at - stored.created_at == timedelta(
        seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS
    )


@pytest.mark.parametrize("bad", ["", "x" * 256, "caf\u00e9", "tab\tkey"])
def test_a_malformed_key_is_a_400(
    client_for: Client, lab_owner: User, project: Project, stripe_local: LocalStripe, bad: str
) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.id}/fund/",
        {"amount": 1_000},
        format="json",
        HTTP_IDEMPOTENCY_KEY=bad,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Funding.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/",
        "/api/v1/projects/{project_id}/fund/",
        "/api/v1/projects/{project_id}/items/import/",
        "/api/v1/projects/{project_id}/gold/import/",
        "/api/v1/admin/payout-runs/",
    ],
)
def test_the_schema_documents_the_header(path: str) -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"][path]["post"]
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert "Idempotency-Key" in headers
    assert {"409", "422"} <= set(operation["responses"])
