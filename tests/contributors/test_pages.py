"""Expert onboarding pages and the admin desk's expert work (applications, certifications,
suspensions), with the desk's access rule: staff only (404), and MFA first (403)."""

from __future__ import annotations

import pytest
from django.test import Client

from contributors.models import (
    Application,
    Certification,
    ExpertProfile,
    ExpertSkill,
    Skill,
    SuspensionEvent,
)
from marketplace.models import User
from tests.conftest import browser
from tests.contributors.factories import enable_mfa, make_exam
from tests.marketplace.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(staff: User) -> Client:
    enable_mfa(staff)
    return browser(staff)


def test_checklist_follows_the_experts_progress(expert: User) -> None:
    client = browser(expert)
    html = client.get("/expert/").content.decode()
    assert "0 of 5 done" in html
    response = client.post(
        "/expert/profile/",
        {
            "headline": "Cardiologist",
            "bio": "",
            "domains": "medicine, cardiology",
            "country": "de",
            "languages": "en, de",
            "links": "https://example.org/me",
            "availability_hours_per_week": "10",
            "skill.medicine.cardiology": "4",
        },
    )
    assert response.status_code == 302
    profile = ExpertProfile.objects.get(user=expert)
    assert profile.domains == ["medicine", "cardiology"] and profile.country == "DE"
    assert ExpertSkill.objects.get(profile=profile).level == 4
    assert "2 of 5 done" in client.get("/expert/").content.decode()


def test_profile_errors_are_listed(expert: User) -> None:
    response = browser(expert).post(
        "/expert/profile/", {"headline": "x", "links": "not a url", "country": "DEU"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "links" in html and "country" in html


def test_apply_for_a_skill_and_see_it_listed(expert: User) -> None:
    client = browser(expert)
    response = client.post(
        "/expert/applications/", {"skill": "medicine.cardiology", "level": "3", "statement": "MD"}
    )
    assert response.status_code == 302
    assert Application.objects.get(user=expert).level == 3
    again = client.post("/expert/applications/", {"skill": "medicine.cardiology", "level": "3"})
    assert "already have a pending application" in again.content.decode()


def test_exam_pass_certifies_through_the_page(expert: User) -> None:
    exam = make_exam()
    client = browser(expert)
    assert exam.title in client.get("/expert/exams/").content.decode()
    response = client.post(f"/expert/exams/{exam.pk}/start/")
    assert response.status_code == 302
    attempt_url = response["Location"]
    page = client.get(attempt_url).content.decode()
    form: dict[str, object] = {}
    for question in exam.questions.all():
        name = f"q{question.pk}"
        assert f'name="{name}' in page
        key = question.answer_key
        if question.kind == "single_choice":
            form[name] = key["option"]
        elif question.kind == "multiple_choice":
            form[name] = key["options"]
        elif question.kind == "numeric":
            form[name] = str(key["value"])
        elif question.kind == "short_text":
            form[name] = key.get("text", "ECG")
        elif question.kind == "pairwise":
            form[f"{name}.preference"] = key["preference"]
            for dim, values in (key.get("answers") or {}).items():
                for index, value in enumerate(values):
                    form[f"{name}.dim.{dim}.{index}"] = str(value)
    response = client.post(attempt_url, form)
    assert response.status_code == 302
    result = client.get(attempt_url).content.decode()
    assert "Passed" in result
    assert Certification.objects.filter(user=expert, skill=exam.skill).exists()


def test_someone_elses_attempt_is_404(expert: User) -> None:
    exam = make_exam()
    url = browser(expert).post(f"/expert/exams/{exam.pk}/start/")["Location"]
    assert browser(UserFactory()).get(url).status_code == 404


def test_desk_is_404_for_non_staff_and_403_without_mfa(expert: User, staff: User) -> None:
    for url in (
        "/desk/",
        "/desk/applications/",
        "/desk/certifications/",
        "/desk/suspensions/",
        "/desk/flags/",
        "/desk/payout-runs/",
    ):
        assert browser(expert).get(url).status_code == 404, url
        response = browser(staff).get(url)
        assert response.status_code == 403, url
        assert "Two-factor authentication required" in response.content.decode()


def test_desk_approves_an_application_and_certifies(desk: Client, expert: User) -> None:
    application = Application.objects.create(
        user=expert, skill=Skill.objects.get(key="medicine.cardiology"), level=3, statement="MD"
    )
    html = desk.get("/desk/applications/").content.decode()
    assert expert.email in html
    response = desk.post(
        f"/desk/applications/{application.pk}/decide/",
        {"decision": "approve", "reason": "verified licence", "certify": "on"},
    )
    assert response.status_code == 302
    application.refresh_from_db()
    assert application.status == "approved"
    assert Certification.objects.filter(user=expert, skill__key="medicine.cardiology").exists()


def test_desk_rejection_needs_a_reason(desk: Client, expert: User) -> None:
    application = Application.objects.create(
        user=expert, skill=Skill.objects.get(key="medicine.cardiology"), level=3
    )
    desk.post(f"/desk/applications/{application.pk}/decide/", {"decision": "reject", "reason": ""})
    application.refresh_from_db()
    assert application.status == "pending"


def test_desk_certifies_by_hand_and_revokes(desk: Client, expert: User) -> None:
    response = desk.post(
        "/desk/certifications/",
        {
            "email": expert.email,
            "skill": "medicine.oncology",
            "level": "2",
            "role": "reviewer",
            "days": "30",
        },
    )
    assert response.status_code == 302
    certification = Certification.objects.get(user=expert)
    assert certification.role == "reviewer"
    desk.post(f"/desk/certifications/{certification.pk}/revoke/", {"reason": "audit"})
    certification.refresh_from_db()
    assert certification.revoked_at is not None and certification.revocation_reason == "audit"


def test_desk_suspends_and_reinstates_with_history(desk: Client, expert: User) -> None:
    desk.post(
        "/desk/suspensions/change/",
        {"email": expert.email, "reason": "copying", "action": "suspend"},
    )
    assert ExpertProfile.objects.get(user=expert).suspended_at is not None
    html = desk.get("/desk/suspensions/").content.decode()
    assert "copying" in html
    desk.post(
        "/desk/suspensions/change/",
        {"email": expert.email, "reason": "cleared", "action": "reinstate"},
    )
    assert ExpertProfile.objects.get(user=expert).suspended_at is None
    assert SuspensionEvent.objects.filter(user=expert).count() == 2


def test_desk_forms_need_csrf(staff: User, expert: User) -> None:
    enable_mfa(staff)
    client = browser(staff, csrf=True)
    response = client.post(
        "/desk/suspensions/change/", {"email": expert.email, "reason": "x", "action": "suspend"}
    )
    assert response.status_code == 403
    assert not SuspensionEvent.objects.exists()


def test_desk_releases_or_forfeits_held_money_of_a_suspended_expert(
    desk: Client, expert: User, lab: object, lab_owner: User
) -> None:
    from payouts.models import AccountKind
    from payouts.services.ledger import balance_of
    from tests.payouts.factories import book_earning, fund_project
    from tests.projects.factories import make_project

    project = make_project(lab, lab_owner)
    fund_project(project, 100_000)
    book_earning(project, expert, 1_234, "earning:held-page")
    desk.post(
        "/desk/suspensions/change/", {"email": expert.email, "reason": "x", "action": "suspend"}
    )
    assert "12.34 USD" in desk.get("/desk/suspensions/").content.decode()
    desk.post(f"/desk/held/{expert.pk}/", {"action": "release"})
    assert balance_of(kind=AccountKind.EXPERT_HELD, currency="usd", user=expert) == 0
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=expert) == 1_234
