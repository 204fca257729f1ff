"""Projects through the HTTP API with every persona: create, read, edit, status, rubrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects.models import Dimension, Project, ProjectStatus, ProjectStatusChange, RubricVersion
from tests.contributors.factories import certify, give_skill, qualify_for_cardiology
from tests.payouts.factories import fund_project
from tests.projects.factories import PAIRWISE_RUBRIC, make_items, make_project, project_body

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return make_project(lab, lab_owner)


@pytest.fixture
def open_project(project: Project, lab_owner: User) -> Project:
    make_items(project, 3)
    project.status = ProjectStatus.OPEN
    project.save()
    return project


@pytest.mark.parametrize("persona", ["lab_owner", "lab_manager"])
def test_owner_or_manager_creates_a_draft_project_with_rubric_v1(
    request: Any, client_for: Client, lab: Lab, persona: str
) -> None:
    response = client_for(request.getfixturevalue(persona)).post(
        "/api/v1/projects/", project_body(lab), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["pay"] == {"unit": "task", "base_rate": 150, "currency": "usd"}
    assert (body["redundancy"], body["max_redundancy"], body["gold_rate"]) == (3, 3, 0.1)
    assert body["lease_minutes"] == 30
    assert body["required_skills"] == [
        {"skill": "medicine.cardiology", "min_level": 3, "include_child_skills": False}
    ]
    assert body["required_certifications"][0]["skill"] == "medicine.cardiology"
    assert body["rubric"]["version"] == 1
    assert [d["key"] for d in body["rubric"]["dimensions"]] == ["correctness", "safety"]
    assert body["rubric"]["dimensions"][0]["min"] == 1
    assert body["rubric"]["dimensions"][0]["max"] == 7
    project = Project.objects.get(pk=body["id"])
    assert ProjectStatusChange.objects.filter(project=project).count() == 1


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("lab_viewer", 403), ("other_lab_owner", 400), ("expert", 400), ("anonymous", 401)],
)
def test_others_cannot_create_projects_in_the_lab(
    request: Any, client_for: Client, lab: Lab, persona: str, expected: int
) -> None:
    client = APIClient() if persona == "anonymous" else client_for(request.getfixturevalue(persona))
    response = client.post("/api/v1/projects/", project_body(lab), format="json")
    assert response.status_code == expected
    if expected == 400:
        assert response.json()["error"]["details"][0]["field"] == "lab"
    assert not Project.objects.exists()


def test_an_api_key_cannot_create_projects(key_client_for: Any, lab: Lab, lab_api_key: str) -> None:
    response = key_client_for(lab_api_key).post(
        "/api/v1/projects/", project_body(lab), format="json"
    )
    assert response.status_code == 403
    assert not Project.objects.exists()


def test_rubric_errors_name_each_dimension_and_problem(
    client_for: Client, lab: Lab, lab_owner: User
) -> None:
    rubric = {
        "dimensions": [
            {"key": "clarity", "label": "Clear", "kind": "likert"},
            {"key": "Bad Key", "label": "x", "kind": "binary"},
            {"key": "tone", "label": "Tone", "kind": "choice", "options": ["warm"]},
            {"key": "clarity", "label": "Again", "kind": "binary", "weight": 0},
        ]
    }
    response = client_for(lab_owner).post(
        "/api/v1/projects/", project_body(lab, rubric=rubric), format="json"
    )
    assert response.status_code == 400
    problems = {(p["field"], p["message"]) for p in response.json()["error"]["details"]}
    fields = {field for field, _ in problems}
    assert "rubric.dimensions[0].min" in fields
    assert "rubric.dimensions[1].key" in fields
    assert "rubric.dimensions[2].options" in fields
    assert "rubric.dimensions[3].weight" in fields
    messages = " ".join(message for _, message in problems)
    for name in ("'clarity'", "'Bad Key'", "'tone'"):
        assert name in messages
    assert not Project.objects.exists()


def test_duplicate_dimension_keys_are_refused(
    client_for: Client, lab: Lab, lab_owner: User
) -> None:
    rubric = {"dimensions": [PAIRWISE_RUBRIC["dimensions"][0], PAIRWISE_RUBRIC["dimensions"][0]]}
    response = client_for(lab_owner).post(
        "/api/v1/projects/", project_body(lab, rubric=rubric), format="json"
    )
    assert response.status_code == 400
    detail = response.json()["error"]["details"]
    assert detail == [
        {
            "field": "rubric.dimensions[1].key",
            "message": "dimension 'correctness' appears more than once",
            "code": "invalid",
        }
    ]


@pytest.mark.parametrize("bad", [-5, 0, 1.5, "150", True, None, 2**63, 2**64, 10**13])
def test_bad_rates_are_refused_and_nothing_stored(
    client_for: Client, lab: Lab, lab_owner: User, bad: Any
) -> None:
    body = project_body(lab, pay={"unit": "task", "base_rate": bad, "currency": "usd"})
    response = client_for(lab_owner).post("/api/v1/projects/", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "pay.base_rate"
    assert not Project.objects.exists()


@pytest.mark.parametrize("bad", [-1, 0, 0.5, "1000", 2**63])
def test_bad_budgets_are_refused(client_for: Client, lab: Lab, lab_owner: User, bad: Any) -> None:
    response = client_for(lab_owner).post(
        "/api/v1/projects/", project_body(lab, budget=bad), format="json"
    )
    assert response.status_code == 400
    assert not Project.objects.exists()


def test_nan_in_the_body_is_a_400(client_for: Client, lab: Lab, lab_owner: User) -> None:
    raw = (
        b'{"lab": %d, "title": "t", "task_type": "pairwise", "gold_rate": NaN,'
        b' "pay": {"unit": "task", "base_rate": 100}}' % lab.id
    )
    response = client_for(lab_owner).post(
        "/api/v1/projects/", data=raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert not Project.objects.exists()


def test_validation_lists_every_problem(client_for: Client, lab: Lab, lab_owner: User) -> None:
    body = project_body(
        lab,
        task_type="essay",
        redundancy=0,
        gold_rate=1.5,
        required_skills=[{"skill": "astrology", "min_level": 9}],
        pay={"unit": "week", "base_rate": 100, "currency": "US Dollars"},
    )
    response = client_for(lab_owner).post("/api/v1/projects/", body, format="json")
    assert response.status_code == 400
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert {
        "task_type",
        "redundancy",
        "gold_rate",
        "required_skills[0].skill",
        "required_skills[0].min_level",
        "pay.unit",
        "pay.currency",
    } <= fields


def test_lab_members_list_their_projects_in_every_status(
    client_for: Client, project: Project, lab_viewer: User, other_lab: Lab, other_lab_owner: User
) -> None:
    make_project(other_lab, other_lab_owner)
    response = client_for(lab_viewer).get("/api/v1/projects/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [project.id]
    assert rows[0]["budget"] == 500000


def test_experts_list_only_open_projects_they_qualify_for_without_gold_or_budget(
    client_for: Client, open_project: Project, lab: Lab, lab_owner: User, expert: User
) -> None:
    make_project(lab, lab_owner, title="still a draft")
    client = client_for(expert)
    assert client.get("/api/v1/projects/").json()["results"] == []

    qualify_for_cardiology(expert)
    rows = client.get("/api/v1/projects/").json()["results"]
    assert [row["id"] for row in rows] == [open_project.id]
    for hidden in ("gold_rate", "budget", "redundancy", "max_redundancy", "lab"):
        assert hidden not in rows[0]


def test_qualification_needs_level_and_certification(
    client_for: Client, open_project: Project, expert: User
) -> None:
    client = client_for(expert)
    give_skill(expert, "medicine.cardiology", 2)
    certify(expert, "medicine.cardiology")
    assert client.get("/api/v1/projects/").json()["count"] == 0
    give_skill(expert, "medicine.cardiology", 3)
    assert client.get("/api/v1/projects/").json()["count"] == 1


def test_project_list_filters(client_for: Client, lab: Lab, lab_owner: User) -> None:
    make_project(
        lab, lab_owner, domain="law", required_skills=[], required_certifications=["law.contracts"]
    )
    medicine = make_project(lab, lab_owner, task_type="rating")
    client = client_for(lab_owner)

    def ids(query: str) -> list[int]:
        return [row["id"] for row in client.get(f"/api/v1/projects/?{query}").json()["results"]]

    assert ids("domain=medicine") == [medicine.id]
    assert ids("task_type=rating") == [medicine.id]
    assert ids("skill=medicine") == [medicine.id]
    assert len(ids("status=draft")) == 2
    assert ids("status=open") == []


def test_project_list_has_no_n_plus_one(
    client_for: Client, lab: Lab, lab_owner: User, django_assert_max_num_queries: Any
) -> None:
    for _ in range(6):
        make_project(lab, lab_owner)
    client = client_for(lab_owner)
    with django_assert_max_num_queries(12):
        response = client.get("/api/v1/projects/")
    assert response.json()["count"] == 6


def test_detail_scoping_for_every_persona(
    client_for: Client,
    key_client_for: Any,
    open_project: Project,
    lab_viewer: User,
    other_lab_owner: User,
    expert: User,
    lab_api_key: str,
    other_lab_api_key: str,
) -> None:
    url = f"/api/v1/projects/{open_project.id}/"
    assert client_for(lab_viewer).get(url).json()["gold_rate"] == 0.1
    assert key_client_for(lab_api_key).get(url).status_code == 200
    assert client_for(other_lab_owner).get(url).status_code == 404
    assert key_client_for(other_lab_api_key).get(url).status_code == 404
    assert APIClient().get(url).status_code == 401
    expert_client = client_for(expert)
    assert expert_client.get(url).status_code == 404
    qualify_for_cardiology(expert)
    public = expert_client.get(url).json()
    assert "gold_rate" not in public and "budget" not in public
    assert client_for(lab_viewer).get("/api/v1/projects/424242/").status_code == 404


def test_patch_edits_a_draft_only(client_for: Client, project: Project, lab_owner: User) -> None:
    client = client_for(lab_owner)
    url = f"/api/v1/projects/{project.id}/"
    response = client.patch(url, {"title": "New title", "redundancy": 5}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["title"], response.json()["redundancy"]) == ("New title", 5)
    assert response.json()["max_redundancy"] == 5
    make_items(project, 1)
    fund_project(project, 10_000)
    assert client.post(f"{url}publish/").status_code == 200
    refused = client.patch(url, {"title": "Sneaky"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "project_not_draft"
    assert Project.objects.get(pk=project.pk).title == "New title"


@pytest.mark.parametrize("persona", ["lab_viewer", "other_lab_owner", "expert"])
def test_only_managers_patch(
    request: Any, client_for: Client, project: Project, persona: str
) -> None:
    response = client_for(request.getfixturevalue(persona)).patch(
        f"/api/v1/projects/{project.id}/", {"title": "x"}, format="json"
    )
    assert response.status_code == (403 if persona == "lab_viewer" else 404)
    assert Project.objects.get(pk=project.pk).title != "x"


def test_publish_needs_funds_covering_one_task_at_the_top_multiplier(
    client_for: Client, project: Project, lab_owner: User
) -> None:
    make_items(project, 1)
    fund_project(project, 240)  # 192 after the 20% fee; one task costs up to 150 x 1.3 = 195
    client = client_for(lab_owner)
    refused = client.post(f"/api/v1/projects/{project.id}/publish/")
    assert [p["field"] for p in refused.json()["error"]["details"]] == ["escrow"]
    fund_project(project, 10)
    assert client.post(f"/api/v1/projects/{project.id}/publish/").json()["status"] == "open"


def test_publish_needs_a_rubric_and_an_item(client_for: Client, lab: Lab, lab_owner: User) -> None:
    bare = make_project(lab, lab_owner, rubric=None)
    client = client_for(lab_owner)
    response = client.post(f"/api/v1/projects/{bare.id}/publish/")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "not_publishable"
    assert {problem["field"] for problem in error["details"]} == {"rubric", "items", "escrow"}
    assert Project.objects.get(pk=bare.pk).status == ProjectStatus.DRAFT


def test_gold_items_alone_do_not_make_a_project_publishable(
    client_for: Client, project: Project, lab_owner: User
) -> None:
    make_items(project, 2, is_gold=True)
    fund_project(project, 10_000)
    response = client_for(lab_owner).post(f"/api/v1/projects/{project.id}/publish/")
    assert response.status_code == 400
    assert [p["field"] for p in response.json()["error"]["details"]] == ["items"]


def test_status_machine_records_who_and_when(
    client_for: Client, project: Project, lab_owner: User
) -> None:
    make_items(project, 1)
    fund_project(project, 10_000)
    client = client_for(lab_owner)
    base = f"/api/v1/projects/{project.id}"
    assert client.post(f"{base}/publish/").json()["status"] == "open"
    assert (
        client.post(f"{base}/pause/", {"reason": "rubric fix"}, format="json").json()["status"]
        == "paused"
    )
    assert client.post(f"{base}/publish/").json()["status"] == "open"
    assert client.post(f"{base}/close/").json()["status"] == "closed"
    refused = client.post(f"{base}/publish/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invalid_transition"
    changes = list(
        ProjectStatusChange.objects.filter(project=project)
        .order_by("id")
        .values_list("from_status", "to_status", "changed_by")
    )
    assert changes[1:] == [
        ("draft", "open", lab_owner.id),
        ("open", "paused", lab_owner.id),
        ("paused", "open", lab_owner.id),
        ("open", "closed", lab_owner.id),
    ]
    assert ProjectStatusChange.objects.get(to_status="paused").reason == "rubric fix"


def test_refused_transitions(client_for: Client, project: Project, lab_owner: User) -> None:
    client = client_for(lab_owner)
    assert client.post(f"/api/v1/projects/{project.id}/pause/").status_code == 409
    assert Project.objects.get(pk=project.pk).status == ProjectStatus.DRAFT


@pytest.mark.parametrize("persona", ["lab_viewer", "expert"])
def test_transitions_need_a_manager(
    request: Any, client_for: Client, open_project: Project, persona: str
) -> None:
    user = request.getfixturevalue(persona)
    qualify_for_cardiology(user)
    response = client_for(user).post(f"/api/v1/projects/{open_project.id}/close/")
    assert response.status_code == (403 if persona == "lab_viewer" else 404)
    assert Project.objects.get(pk=open_project.pk).status == ProjectStatus.OPEN


def test_api_key_cannot_change_status(
    key_client_for: Any, open_project: Project, lab_api_key: str
) -> None:
    assert (
        key_client_for(lab_api_key).post(f"/api/v1/projects/{open_project.id}/close/").status_code
        == 403
    )


def test_a_new_rubric_version_leaves_the_old_one_intact(
    client_for: Client, open_project: Project, lab_owner: User
) -> None:
    client = client_for(lab_owner)
    url = f"/api/v1/projects/{open_project.id}/rubric-versions/"
    v1 = RubricVersion.objects.get(project=open_project)
    before = list(Dimension.objects.filter(rubric_version=v1).values())
    new = {
        "dimensions": [
            *PAIRWISE_RUBRIC["dimensions"],
            {"key": "clarity", "label": "Clear", "kind": "likert", "min": 1, "max": 5},
        ],
        "instructions": "Also judge clarity.",
    }
    response = client.post(url, new, format="json")
    assert response.status_code == 201
    assert response.json()["version"] == 2
    assert list(Dimension.objects.filter(rubric_version=v1).values()) == before
    listing = client.get(url).json()
    assert [(v["version"], len(v["dimensions"])) for v in listing] == [(1, 2), (2, 3)]
    detail = client.get(f"/api/v1/projects/{open_project.id}/").json()
    assert detail["rubric"]["version"] == 2


def test_rubric_version_validation_and_roles(
    client_for: Client, project: Project, lab_viewer: User, lab_owner: User
) -> None:
    url = f"/api/v1/projects/{project.id}/rubric-versions/"
    assert client_for(lab_viewer).post(url, PAIRWISE_RUBRIC, format="json").status_code == 403
    bad = client_for(lab_owner).post(
        url,
        {"dimensions": [{"key": "x", "label": "x", "kind": "likert", "min": 5, "max": 1}]},
        format="json",
    )
    assert bad.status_code == 400
    assert "'x'" in bad.json()["error"]["details"][0]["message"]
    assert RubricVersion.objects.filter(project=project).count() == 1


@pytest.mark.parametrize("bad", ["xyz", "USD", "us", "usdd", "", 840, None, "u$d", "eek"])
def test_a_pay_currency_stripe_does_not_support_is_a_400(
    client_for: Client, lab: Lab, lab_owner: User, bad: Any
) -> None:
    body = project_body(lab, pay={"unit": "task", "base_rate": 150, "currency": bad})
    response = client_for(lab_owner).post("/api/v1/projects/", body, format="json")
    assert response.status_code == 400
    [problem] = response.json()["error"]["details"]
    assert problem["field"] == "pay.currency"
    assert problem["code"] == ("null" if bad is None else "unsupported_currency")
    assert not Project.objects.exists()


def test_supported_currencies_are_accepted(client_for: Client, lab: Lab, lab_owner: User) -> None:
    for currency in ("eur", "jpy", "gbp"):
        body = project_body(lab, pay={"unit": "task", "base_rate": 150, "currency": currency})
        response = client_for(lab_owner).post("/api/v1/projects/", body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["pay"]["currency"] == currency
