"""The review workflow: sampled submissions, certified reviewers, accept / reject / fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from payouts.models import AccountKind
from payouts.services.ledger import balance_of, ledger_verify
from projects import routing
from projects.models import Item, Project, Review, Submission
from tests.contributors.factories import certify, qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.test_routing import GOOD, claim, open_project, submit

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


@pytest.fixture
def reviewed(lab: Lab, lab_owner: User, client_for: Client, expert: User) -> dict[str, Any]:
    project = open_project(lab, lab_owner, items=2, redundancy=1)
    project.review_rate = 1.0
    project.save()
    qualify_for_cardiology(expert)
    client = client_for(expert)
    task = claim(client, project).json()
    assert submit(client, task).status_code == 201
    reviewer = UserFactory()
    certify(reviewer, "medicine.cardiology")
    reviewer_certification = certify(reviewer, "medicine.cardiology")
    reviewer_certification.role = "reviewer"
    reviewer_certification.save()
    return {"project": project, "reviewer": reviewer, "task": task}


def take(client: APIClient, project: Project) -> Any:
    return client.post("/api/v1/reviews/next/", {"project": project.id}, format="json")


def test_sampled_submissions_wait_for_a_certified_reviewer(
    client_for: Client, reviewed: dict[str, Any], expert: User
) -> None:
    project = reviewed["project"]
    assert Review.objects.filter(project=project, status="pending").count() == 1
    refused = take(client_for(expert), project)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_reviewer"
    response = take(client_for(reviewed["reviewer"]), project)
    assert response.status_code == 200
    body = response.json()
    assert body["answer"]["preference"] == "a"
    assert set(body) == {"id", "project", "item", "rubric", "answer", "rationale"}
    assert take(client_for(reviewed["reviewer"]), project).json()["id"] == body["id"]


def test_accepting_keeps_everything(
    client_for: Client, reviewed: dict[str, Any], expert: User
) -> None:
    client = client_for(reviewed["reviewer"])
    review = take(client, reviewed["project"]).json()
    response = client.post(
        f"/api/v1/reviews/{review['id']}/decide/", {"decision": "accepted"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert Submission.objects.get().status == "accepted"
    assert (
        client.post(
            f"/api/v1/reviews/{review['id']}/decide/",
            {"decision": "rejected", "reason": "x"},
            format="json",
        ).status_code
        == 409
    )


def test_rejecting_requeues_the_item_and_reverses_the_earning(
    client_for: Client, reviewed: dict[str, Any], expert: User
) -> None:
    project = reviewed["project"]
    client = client_for(reviewed["reviewer"])
    review = take(client, project).json()

    def pending() -> int:
        return balance_of(
            kind=AccountKind.EXPERT_PENDING, currency="usd", project=project, user=expert
        )

    assert pending() == 150
    no_reason = client.post(
        f"/api/v1/reviews/{review['id']}/decide/", {"decision": "rejected"}, format="json"
    )
    assert no_reason.status_code == 400
    response = client.post(
        f"/api/v1/reviews/{review['id']}/decide/",
        {"decision": "rejected", "reason": "contradicts guidelines"},
        format="json",
    )
    assert response.json()["status"] == "rejected"
    item = Item.objects.get(public_id=reviewed["task"]["item"]["id"])
    assert (item.labels_count, item.assigned_count, item.is_open) == (0, 0, True)
    assert pending() == 0
    assert balance_of(kind=AccountKind.PROJECT_RESERVE, currency="usd", project=project) == 0
    assert Submission.objects.get().earning.status == "reversed"
    assert ledger_verify().is_clean
    assert routing.routing_verify(project=project) == []
    # A new expert now gets the re-queued item.
    other = UserFactory()
    qualify_for_cardiology(other)
    assert claim(client_for(other), project).json()["item"]["id"] == reviewed["task"]["item"]["id"]


def test_fixing_validates_and_keeps_both_answers(
    client_for: Client, reviewed: dict[str, Any]
) -> None:
    client = client_for(reviewed["reviewer"])
    review = take(client, reviewed["project"]).json()
    bad = client.post(
        f"/api/v1/reviews/{review['id']}/decide/",
        {"decision": "fixed", "answer": {"preference": "z"}},
        format="json",
    )
    assert bad.status_code == 400
    fixed_answer = {**{k: v for k, v in GOOD.items() if k != "seconds_spent"}, "preference": "b"}
    response = client.post(
        f"/api/v1/reviews/{review['id']}/decide/",
        {"decision": "fixed", "answer": fixed_answer},
        format="json",
    )
    assert response.status_code == 200
    stored = Review.objects.get(pk=review["id"])
    assert stored.fixed_answer["preference"] == "b"
    assert Submission.objects.get().answer["preference"] == "a"


def test_nobody_reviews_their_own_work_and_others_cannot_decide(
    client_for: Client, reviewed: dict[str, Any], expert: User
) -> None:
    own = certify(expert, "medicine.cardiology")
    own.role = "reviewer"
    own.save()
    assert take(client_for(expert), reviewed["project"]).status_code == 204
    review = take(client_for(reviewed["reviewer"]), reviewed["project"]).json()
    response = client_for(expert).post(
        f"/api/v1/reviews/{review['id']}/decide/", {"decision": "accepted"}, format="json"
    )
    assert response.status_code == 404
