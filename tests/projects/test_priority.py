"""Who gets work first when work is scarce (issue 16: routing can prefer experts strong on a
project's heaviest dimension)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from marketplace.models import Lab, User
from projects import routing
from projects.models import Assignment, Item
from scoring.models import ContributorScore, ScoringRun
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_items, open_project

pytestmark = pytest.mark.django_db


def _expert() -> User:
    user = UserFactory()
    qualify_for_cardiology(user)
    return user


def _recently_active(project: Any, user: User) -> None:
    """An assignment served a minute ago (on a spare item): the expert is working here."""
    item = Item.objects.create(
        project=project,
        prompt="done",
        responses=["x", "y"],
        is_open=False,
        target_labels=1,
        assigned_count=1,
    )
    now = timezone.now()
    Assignment.objects.create(
        project=project,
        item=item,
        expert=user,
        rubric_version=project.rubric_versions.get(),
        status="submitted",
        served_at=now - timedelta(minutes=1),
        leased_until=now,
    )


def _snapshot(project: Any, strengths: dict[User, float]) -> None:
    run = ScoringRun.objects.create(project=project, status="succeeded")
    for user, mean in strengths.items():
        ContributorScore.objects.create(
            run=run,
            expert=user,
            tier="silver",
            dimensions={"correctness": {"gold": {"mean": mean, "low": 0, "high": 1, "n": 10}}},
        )


def test_scarce_work_goes_to_the_strongest_on_the_heaviest_dimension(
    lab: Lab, lab_owner: User
) -> None:
    project = open_project(lab, lab_owner, items=0, priority="heaviest_dimension")
    make_items(project, 1, target_labels=1)  # one open slot
    strong, weak = _expert(), _expert()
    for user in (strong, weak):
        _recently_active(project, user)
    _snapshot(project, {strong: 0.9, weak: 0.3})
    # One slot, and a stronger expert is working here: the weaker one waits (204).
    assert routing.assignment_claim(expert=weak, project=project) is None
    assert routing.assignment_claim(expert=strong, project=project) is not None


def test_with_enough_work_priority_changes_nothing(lab: Lab, lab_owner: User) -> None:
    project = open_project(lab, lab_owner, items=0, priority="heaviest_dimension")
    make_items(project, 10, target_labels=3)
    strong, weak = _expert(), _expert()
    for user in (strong, weak):
        _recently_active(project, user)
    _snapshot(project, {strong: 0.9, weak: 0.3})
    assert routing.assignment_claim(expert=weak, project=project) is not None


def test_first_come_projects_ignore_strength(lab: Lab, lab_owner: User) -> None:
    project = open_project(lab, lab_owner, items=0)
    make_items(project, 1, target_labels=1)
    strong, weak = _expert(), _expert()
    for user in (strong, weak):
        _recently_active(project, user)
    _snapshot(project, {strong: 0.9, weak: 0.3})
    assert routing.assignment_claim(expert=weak, project=project) is not None


def test_the_new_pay_and_gold_terms_through_the_api(
    lab: Lab, lab_owner: User, client_for: Any, expert: User
) -> None:
    from tests.projects.factories import project_body

    body = project_body(
        lab,
        hourly_floor=6_000,
        review_pay=50,
        pace_adjusted=False,
        onboarding_gold=8,
        gold_max_exposures=30,
        gold_half_life_days=90,
        tiers_by_dimension=True,
        priority="heaviest_dimension",
    )
    created = client_for(lab_owner).post("/api/v1/projects/", body, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["hourly_floor"], data["review_pay"], data["pace_adjusted"]) == (6_000, 50, False)
    assert (data["onboarding_gold"], data["gold_max_exposures"], data["priority"]) == (
        8,
        30,
        "heaviest_dimension",
    )
    refused = client_for(lab_owner).post(
        "/api/v1/projects/", project_body(lab, review_pay=-5, priority="loudest"), format="json"
    )
    assert refused.status_code == 400
    named = str(refused.json()["error"]["details"])
    assert "review_pay" in named and "priority" in named
