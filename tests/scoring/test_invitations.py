"""Reputation that works for the lab: invite a past project's best experts (pseudonyms and
evidence, never emails), the experts accept, and they get the new project's scarce work first;
reputation keyed on skills and capabilities ranks the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from contributors.selectors import expert_pseudonym
from marketplace.models import Lab, User
from projects.models import Project, ProjectInvitation, QualityStop
from scoring.models import ContributorScore, ScoringRun
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import fund_project
from tests.projects.factories import make_items, open_project

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


def _score(run: ScoringRun, expert: User, composite: float) -> None:
    ContributorScore.objects.create(
        run=run,
        expert=expert,
        n_labels=40,
        gold_mean=composite,
        gold_low=composite - 0.1,
        gold_high=composite + 0.05,
        gold_n=10,
        agreement_rate=composite,
        agreement_n=30,
        composite=composite,
        tier="gold",
    )


@pytest.fixture
def experts() -> dict[str, User]:
    people = {name: UserFactory() for name in ("best", "second", "weak", "stopped", "newcomer")}
    for person in people.values():
        qualify_for_cardiology(person)
    return people


@pytest.fixture
def project_a(lab: Lab, lab_owner: User, experts: dict[str, User]) -> Project:
    project = open_project(lab, lab_owner, items=2)
    run = ScoringRun.objects.create(project=project, status="succeeded")
    for name, composite in (("best", 0.92), ("second", 0.86), ("weak", 0.55), ("stopped", 0.95)):
        _score(run, experts[name], composite)
    QualityStop.objects.create(project=project, expert=experts["stopped"], reason="near chance")
    return project


@pytest.fixture
def project_b(client_for: Client, lab: Lab, lab_owner: User, project_a: Project) -> Project:
    """Built on A's capability in one call, serving invitees and proven experts first; two
    open task slots."""
    client = client_for(lab_owner)
    capability = client.post(
        "/api/v1/capabilities/",
        {"lab": lab.id, "name": "Cardiology prefs", "from_project": project_a.id},
        format="json",
    ).json()
    response = client.post(
        "/api/v1/projects/",
        {
            "lab": lab.id,
            "title": "Round two",
            "capability": capability["id"],
            "priority": "reputation",
            "redundancy": 1,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    project = Project.objects.get(pk=response.json()["id"])
    make_items(project, 2)
    fund_project(project, 100_000)
    Project.objects.filter(pk=project.pk).update(status="open")
    return project


def _claim(client_for: Client, expert: User, project: Project) -> int:
    return (
        client_for(expert)
        .post("/api/v1/tasks/next/", {"project": project.id}, format="json")
        .status_code
    )


def test_a_lab_invites_the_top_experts_of_its_past_project_and_they_get_work_first(
    mailoutbox: Any,
    django_capture_on_commit_callbacks: Any,
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    project_a: Project,
    project_b: Project,
    experts: dict[str, User],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(lab_owner).post(
            f"/api/v1/projects/{project_b.id}/invitations/",
            {"from_project": project_a.id, "top": 2},
            format="json",
        )
    assert response.status_code == 201, response.content
    rows = response.json()
    # The stopped expert scored highest and is left out; pseudonyms, never emails.
    assert [(row["rank"], row["pseudonym"]) for row in rows] == [
        (1, expert_pseudonym(expert=experts["best"], lab_id=lab.id)),
        (2, expert_pseudonym(expert=experts["second"], lab_id=lab.id)),
    ]
    assert rows[0]["evidence"]["composite"] == 0.92
    assert rows[0]["evidence"]["gold"]["n"] == 10
    body = response.content.decode()
    for person in experts.values():
        assert person.email not in body
    assert "email" not in body

    # Each invitee is told by email, naming the lab and the project, never the others.
    assert sorted(message.to[0] for message in mailoutbox) == sorted(
        [experts["best"].email, experts["second"].email]
    )
    assert "Round two" in mailoutbox[0].body
    # Inviting again is idempotent, and tells nobody twice.
    with django_capture_on_commit_callbacks(execute=True):
        again = client_for(lab_owner).post(
            f"/api/v1/projects/{project_b.id}/invitations/",
            {"from_project": project_a.id, "top": 2},
            format="json",
        )
    assert again.status_code == 201 and ProjectInvitation.objects.count() == 2
    assert len(mailoutbox) == 2

    mine = client_for(experts["best"]).get("/api/v1/me/invitations/").json()
    assert [(row["project"], row["status"]) for row in mine] == [(project_b.id, "pending")]
    assert client_for(experts["weak"]).get("/api/v1/me/invitations/").json() == []
    # Someone else's invitation cannot be accepted.
    assert (
        client_for(experts["weak"])
        .post(f"/api/v1/me/invitations/{mine[0]['id']}/accept/")
        .status_code
        == 404
    )
    for name in ("best", "second"):
        invitation = client_for(experts[name]).get("/api/v1/me/invitations/").json()[0]
        accepted = client_for(experts[name]).post(
            f"/api/v1/me/invitations/{invitation['id']}/accept/"
        )
        assert accepted.status_code == 200, accepted.content
        assert accepted.json()["status"] == "accepted"
    lab_view = client_for(lab_owner).get(f"/api/v1/projects/{project_b.id}/invitations/").json()
    assert [row["status"] for row in lab_view] == ["accepted", "accepted"]

    # Two task slots, two accepted invitees waiting: the others wait.
    assert _claim(client_for, experts["newcomer"], project_b) == 204
    assert _claim(client_for, experts["weak"], project_b) == 204
    assert _claim(client_for, experts["second"], project_b) == 200
    assert _claim(client_for, experts["best"], project_b) == 200
    assert _claim(client_for, experts["newcomer"], project_b) == 204
    served = set(project_b.assignments.values_list("expert_id", flat=True))
    assert served == {experts["best"].pk, experts["second"].pk}


def test_reputation_on_the_capability_ranks_who_is_served_when_work_is_scarce(
    client_for: Client, project_b: Project, experts: dict[str, User]
) -> None:
    Project.objects.filter(pk=project_b.pk).update(redundancy=1)
    project_b.items.filter(is_gold=False).order_by("pk").last().delete()
    project_b.items.filter(is_gold=False).update(target_labels=2)
    # The proven expert asks first; with one slot left, the weaker one waits for them.
    assert _claim(client_for, experts["best"], project_b) == 200
    assert _claim(client_for, experts["weak"], project_b) == 204
    # With nobody stronger waiting, the weaker one is served.
    project_b.items.update(target_labels=3)
    assert _claim(client_for, experts["weak"], project_b) == 200


def test_reputation_is_keyed_on_skills_and_capabilities(
    client_for: Client, staff: User, project_b: Project, experts: dict[str, User]
) -> None:
    from scoring.selectors import expert_reputation

    rows = expert_reputation(expert=experts["best"])
    assert [(row.kind, row.key, row.projects) for row in rows] == [
        ("capability", "Cardiology prefs", 1),
        ("skill", "medicine.cardiology", 1),
    ]


def test_capability_performance_lists_experts_across_projects(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    other_lab_owner: User,
    project_a: Project,
    project_b: Project,
    experts: dict[str, User],
) -> None:
    run = ScoringRun.objects.create(project=project_b, status="succeeded")
    _score(run, experts["best"], 0.8)
    capability = project_b.capability_id
    rows = client_for(lab_owner).get(f"/api/v1/capabilities/{capability}/performance/").json()
    best = next(
        row
        for row in rows
        if row["pseudonym"] == expert_pseudonym(expert=experts["best"], lab_id=lab.id)
    )
    assert (best["projects"], best["n_labels"]) == (2, 80)
    assert best["composite"] == pytest.approx(0.86)
    assert (
        client_for(other_lab_owner)
        .get(f"/api/v1/capabilities/{capability}/performance/")
        .status_code
        == 404
    )


@pytest.mark.parametrize(
    "body",
    [
        {"from_project": "A", "top": 2},
        {"from_project": None, "top": 2},
        {"top": 2},
        {"from_project": 1, "top": 10**9},
        {"from_project": 1, "top": 0},
        {"from_project": 1, "top": -3},
        {"from_project": 1, "top": "5"},
        {"from_project": 1, "top": 2.5},
        {"from_project": 10**12, "top": 2},
        [],
        "invite",
    ],
)
def test_hostile_invitation_bodies_are_400_and_write_nothing(
    client_for: Client, lab_owner: User, project_b: Project, body: Any
) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project_b.id}/invitations/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert not ProjectInvitation.objects.exists()


def test_other_labs_and_experts_cannot_invite(
    client_for: Client,
    lab_viewer: User,
    other_lab: Lab,
    other_lab_owner: User,
    project_a: Project,
    project_b: Project,
    experts: dict[str, User],
) -> None:
    body = {"from_project": project_a.id, "top": 2}
    url = f"/api/v1/projects/{project_b.id}/invitations/"
    assert client_for(other_lab_owner).post(url, body, format="json").status_code == 404
    assert client_for(experts["best"]).post(url, body, format="json").status_code == 404
    assert client_for(lab_viewer).post(url, body, format="json").status_code == 403
    assert APIClient().post(url, body, format="json").status_code == 401
    # A past project of another lab, or the project itself, is not a source.
    theirs = open_project(other_lab, other_lab_owner, items=1)
    for source in (theirs.id, project_b.id):
        response = client_for(project_b.lab.memberships.first().user).post(
            url, {"from_project": source, "top": 2}, format="json"
        )
        assert response.status_code == 400, response.content
    assert not ProjectInvitation.objects.exists()


def test_a_past_project_without_a_scoring_run_is_409(
    client_for: Client, lab: Lab, lab_owner: User, project_b: Project
) -> None:
    unscored = open_project(lab, lab_owner, items=1)
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project_b.id}/invitations/",
        {"from_project": unscored.id, "top": 3},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_scoring_run"


@pytest.mark.parametrize("path", ["abc", "0", "99999999999999999999", "-1"])
def test_hostile_invitation_paths_are_4xx(client_for: Client, expert: User, path: str) -> None:
    client = client_for(expert)
    assert 400 <= client.post(f"/api/v1/me/invitations/{path}/accept/").status_code < 500
    assert 400 <= client.post(f"/api/v1/projects/{path}/invitations/", {}).status_code < 500


def test_invitation_lists_take_a_fixed_number_of_queries(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    project_a: Project,
    project_b: Project,
) -> None:
    # Fixed: the same number of queries for 3 invitations as for 8 (the count itself depends
    # on where sessions live: the database on the embedded default, the cache with Redis).
    extra = [UserFactory() for _ in range(5)]
    run = ScoringRun.objects.get(project=project_a)
    for index, person in enumerate(extra):
        _score(run, person, 0.6 + index / 100)
    client = client_for(lab_owner)
    url = f"/api/v1/projects/{project_b.id}/invitations/"
    counts = []
    for top in (3, 8):
        client.post(url, {"from_project": project_a.id, "top": top}, format="json")
        assert ProjectInvitation.objects.count() == top
        with CaptureQueriesContext(connection) as listing:
            rows = client.get(url).json()
        assert len(rows) == top
        counts.append(len(listing.captured_queries))
    assert counts[0] == counts[1], counts
    invited = client_for(extra[0])
    with CaptureQueriesContext(connection) as mine:
        assert len(invited.get("/api/v1/me/invitations/").json()) == 1
    assert len(mine.captured_queries) <= counts[0]
