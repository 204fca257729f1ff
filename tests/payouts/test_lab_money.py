"""Money a lab can see: exact escrow, reserved, pending and paid from the ledger, each funding,
the lab's projects together, and the low-balance warning."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from payouts.models import Funding
from projects.models import Project
from projects.routing import assignment_claim
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.payouts.conftest import LocalStripe
from tests.payouts.factories import book_earning, fund_project
from tests.projects.factories import make_items, make_project

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return make_project(lab, lab_owner, budget=None)


def _fund_through_checkout(
    client: APIClient, project: Project, stripe: LocalStripe, amount: int
) -> int:
    response = client.post(
        f"/api/v1/projects/{project.id}/fund/", {"amount": amount}, format="json"
    )
    assert response.status_code == 201, response.content
    session_id = response.json()["checkout_url"].rsplit("/", 1)[1]
    urllib.request.urlopen(response.json()["checkout_url"]).read()  # noqa: S310  (local server)
    stripe.server.stripe.checkout_pay(session_id)
    [delivered] = stripe.deliver()
    assert delivered.status_code == 200, delivered.content
    return int(response.json()["funding_id"])


def test_a_lab_funds_and_reads_exact_escrow_reserved_and_spent(
    client_for: Client, lab_owner: User, project: Project, stripe_local: LocalStripe
) -> None:
    client = client_for(lab_owner)
    funding_id = _fund_through_checkout(client, project, stripe_local, 12_345)
    # An unpaid Checkout is listed too, and moves nothing.
    client.post(f"/api/v1/projects/{project.id}/fund/", {"amount": 500}, format="json")

    # $123.45 less the 20% fee: 98.76 free to spend.
    budget = client.get(f"/api/v1/projects/{project.id}/stats/").json()["budget"]
    assert (budget["escrow"], budget["reserved"], budget["pending"], budget["paid"]) == (
        9876,
        0,
        0,
        0,
    )
    assert (budget["spent"], budget["fees"]) == (0, 2469)

    # One open lease reserves the most its task can cost (150 base at x1.30 = 195).
    make_items(project, 3)
    Project.objects.filter(pk=project.pk).update(status="open")
    expert = UserFactory()
    qualify_for_cardiology(expert)
    claim = assignment_claim(expert=expert, project=Project.objects.get(pk=project.pk))
    assert claim is not None
    budget = client.get(f"/api/v1/projects/{project.id}/stats/").json()["budget"]
    assert (budget["escrow"], budget["reserved"], budget["leases"], budget["spent"]) == (
        9876,
        195,
        195,
        0,
    )

    # Money released to an expert leaves escrow and shows as paid and spent.
    book_earning(project, expert, 1000, key="released-1")
    budget = client.get(f"/api/v1/projects/{project.id}/stats/").json()["budget"]
    assert (budget["escrow"], budget["reserved"], budget["paid"], budget["spent"]) == (
        8876,
        195,
        1000,
        1000,
    )

    fundings = client.get(f"/api/v1/projects/{project.id}/fundings/").json()["results"]
    assert [(row["amount"], row["status"]) for row in fundings] == [(500, "open"), (12_345, "paid")]
    assert fundings[1]["id"] == funding_id
    assert fundings[1]["paid_at"] is not None and fundings[0]["paid_at"] is None
    assert set(fundings[0]) >= {"id", "amount", "status", "created_at", "paid_at"}


def test_the_lab_view_sums_its_projects_per_currency(
    client_for: Client, lab: Lab, lab_owner: User, lab_viewer: User, project: Project
) -> None:
    second = make_project(lab, lab_owner, title="Second")
    euro = make_project(
        lab, lab_owner, title="Euro", pay={"unit": "task", "base_rate": 100, "currency": "eur"}
    )
    fund_project(project, 10_000)
    fund_project(second, 5_000)
    fund_project(euro, 2_000)
    book_earning(second, UserFactory(), 300, key="released-2")

    body = client_for(lab_viewer).get(f"/api/v1/labs/{lab.id}/money/").json()
    rows = {row["title"]: row for row in body["projects"]}
    assert rows["Second"] | {"project": 0} == {
        "project": 0,
        "title": "Second",
        "currency": "usd",
        "funded": 5000,
        "escrow": 3700,
        "reserved": 0,
        "pending": 0,
        "paid": 300,
        "spent": 300,
        "fees": 1000,
    }
    assert body["totals"]["usd"] == {
        "funded": 15_000,
        "escrow": 11_700,
        "reserved": 0,
        "pending": 0,
        "paid": 300,
        "spent": 300,
        "fees": 3000,
    }
    assert body["totals"]["eur"]["escrow"] == 1600


def test_lab_money_takes_a_fixed_number_of_queries(
    client_for: Client, lab: Lab, lab_owner: User, django_assert_max_num_queries: Any
) -> None:
    for index in range(6):
        fund_project(make_project(lab, lab_owner, title=f"P{index}"), 1000 + index)
    client = client_for(lab_owner)
    client.get(f"/api/v1/labs/{lab.id}/money/")
    with django_assert_max_num_queries(14):
        assert client.get(f"/api/v1/labs/{lab.id}/money/").status_code == 200


def test_the_page_warning_follows_the_webhook_threshold(
    client_for: Client, lab_owner: User, project: Project, settings: Any
) -> None:
    settings.BUDGET_LOW_TASKS = 20
    fund_project(project, 2500)  # 2,000 in escrow: 10 tasks at 195
    low = client_for(lab_owner).get(f"/api/v1/projects/{project.id}/stats/").json()["budget"]
    assert low["low_balance"] == {"tasks_covered": 10, "is_low": True, "threshold_tasks": 20}
    fund_project(project, 10_000)
    fine = client_for(lab_owner).get(f"/api/v1/projects/{project.id}/stats/").json()["budget"]
    assert fine["low_balance"]["is_low"] is False


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("lab_owner", 200),
        ("lab_viewer", 200),
        ("lab_api_key", 403),
        ("other_lab_owner", 404),
        ("expert", 404),
        ("anonymous", 401),
    ],
)
def test_fundings_and_lab_money_personas(
    request: Any,
    client_for: Client,
    key_client_for: Any,
    lab: Lab,
    project: Project,
    persona: str,
    expected: int,
) -> None:
    if persona == "anonymous":
        client = APIClient()
    elif persona.endswith("api_key"):
        client = key_client_for(request.getfixturevalue(persona))
    else:
        client = client_for(request.getfixturevalue(persona))
    assert client.get(f"/api/v1/projects/{project.id}/fundings/").status_code == expected
    assert client.get(f"/api/v1/labs/{lab.id}/money/").status_code == expected


@pytest.mark.parametrize("path", ["abc", "0", "-1", "99999999999999999999", "1.5"])
def test_hostile_ids_are_4xx(client_for: Client, lab_owner: User, path: str) -> None:
    client = client_for(lab_owner)
    for url in (f"/api/v1/projects/{path}/fundings/", f"/api/v1/labs/{path}/money/"):
        response = client.get(url)
        assert 400 <= response.status_code < 500, (url, response.status_code)
        assert Funding.objects.count() == 0
