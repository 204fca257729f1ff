"""Skills, the expert profile's allow-list, applications and the admin vetting queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from contributors.models import Application, Certification, ExpertProfile, ExpertSkill
from marketplace.models import User
from tests.conftest import mfa_reauthenticate_page
from tests.contributors.factories import enable_mfa, give_skill

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


def test_skill_taxonomy_is_seeded_and_hierarchical(client_for: Client, expert: User) -> None:
    skills = client_for(expert).get("/api/v1/skills/").json()
    keys = {row["key"] for row in skills}
    assert len(keys) >= 40
    for root in (
        "software",
        "medicine",
        "law",
        "finance",
        "math",
        "science",
        "writing",
        "language",
    ):
        assert root in keys
    cardiology = next(row for row in skills if row["key"] == "medicine.cardiology")
    assert cardiology["parent"] == "medicine"
    assert APIClient().get("/api/v1/skills/").status_code == 401


def test_profile_edit_within_the_allow_list(client_for: Client, expert: User) -> None:
    client = client_for(expert)
    assert client.get("/api/v1/me/profile/").json()["skills"] == []
    response = client.patch(
        "/api/v1/me/profile/",
        {
            "headline": "Cardiologist, 12 years",
            "country": "de",
            "languages": ["de", "en"],
            "availability_hours_per_week": 10,
            "links": ["https://example.org/cv"],
            "skills": [
                {"skill": "medicine.cardiology", "level": 4},
                {"skill": "language.de", "level": 5},
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["country"] == "DE"
    assert {(row["skill"], row["level"], row["verified_level"]) for row in body["skills"]} == {
        ("medicine.cardiology", 4, None),
        ("language.de", 5, None),
    }


@pytest.mark.parametrize(
    "forbidden",
    [
        {"verified_level": 5},
        {"tier": "platinum"},
        {"is_staff": True},
        {"payout_account": "acct_123"},
        {"suspended_at": None},
        {"skills": [{"skill": "medicine.cardiology", "level": 3, "verified_level": 5}]},
    ],
)
def test_profile_refuses_fields_outside_the_allow_list(
    client_for: Client, expert: User, forbidden: dict[str, Any]
) -> None:
    client = client_for(expert)
    client.patch("/api/v1/me/profile/", {"headline": "before"}, format="json")
    response = client.patch(
        "/api/v1/me/profile/", {"headline": "after", **forbidden}, format="json"
    )
    if "skills" in forbidden:
        # Nested extras are ignored by the nested serializer, but verified levels never change.
        assert ExpertSkill.objects.filter(verified_level__isnull=False).count() == 0
        return
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == next(iter(forbidden))
    profile = ExpertProfile.objects.get(user=expert)
    assert profile.headline == "before"
    assert User.objects.get(pk=expert.pk).is_staff is False


def test_profile_skill_edits_keep_verified_levels(client_for: Client, expert: User) -> None:
    expert_skill = give_skill(expert, "medicine.cardiology", 3)
    expert_skill.verified_level = 3
    expert_skill.save()
    client_for(expert).patch(
        "/api/v1/me/profile/",
        {"skills": [{"skill": "medicine.cardiology", "level": 5}]},
        format="json",
    )
    expert_skill.refresh_from_db()
    assert (expert_skill.level, expert_skill.verified_level) == (5, 3)


def test_profile_validation(client_for: Client, expert: User) -> None:
    response = client_for(expert).patch(
        "/api/v1/me/profile/",
        {"skills": [{"skill": "astrology", "level": 6}], "country": "Germany", "links": ["nope"]},
        format="json",
    )
    assert response.status_code == 400
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert fields == {"skills[0].skill", "skills[0].level", "country", "links[0]"}


def test_expert_applies_and_sees_only_their_applications(
    client_for: Client, expert: User, lab_owner: User
) -> None:
    client = client_for(expert)
    response = client.post(
        "/api/v1/applications/",
        {
            "skill": "medicine.cardiology",
            "level": 4,
            "statement": "Board certified.",
            "links": ["https://example.org"],
        },
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    again = client.post("/api/v1/applications/", {"skill": "medicine.cardiology"}, format="json")
    assert again.status_code == 409
    other = client_for(lab_owner).get("/api/v1/applications/").json()
    assert other["count"] == 0
    assert client.get("/api/v1/applications/").json()["count"] == 1


def test_applying_for_a_project_that_is_not_open_is_404(client_for: Client, expert: User) -> None:
    response = client_for(expert).post(
        "/api/v1/applications/", {"skill": "medicine.cardiology", "project": 99999}, format="json"
    )
    assert response.status_code == 404
    assert not Application.objects.exists()


@pytest.fixture
def application(expert: User) -> Application:
    from contributors.models import Skill

    return Application.objects.create(
        user=expert, skill=Skill.objects.get(key="medicine.cardiology"), level=4, statement="hi"
    )


def test_admin_queue_is_for_staff(
    client_for: Client, application: Application, staff: User, expert: User
) -> None:
    rows = client_for(staff).get("/api/v1/admin/applications/?status=pending").json()["results"]
    assert [row["id"] for row in rows] == [application.id]
    assert rows[0]["expert"]["email"] == expert.email
    assert client_for(expert).get("/api/v1/admin/applications/").status_code == 403
    assert APIClient().get("/api/v1/admin/applications/").status_code == 401
    assert client_for(staff).get("/api/v1/admin/applications/?status=maybe").status_code == 400


def test_staff_without_mfa_cannot_decide(
    client_for: Client, application: Application, staff: User
) -> None:
    response = client_for(staff).post(
        f"/api/v1/admin/applications/{application.id}/approve/", {}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "mfa_required"
    assert Application.objects.get(pk=application.pk).status == "pending"


def test_approval_is_recorded_verifies_the_skill_and_emails_the_expert(
    client_for: Client,
    application: Application,
    staff: User,
    expert: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    enable_mfa(staff)
    client = client_for(staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/admin/applications/{application.id}/approve/",
            {"reason": "solid"},
            format="json",
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["decided_by"], body["decision_reason"]) == (
        "approved",
        staff.email,
        "solid",
    )
    assert body["decided_at"]
    assert ExpertSkill.objects.get(profile__user=expert).verified_level == 4
    assert not Certification.objects.exists()
    assert mail.outbox[-1].to == [expert.email] and "approved" in mail.outbox[-1].subject
    second = client.post(
        f"/api/v1/admin/applications/{application.id}/reject/", {"reason": "x"}, format="json"
    )
    assert second.status_code == 409


def test_approval_can_certify(
    client_for: Client, application: Application, staff: User, expert: User
) -> None:
    enable_mfa(staff)
    client_for(staff).post(
        f"/api/v1/admin/applications/{application.id}/approve/", {"certify": True}, format="json"
    )
    certification = Certification.objects.get(user=expert)
    assert (certification.level, certification.issued_by) == (4, staff)


def test_rejection_needs_a_reason(
    client_for: Client, application: Application, staff: User
) -> None:
    enable_mfa(staff)
    client = client_for(staff)
    assert (
        client.post(
            f"/api/v1/admin/applications/{application.id}/reject/", {}, format="json"
        ).status_code
        == 400
    )
    response = client.post(
        f"/api/v1/admin/applications/{application.id}/reject/",
        {"reason": "no evidence"},
        format="json",
    )
    assert response.json()["status"] == "rejected"
    assert not ExpertSkill.objects.exists()


def test_django_admin_actions_need_mfa(client: Any, application: Application, staff: User) -> None:
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    url = "/admin/contributors/application/"
    client.post(url, {"action": "approve", "_selected_action": [application.id]})
    assert Application.objects.get(pk=application.pk).status == "pending"
    enable_mfa(staff)
    # TOTP on the account is not enough: this session has not passed an MFA step yet.
    client.post(url, {"action": "approve", "_selected_action": [application.id]})
    assert Application.objects.get(pk=application.pk).status == "pending"
    mfa_reauthenticate_page(client, staff)
    client.post(url, {"action": "approve", "_selected_action": [application.id]})
    assert Application.objects.get(pk=application.pk).status == "approved"
