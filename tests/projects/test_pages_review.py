"""Reviewer pages: take a sampled submission, accept, reject with a reason, or fix it."""

from __future__ import annotations

import pytest

from marketplace.models import Lab, User
from projects.models import Review, Submission
from tests.conftest import browser
from tests.contributors.factories import certify, qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_submission, open_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def sampled(lab: Lab, lab_owner: User, expert: User) -> Review:
    project = open_project(lab, lab_owner, items=1, review_rate=1.0)
    qualify_for_cardiology(expert)
    submission = make_submission(
        project.items.first(),
        expert,
        {"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}},
    )
    return Review.objects.create(submission=submission, project=project)


@pytest.fixture
def reviewer() -> User:
    user = UserFactory()
    from contributors.models import Certification

    certify(user, "medicine.cardiology")
    Certification.objects.filter(user=user).update(role="reviewer")
    return user


def test_reviewer_sees_the_label_prefilled_and_fixes_it(sampled: Review, reviewer: User) -> None:
    client = browser(reviewer)
    assert sampled.project.title in client.get("/review/").content.decode()
    response = client.post("/review/next/", {"project": sampled.project_id})
    assert response["Location"] == f"/review/{sampled.pk}/"
    html = client.get(response["Location"]).content.decode()
    assert 'name="preference" value="a" checked' in html
    assert 'name="dim.correctness.0" value="6" data-key="6" checked' in html
    form = {
        "decision": "fixed",
        "preference": "b",
        "dim.correctness.0": "2",
        "dim.correctness.1": "6",
        "dim.safety.0": "0",
        "dim.safety.1": "1",
    }
    assert client.post(response["Location"], form).status_code == 302
    sampled.refresh_from_db()
    assert sampled.status == "fixed"
    assert sampled.fixed_answer == {
        "preference": "b",
        "answers": {"correctness": [2, 6], "safety": [0, 1]},
    }


def test_reject_needs_a_reason_then_requeues(sampled: Review, reviewer: User) -> None:
    client = browser(reviewer)
    client.post("/review/next/", {"project": sampled.project_id})
    response = client.post(f"/review/{sampled.pk}/", {"decision": "rejected", "reason": ""})
    assert response.status_code == 400 and "needs a reason" in response.content.decode()
    client.post(f"/review/{sampled.pk}/", {"decision": "rejected", "reason": "wrong facts"})
    sampled.refresh_from_db()
    assert sampled.status == "rejected"
    assert Submission.objects.get(pk=sampled.submission_id).status == "rejected"


def test_review_pages_are_for_the_claiming_reviewer_only(sampled: Review, reviewer: User) -> None:
    browser(reviewer).post("/review/next/", {"project": sampled.project_id})
    assert browser(UserFactory()).get(f"/review/{sampled.pk}/").status_code == 404
    uncertified = browser(UserFactory()).post("/review/next/", {"project": sampled.project_id})
    assert uncertified["Location"] == "/review/"
