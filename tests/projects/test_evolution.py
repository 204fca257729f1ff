"""The bad-case loop and rubric evolution: blame on bad cases, grouping, promotion to a new
rubric dimension (old versions intact) or to gold, and trends per rubric and model version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects import feed, routing
from projects.models import GoldAnswer, Item, Project
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_submission, open_project

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
ANSWER = {"preference": "b", "answers": {"correctness": [2, 6], "safety": [0, 1]}}


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return open_project(lab, lab_owner, items=0)


def bad_case(project: Project, comment: str = "told me to stop my statin") -> Item:
    feed.feed_accept(
        project=project,
        events=[
            {
                "prompt": "Can I stop my statin?",
                "responses": ["Sure, stop.", "Ask your cardiologist."],
                "model_confidence": 0.97,
                "user_feedback": {"rating": "down", "comment": comment},
            }
        ],
    )
    feed.feed_route(project_id=project.pk)
    return Item.objects.filter(project=project, context__bad_case=True).latest("id")


def label(client: APIClient, project: Project, blame: Any) -> Any:
    task = client.post("/api/v1/tasks/next/", {"project": project.pk}, format="json").json()
    body = {**ANSWER, "seconds_spent": 30, "blame": blame}
    return client.post(f"/api/v1/assignments/{task['id']}/submit/", body, format="json")


def test_experts_blame_a_dimension_and_the_lab_sees_them_grouped(
    project: Project, client_for: Client, lab_owner: User
) -> None:
    for _ in range(2):
        bad_case(project)
    experts = [UserFactory() for _ in range(3)]
    for expert in experts:
        qualify_for_cardiology(expert)
    clients = [client_for(expert) for expert in experts]
    refused = label(clients[0], project, {"dimension": "tone", "reason": "x"})
    assert refused.status_code == 400 and "blame.dimension" in refused.content.decode()
    assert (
        label(clients[0], project, {"dimension": "safety", "reason": "unsafe advice"}).status_code
        == 201
    )
    assert (
        label(clients[1], project, {"dimension": "safety", "reason": "dangerous"}).status_code
        == 201
    )
    assert (
        label(clients[2], project, {"dimension": "correctness", "reason": "wrong"}).status_code
        == 201
    )
    body = client_for(lab_owner).get(f"/api/v1/projects/{project.pk}/bad-cases/").json()
    assert body["bad_case_items"] == 2
    assert [(row["dimension"], row["labels"]) for row in body["by_dimension"]] == [
        ("safety", 2),
        ("correctness", 1),
    ]
    assert body["by_dimension"][0]["reasons"] == ["unsafe advice", "dangerous"]


def test_promoting_a_dimension_makes_a_new_version_and_keeps_the_old_one(
    project: Project, client_for: Client, lab_owner: User, expert: User
) -> None:
    qualify_for_cardiology(expert)
    bad_case(project)
    old = project.rubric_versions.get()
    served = routing.assignment_claim(expert=expert, project=project)
    assert served is not None and served.assignment.rubric_version == old
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.pk}/bad-cases/promote-dimension/",
        {"dimension": {"key": "deferral", "label": "Defers to a clinician", "kind": "binary"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 2
    assert [d["key"] for d in response.json()["dimensions"]] == [
        "correctness",
        "safety",
        "deferral",
    ]
    old.refresh_from_db()
    assert [d.key for d in old.dimensions.order_by("position")] == ["correctness", "safety"]
    # The task already served keeps the version it was served with; its answer is checked
    # against that version (no `deferral` needed).
    routing.assignment_submit(
        assignment=served.assignment, answer=ANSWER, rationale="", seconds_spent=10
    )
    again = client_for(lab_owner).post(
        f"/api/v1/projects/{project.pk}/bad-cases/promote-dimension/",
        {"dimension": {"key": "deferral", "label": "Again", "kind": "binary"}},
        format="json",
    )
    assert again.status_code == 400


def test_bad_cases_become_gold_items(project: Project, client_for: Client, lab_owner: User) -> None:
    item = bad_case(project)
    url = f"/api/v1/projects/{project.pk}/bad-cases/promote-gold/"
    owner = client_for(lab_owner)
    bad = owner.post(
        url, {"items": [{"item": str(item.public_id), "gold": {"preference": "x"}}]}, format="json"
    )
    assert bad.status_code == 400 and not Item.objects.filter(is_gold=True).exists()
    good = owner.post(
        url, {"items": [{"item": str(item.public_id), "gold": {"preference": "b"}}]}, format="json"
    )
    assert good.status_code == 201 and good.json()["created"] == 1
    # The source item is re-queued for new labels (tests/projects/test_relabel.py).
    assert good.json()["relabel_batch"]["items"][0]["item"] == str(item.public_id)
    gold = Item.objects.get(project=project, is_gold=True)
    assert gold.prompt == item.prompt and gold.context["promoted_from"] == str(item.public_id)
    assert GoldAnswer.objects.get(item=gold).answer["preference"] == "b"


def test_trends_per_model_version_show_improvement_and_trade_offs(
    project: Project, client_for: Client, lab_owner: User
) -> None:
    # Three model versions: correctness climbs, safety falls (a trade-off).
    levels = {"m1": (2, 1), "m2": (3, 1), "m3": (6, 0)}
    experts = [UserFactory() for _ in range(2)]
    for version, (correct, safe) in levels.items():
        for index in range(3):
            item = Item.objects.create(
                project=project,
                prompt=f"{version}-{index}",
                responses=["x", "y"],
                model_version=version,
            )
            for expert in experts:
                make_submission(
                    item,
                    expert,
                    {
                        "preference": "a",
                        "answers": {"correctness": [correct, correct], "safety": [safe, safe]},
                    },
                )
    trends = client_for(lab_owner).get(f"/api/v1/projects/{project.pk}/trends/").json()
    assert trends["model_versions"] == ["m1", "m2", "m3"]
    assert trends["per_model_version"]["m1"]["correctness"] == pytest.approx(1 / 6, abs=1e-4)
    assert trends["movement"] == {"correctness": "improved", "safety": "regressed"}
    assert trends["correlations"]["correctness~safety"] < 0
    assert trends["trade_offs"] == ["correctness~safety"]
    assert set(trends["per_rubric_version"]) == {"1"}


def test_the_labeling_page_asks_for_blame_on_bad_cases_and_the_dashboard_groups_it(
    project: Project, expert: User, lab_owner: User
) -> None:
    from django.test import Client as PageClient

    bad_case(project, comment="unsafe!")
    qualify_for_cardiology(expert)
    page = PageClient()
    page.force_login(expert)
    url = page.post("/work/next/", {"project": project.pk})["Location"]
    html = page.get(url).content.decode()
    assert 'name="blame_dimension"' in html and "unsafe!" in html
    form = {
        "preference": "b",
        "dim.correctness.0": "2",
        "dim.correctness.1": "6",
        "dim.safety.0": "0",
        "dim.safety.1": "1",
        "seconds_spent": "20",
        "blame_dimension": "safety",
        "blame_reason": "tells people to stop",
    }
    assert page.post(url, form).status_code == 302
    owner = PageClient()
    owner.force_login(lab_owner)
    dashboard = owner.get(f"/projects/{project.pk}/").content.decode()
    assert "tells people to stop" in dashboard and "Dimensions across model versions" in dashboard


def test_trends_are_computed_per_rubric_version(project: Project, lab_owner: User) -> None:
    from projects import evolution

    expert = UserFactory()
    first = Item.objects.create(project=project, prompt="p1", responses=["x", "y"])
    make_submission(
        first, expert, {"preference": "a", "answers": {"correctness": [7, 7], "safety": [1, 1]}}
    )
    evolution.rubric_promote_dimension(
        project=project,
        dimension={"key": "deferral", "label": "Defers", "kind": "binary"},
        created_by=lab_owner,
    )
    second = Item.objects.create(project=project, prompt="p2", responses=["x", "y"])
    make_submission(
        second,
        expert,
        {
            "preference": "a",
            "answers": {"correctness": [1, 1], "safety": [0, 0], "deferral": [1, 0]},
        },
    )
    per_version = evolution.dimension_trends(project=project)["per_rubric_version"]
    assert per_version[1] == {"correctness": 1.0, "safety": 1.0}
    assert per_version[2] == {"correctness": 0.0, "safety": 0.0, "deferral": 0.5}
    first_version = project.rubric_versions.get(number=1)
    assert [d.key for d in first_version.dimensions.order_by("position")] == [
        "correctness",
        "safety",
    ]
