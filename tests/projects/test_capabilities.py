"""The capability library: save a project as a capability, build the next project on it in
one call, share its gold (exposures counted across projects) and publish it to the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects.models import Capability, CapabilityGold, GoldAnswer, Project
from projects.routing import assignment_claim
from tests.contributors.factories import make_exam, qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import fund_project
from tests.projects.factories import PAIRWISE_RUBRIC, make_items, open_project

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]

RUBRIC_V2 = {
    "dimensions": [
        *PAIRWISE_RUBRIC["dimensions"],
        {"key": "clarity", "label": "Clear", "kind": "likert", "min": 1, "max": 5},
    ],
    "instructions": "Prefer the answer a cardiologist would sign, and say it plainly.",
}


@pytest.fixture
def project_a(client_for: Client, lab: Lab, lab_owner: User) -> Project:
    project = open_project(
        lab, lab_owner, items=4, gold=3, gold_rate=1.0, gold_max_exposures=3, budget=None
    )
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.id}/rubric-versions/", RUBRIC_V2, format="json"
    )
    assert response.status_code == 201, response.content
    return project


def _save(client: APIClient, lab: Lab, project: Project, name: str = "Cardiology prefs") -> Any:
    return client.post(
        "/api/v1/capabilities/",
        {"lab": lab.id, "name": name, "from_project": project.id},
        format="json",
    )


def test_a_project_is_saved_as_a_versioned_capability(
    client_for: Client, lab: Lab, lab_owner: User, project_a: Project
) -> None:
    exam = make_exam()
    client = client_for(lab_owner)
    response = _save(client, lab, project_a)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["version"], body["task_type"]) == ("Cardiology prefs", 1, "pairwise")
    assert [version["number"] for version in body["rubric_versions"]] == [1, 2]
    assert [d["key"] for d in body["rubric"]["dimensions"]] == ["correctness", "safety", "clarity"]
    assert body["instructions"] == RUBRIC_V2["instructions"]
    assert body["pay"].items() >= {"unit": "task", "base_rate": 150, "currency": "usd"}.items()
    assert body["terms"]["gold_max_exposures"] == 3
    assert body["required_certifications"] == [
        {"skill": "medicine.cardiology", "include_child_skills": False}
    ]
    assert [row["id"] for row in body["exams"]] == [exam.pk]
    assert body["gold_items"] == 3
    assert '"answer"' not in response.content.decode()
    # The project's gold now counts its exposures on the shared rows.
    assert GoldAnswer.objects.filter(item__project=project_a, shared__isnull=False).count() == 3

    again = _save(client, lab, project_a)
    assert again.status_code == 201
    assert again.json()["version"] == 2
    assert CapabilityGold.objects.count() == 3  # the same gold, shared by both versions
    listed = client.get("/api/v1/capabilities/?scope=own").json()["results"]
    assert [(row["name"], row["version"]) for row in listed] == [
        ("Cardiology prefs", 2),
        ("Cardiology prefs", 1),
    ]


def test_project_b_is_built_from_a_capability_in_one_call_and_shares_gold_exposure(
    client_for: Client, lab: Lab, lab_owner: User, project_a: Project
) -> None:
    client = client_for(lab_owner)
    first, second = UserFactory(), UserFactory()
    for expert in (first, second):
        qualify_for_cardiology(expert)
    # Before the capability exists, A's gold was seen once.
    assert assignment_claim(expert=first, project=project_a).assignment.item.is_gold
    capability = _save(client, lab, project_a).json()

    response = client.post(
        "/api/v1/projects/",
        {"lab": lab.id, "title": "Cardiology, round two", "capability": capability["id"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    project_b = Project.objects.get(pk=body["id"])
    assert body["capability"] == capability["id"]
    assert body["rubric"]["version"] == 2
    assert [d["key"] for d in body["rubric"]["dimensions"]] == ["correctness", "safety", "clarity"]
    assert body["pay"] == {"unit": "task", "base_rate": 150, "currency": "usd"}
    assert (body["gold_rate"], body["gold_max_exposures"]) == (1.0, 3)
    assert [row["skill"] for row in body["required_certifications"]] == ["medicine.cardiology"]
    assert GoldAnswer.objects.filter(item__project=project_b, shared__isnull=False).count() == 3

    make_items(project_b, 3)
    fund_project(project_b, 100_000)
    Project.objects.filter(pk=project_b.pk).update(status="open")
    project_b.refresh_from_db()
    served = assignment_claim(expert=first, project=project_b).assignment.item
    assert served.is_gold
    # Never the copy of the gold `first` already saw in A.
    seen_in_a = GoldAnswer.objects.get(item__assignments__expert=first, item__project=project_a)
    assert GoldAnswer.objects.get(item=served).shared_id != seen_in_a.shared_id

    gold_a = client.get(f"/api/v1/projects/{project_a.id}/stats/").json()["gold"]
    gold_b = client.get(f"/api/v1/projects/{project_b.id}/stats/").json()["gold"]
    # Two exposures in all, one in each project, counted on the shared rows in both.
    assert gold_b["mean_exposures"] == gold_a["mean_exposures"] == round(2 / 3, 2)
    assert gold_b["shared"] == 3

    # Exposures in both projects add up to the limit (3): the item retires everywhere.
    target = GoldAnswer.objects.get(item=served).shared
    CapabilityGold.objects.filter(pk=target.pk).update(exposures=2)
    copy_in_a = GoldAnswer.objects.get(item__project=project_a, shared=target)
    third = UserFactory()
    qualify_for_cardiology(third)
    GoldAnswer.objects.filter(item__project=project_a).exclude(shared=target).update(
        retired_at="2026-01-01T00:00:00Z"
    )
    assert assignment_claim(expert=third, project=project_a).assignment.item_id == copy_in_a.pk
    assert GoldAnswer.objects.filter(shared=target, retired_at__isnull=True).count() == 0
    assert client.get(f"/api/v1/projects/{project_b.id}/stats/").json()["gold"]["retired"] >= 1


def test_the_body_wins_over_the_capability(
    client_for: Client, lab: Lab, lab_owner: User, project_a: Project
) -> None:
    client = client_for(lab_owner)
    capability = _save(client, lab, project_a).json()
    response = client.post(
        "/api/v1/projects/",
        {
            "lab": lab.id,
            "title": "Own rubric",
            "capability": capability["id"],
            "pay": {"unit": "task", "base_rate": 300, "currency": "usd"},
            "redundancy": 5,
            "rubric": PAIRWISE_RUBRIC,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["pay"]["base_rate"], body["redundancy"], body["rubric"]["version"]) == (300, 5, 1)
    # Gold answers belong to the capability's rubric: a project with its own takes none.
    assert not GoldAnswer.objects.filter(item__project_id=body["id"]).exists()


def test_the_catalogue_shows_published_capabilities_without_gold(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    lab_viewer: User,
    other_lab: Lab,
    other_lab_owner: User,
    project_a: Project,
) -> None:
    capability = _save(client_for(lab_owner), lab, project_a).json()
    other = client_for(other_lab_owner)
    assert other.get(f"/api/v1/capabilities/{capability['id']}/").status_code == 404
    refused = other.post(
        "/api/v1/projects/",
        {"lab": other_lab.id, "title": "Borrowed", "capability": capability["id"]},
        format="json",
    )
    assert refused.status_code == 400
    assert [row["field"] for row in refused.json()["error"]["details"]] == ["capability"]

    assert (
        client_for(lab_viewer).post(f"/api/v1/capabilities/{capability['id']}/publish/").status_code
        == 403
    )
    assert other.post(f"/api/v1/capabilities/{capability['id']}/publish/").status_code == 404
    published = client_for(lab_owner).post(f"/api/v1/capabilities/{capability['id']}/publish/")
    assert published.status_code == 200
    assert published.json()["is_published"] is True

    catalogue = other.get("/api/v1/capabilities/?scope=catalogue")
    [row] = catalogue.json()["results"]
    assert (row["id"], row["is_own"], row["source_project"]) == (capability["id"], False, None)
    assert '"answer"' not in catalogue.content.decode()
    built = other.post(
        "/api/v1/projects/",
        {"lab": other_lab.id, "title": "Borrowed", "capability": capability["id"]},
        format="json",
    )
    assert built.status_code == 201, built.content
    assert built.json()["rubric"]["version"] == 2
    assert not GoldAnswer.objects.filter(item__project_id=built.json()["id"]).exists()


def test_experts_certify_once_on_a_published_capability_for_every_lab(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    other_lab: Lab,
    other_lab_owner: User,
    project_a: Project,
) -> None:
    from contributors.models import Exam, ExamQuestion
    from tests.contributors.factories import certify, give_skill

    source = make_exam()
    capability = _save(client_for(lab_owner), lab, project_a).json()
    published = client_for(lab_owner).post(f"/api/v1/capabilities/{capability['id']}/publish/")
    exam = published.json()["certification_exam"]
    skill = f"capabilities.c{capability['id']}"
    assert exam["skill"] == skill
    # The capability's exam carries the source exam's question bank, answer keys never shown.
    assert ExamQuestion.objects.filter(exam_id=exam["id"]).count() == source.questions.count()
    assert '"answer_key"' not in published.content.decode()
    expert = UserFactory()
    listed = client_for(expert).get("/api/v1/exams/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert exam["id"] in [row["id"] for row in rows]

    projects = []
    for owner, owner_lab in ((other_lab_owner, other_lab), (other_lab_owner, other_lab)):
        body = client_for(owner).post(
            "/api/v1/projects/",
            {"lab": owner_lab.id, "title": "On the catalogue", "capability": capability["id"]},
            format="json",
        )
        assert body.status_code == 201, body.content
        assert [row["skill"] for row in body.json()["required_certifications"]] == [skill]
        project = Project.objects.get(pk=body.json()["id"])
        make_items(project, 2)
        fund_project(project, 100_000)
        Project.objects.filter(pk=project.pk).update(status="open")
        projects.append(Project.objects.get(pk=project.pk))
    give_skill(expert, "medicine.cardiology", 4)
    certify(expert, skill)  # what passing the capability's exam issues
    for project in projects:
        assert assignment_claim(expert=expert, project=project) is not None
    assert Exam.objects.filter(skill__key=skill).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"lab": "abc", "name": "x", "from_project": 1},
        {"lab": 10**12, "name": "x", "from_project": 1},
        {"name": "x"},
        {"lab": None, "name": "x", "from_project": None},
        {"lab": 1, "name": "x" * 201, "from_project": 1},
        {"lab": 1, "name": ["x"], "from_project": "1; drop table"},
        [],
        "capability",
    ],
)
def test_hostile_capability_bodies_are_400_and_write_nothing(
    client_for: Client, lab_owner: User, body: Any
) -> None:
    response = client_for(lab_owner).post("/api/v1/capabilities/", body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert not Capability.objects.exists()


def test_another_labs_project_cannot_be_saved(
    client_for: Client, lab: Lab, lab_owner: User, other_lab: Lab, other_lab_owner: User
) -> None:
    theirs = open_project(other_lab, other_lab_owner, items=1)
    response = _save(client_for(lab_owner), lab, theirs)
    assert response.status_code == 400
    assert [row["field"] for row in response.json()["error"]["details"]] == ["from_project"]
    response = _save(client_for(lab_owner), other_lab, theirs)
    assert response.status_code == 400
    assert [row["field"] for row in response.json()["error"]["details"]] == ["lab"]
    assert not Capability.objects.exists()


@pytest.mark.parametrize("capability", ["abc", 10**12, -1, 0, 1.5, [1], {"id": 1}, True])
def test_hostile_capability_in_a_project_body_is_400(
    client_for: Client, lab: Lab, lab_owner: User, capability: Any
) -> None:
    response = client_for(lab_owner).post(
        "/api/v1/projects/",
        {"lab": lab.id, "title": "x", "capability": capability},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert not Project.objects.exists()


def test_a_body_that_contradicts_the_capability_is_400(
    client_for: Client, lab: Lab, lab_owner: User, project_a: Project
) -> None:
    client = client_for(lab_owner)
    capability = _save(client, lab, project_a).json()
    before = Project.objects.count()
    for body in ({"max_redundancy": 1}, {"redundancy": 9, "max_redundancy": 2}, {"pay": "free"}):
        response = client.post(
            "/api/v1/projects/",
            {"lab": lab.id, "title": "x", "capability": capability["id"], **body},
            format="json",
        )
        assert response.status_code == 400, (body, response.content)
    assert Project.objects.count() == before


@pytest.mark.parametrize("path", ["abc", "0", "99999999999999999999"])
def test_hostile_capability_paths_are_4xx(client_for: Client, lab_owner: User, path: str) -> None:
    client = client_for(lab_owner)
    assert 400 <= client.get(f"/api/v1/capabilities/{path}/").status_code < 500
    assert 400 <= client.post(f"/api/v1/capabilities/{path}/publish/").status_code < 500


def test_the_library_takes_a_fixed_number_of_queries(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    project_a: Project,
    django_assert_max_num_queries: Any,
) -> None:
    client = client_for(lab_owner)
    for index in range(4):
        _save(client, lab, project_a, name=f"cap {index}")
    client.get("/api/v1/capabilities/")
    with django_assert_max_num_queries(12):
        assert len(client.get("/api/v1/capabilities/").json()["results"]) == 4


def test_the_django_admin_shows_capabilities_and_never_edits_them(
    client_for: Client, lab: Lab, lab_owner: User, project_a: Project, staff: User
) -> None:
    from tests.conftest import browser

    _save(client_for(lab_owner), lab, project_a)
    staff.is_superuser = True
    staff.save()
    page = browser(staff)
    for model in ("capability", "capabilitygold", "projectinvitation"):
        assert page.get(f"/admin/projects/{model}/").status_code == 200
    capability = Capability.objects.get()
    assert page.get(f"/admin/projects/capability/{capability.pk}/change/").status_code == 200
    assert page.get("/admin/projects/capability/add/").status_code == 403
