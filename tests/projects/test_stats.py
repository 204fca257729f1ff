"""Project stats: progress, distributions per dimension, budget and cost per accepted label."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from payouts.services import earning_book
from projects.models import Project
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import fund_project
from tests.projects.factories import make_items, make_project, make_submission

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    project = make_project(lab, lab_owner, redundancy=2)
    items = make_items(project, 4)
    make_items(project, 1, prefix="gold", is_gold=True)
    make_items(project, 1, prefix="heldout", split="eval")
    first, second = UserFactory(), UserFactory()
    answers = [
        {"preference": "a", "answers": {"correctness": [7, 2], "safety": [1, 0]}},
        {"preference": "b", "answers": {"correctness": [5, 2], "safety": [1, 1]}},
    ]
    fund_project(project, 10_000)
    for expert, answer in zip((first, second), answers, strict=True):
        earning_book(submission=make_submission(items[0], expert, answer))
    earning_book(submission=make_submission(items[1], first, answers[0]))
    return project


def test_stats_report_progress_distributions_and_cost(
    client_for: Client, project: Project, lab_viewer: User
) -> None:
    stats = client_for(lab_viewer).get(f"/api/v1/projects/{project.id}/stats/").json()
    assert stats["progress"] == {
        "items": 5,
        "gold_items": 1,
        "eval_items": 1,
        "labels": 3,
        "gold_labels": 0,
        "completed_items": 1,
        "completion": 0.2,
    }
    assert stats["preference"] == {"a": 2, "b": 1}
    correctness = next(d for d in stats["dimensions"] if d["key"] == "correctness")
    assert correctness["n"] == 6
    assert correctness["counts"]["2"] == 3 and correctness["counts"]["7"] == 2
    safety = next(d for d in stats["dimensions"] if d["key"] == "safety")
    assert safety["counts"] == {"0": 2, "1": 4}
    # Three labels of 150 wait in pending; each set aside the highest tier's uplift (45).
    assert stats["budget"] == {
        "currency": "usd",
        "cap": 500000,
        "spent": 585,
        "left": 499415,
        "escrow": 8000 - 585,
        "reserved": 135,
        "leases": 0,
        "pending": 450,
        "paid": 0,
        "fees": 2000,
        "can_serve": True,
        "low_balance": {"tasks_covered": 38, "is_low": False, "threshold_tasks": 20},
    }
    assert stats["agreement"] is None  # no scoring run yet
    assert stats["cost_per_accepted_label"] == 150


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("lab_owner", 200),
        ("lab_api_key", 200),
        ("other_lab_owner", 404),
        ("expert", 404),
        ("anonymous", 401),
    ],
)
def test_stats_personas(
    request: Any,
    client_for: Client,
    key_client_for: Any,
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
    assert client.get(f"/api/v1/projects/{project.id}/stats/").status_code == expected


def test_gold_status_is_never_in_expert_visible_project_responses(
    client_for: Client, project: Project, expert: User
) -> None:
    from tests.contributors.factories import qualify_for_cardiology

    project.status = "open"
    project.save()
    qualify_for_cardiology(expert)
    client = client_for(expert)
    for url in ("/api/v1/projects/", f"/api/v1/projects/{project.id}/"):
        body = client.get(url).content.decode()
        for leak in ("gold", "budget", "redundancy"):
            assert leak not in body, (url, leak)
    assert client.get(f"/api/v1/projects/{project.id}/stats/").status_code == 404
    assert client.get(f"/api/v1/projects/{project.id}/rubric-versions/").status_code == 404
