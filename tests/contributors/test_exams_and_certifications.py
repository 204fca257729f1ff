"""Exams (timed, sampled, graded on the server, keys never leaving it) and certifications."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from contributors import services
from contributors.eligibility import expert_is_qualified
from contributors.models import (
    Application,
    Certification,
    Exam,
    ExamAttempt,
    ExamQuestion,
    ExpertProfile,
)
from marketplace.models import Lab, User
from tests.contributors.factories import CORRECT_ANSWERS, certify, enable_mfa, give_skill, make_exam
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


@pytest.fixture
def exam(db: Any) -> Exam:
    return make_exam()


def start(client: APIClient, exam: Exam) -> Any:
    return client.post(f"/api/v1/exams/{exam.id}/attempts/")


def answers_for(attempt: dict[str, Any], *, wrong: int = 0) -> dict[str, Any]:
    chosen = {}
    for index, question in enumerate(attempt["questions"]):
        chosen[str(question["id"])] = None if index < wrong else CORRECT_ANSWERS[question["kind"]]
    return chosen


def _key_strings(exam: Exam) -> list[str]:
    keys = []
    for question in ExamQuestion.objects.filter(exam=exam):
        keys.append(json.dumps(question.answer_key))
    return keys


def test_exam_list_shows_published_exams_with_attempt_state(
    client_for: Client, expert: User, exam: Exam
) -> None:
    make_exam(title="draft exam", is_published=False)
    rows = client_for(expert).get("/api/v1/exams/").json()
    assert [(row["id"], row["attempts_left"], row["open_attempt"]) for row in rows] == [
        (exam.id, 2, None)
    ]


def test_attempt_has_a_deadline_and_questions_without_keys(
    client_for: Client, expert: User, exam: Exam
) -> None:
    response = start(client_for(expert), exam)
    assert response.status_code == 201
    body = response.json()
    deadline = timezone.datetime.fromisoformat(body["deadline"].replace("Z", "+00:00"))
    assert timedelta(minutes=19) < deadline - timezone.now() <= timedelta(minutes=20)
    assert len(body["questions"]) == 5
    raw = response.content.decode()
    assert "answer_key" not in raw
    for key in _key_strings(exam):
        assert key not in raw
    assert "ecg|ekg" not in raw.lower()
    pairwise = next(q for q in body["questions"] if q["kind"] == "pairwise")
    assert pairwise["responses"] and pairwise["rubric"][0]["key"] == "safety"


def test_questions_are_a_random_sample_of_the_bank(client_for: Client, expert: User) -> None:
    exam = make_exam(question_count=2, max_attempts=50, cooldown_hours=0)
    client = client_for(expert)
    seen = set()
    for _ in range(12):
        attempt = start(client, exam).json()
        seen.add(tuple(sorted(q["id"] for q in attempt["questions"])))
        client.post(f"/api/v1/attempts/{attempt['id']}/submit/", {"answers": {}}, format="json")
    assert len(seen) > 1  # 10 possible pairs; 12 identical draws would mean no sampling


def test_a_full_pass_auto_certifies_and_qualifies(
    client_for: Client, expert: User, exam: Exam, lab: Lab, lab_owner: User
) -> None:
    project = make_project(lab, lab_owner)
    give_skill(expert, "medicine.cardiology", 3)
    assert not expert_is_qualified(expert=expert, project=project)
    client = client_for(expert)
    attempt = start(client, exam).json()
    response = client.post(
        f"/api/v1/attempts/{attempt['id']}/submit/",
        {"answers": answers_for(attempt)},
        format="json",
    )
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["score"], result["passed"], result["pending_review"]) == (1.0, True, False)
    assert result["wrong_questions"] is None  # this exam gives no feedback
    assert result["certification"]["skill"] == "medicine.cardiology"
    assert result["certification"]["is_active"] is True
    certification = Certification.objects.get(user=expert)
    assert certification.issued_by is None and certification.exam_attempt_id == attempt["id"]
    assert (certification.expires_at - certification.issued_at).days == 365
    assert expert_is_qualified(expert=expert, project=project)


def test_a_fail_gives_feedback_only_when_allowed(client_for: Client, expert: User) -> None:
    exam = make_exam(allows_feedback=True)
    client = client_for(expert)
    attempt = start(client, exam).json()
    result = client.post(
        f"/api/v1/attempts/{attempt['id']}/submit/",
        {"answers": answers_for(attempt, wrong=2)},
        format="json",
    ).json()
    assert result["passed"] is False and result["score"] == pytest.approx(0.6)
    assert result["wrong_questions"] == [q["id"] for q in attempt["questions"][:2]]
    assert not Certification.objects.exists()


def test_a_pass_without_auto_certify_waits_in_the_admin_queue(
    client_for: Client, expert: User, staff: User
) -> None:
    exam = make_exam(auto_certify=False)
    client = client_for(expert)
    attempt = start(client, exam).json()
    result = client.post(
        f"/api/v1/attempts/{attempt['id']}/submit/",
        {"answers": answers_for(attempt)},
        format="json",
    ).json()
    assert (result["passed"], result["pending_review"], result["certification"]) == (
        True,
        True,
        None,
    )
    application = Application.objects.get(user=expert)
    assert application.exam_attempt_id == attempt["id"]
    enable_mfa(staff)
    client_for(staff).post(
        f"/api/v1/admin/applications/{application.id}/approve/", {}, format="json"
    )
    assert Certification.objects.get(user=expert).issued_by == staff


def test_answers_after_the_deadline_are_refused_with_410(
    client_for: Client, expert: User, exam: Exam
) -> None:
    client = client_for(expert)
    attempt = start(client, exam).json()
    ExamAttempt.objects.filter(pk=attempt["id"]).update(
        deadline=timezone.now() - timedelta(seconds=1)
    )
    response = client.post(
        f"/api/v1/attempts/{attempt['id']}/submit/",
        {"answers": answers_for(attempt)},
        format="json",
    )
    assert response.status_code == 410
    assert ExamAttempt.objects.get(pk=attempt["id"]).score is None
    assert not Certification.objects.exists()


def test_a_second_submit_is_409(client_for: Client, expert: User, exam: Exam) -> None:
    client = client_for(expert)
    attempt = start(client, exam).json()
    url = f"/api/v1/attempts/{attempt['id']}/submit/"
    assert client.post(url, {"answers": answers_for(attempt)}, format="json").status_code == 200
    assert client.post(url, {"answers": {}}, format="json").status_code == 409
    assert Certification.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_grade_once(expert: User) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL; SQLite serialises writers anyway")
    exam = make_exam()
    attempt = services.exam_attempt_start(exam=exam, user=expert)
    answers = {
        str(q): CORRECT_ANSWERS[ExamQuestion.objects.get(pk=q).kind] for q in attempt.question_ids
    }
    outcomes: list[str] = []

    def submit() -> None:
        try:
            services.exam_attempt_submit(attempt=attempt, answers=answers)
            outcomes.append("ok")
        except Exception as error:  # the loser's Conflict
            outcomes.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["Conflict", "Conflict", "Conflict", "ok"]
    assert Certification.objects.filter(user=expert).count() == 1


def test_attempt_limits_and_cooldown(client_for: Client, expert: User, exam: Exam) -> None:
    client = client_for(expert)
    first = start(client, exam).json()
    running = start(client, exam)
    assert running.status_code == 409
    assert running.json()["error"]["code"] == "attempt_in_progress"
    client.post(f"/api/v1/attempts/{first['id']}/submit/", {"answers": {}}, format="json")
    cooling = start(client, exam)
    assert cooling.status_code == 429
    assert cooling.json()["error"]["details"]["next_attempt_at"]
    # The cool-down is 24 hours: Retry-After says so in seconds.
    assert 24 * 3600 - 60 <= int(cooling["Retry-After"]) <= 24 * 3600
    ExamAttempt.objects.filter(pk=first["id"]).update(
        submitted_at=timezone.now() - timedelta(hours=25)
    )
    second = start(client, exam)
    assert second.status_code == 201
    client.post(f"/api/v1/attempts/{second.json()['id']}/submit/", {"answers": {}}, format="json")
    ExamAttempt.objects.filter(user=expert).update(
        submitted_at=timezone.now() - timedelta(hours=25)
    )
    exhausted = start(client, exam)
    assert exhausted.status_code == 403
    assert exhausted.json()["error"]["code"] == "no_attempts_left"
    assert ExamAttempt.objects.filter(user=expert).count() == 2


def test_attempts_are_private(
    client_for: Client, expert: User, lab_owner: User, exam: Exam
) -> None:
    attempt = start(client_for(expert), exam).json()
    other = client_for(lab_owner)
    assert other.get(f"/api/v1/attempts/{attempt['id']}/").status_code == 404
    assert (
        other.post(
            f"/api/v1/attempts/{attempt['id']}/submit/", {"answers": {}}, format="json"
        ).status_code
        == 404
    )
    assert ExamAttempt.objects.get(pk=attempt["id"]).submitted_at is None


def test_unpublished_exam_is_404(client_for: Client, expert: User) -> None:
    hidden = make_exam(is_published=False)
    assert start(client_for(expert), hidden).status_code == 404


def test_answer_keys_never_appear_in_any_exam_response(
    client_for: Client, expert: User, exam: Exam
) -> None:
    client = client_for(expert)
    bodies = [client.get("/api/v1/exams/").content]
    attempt_response = start(client, exam)
    bodies.append(attempt_response.content)
    attempt = attempt_response.json()
    bodies.append(client.get(f"/api/v1/attempts/{attempt['id']}/").content)
    bad = client.post(
        f"/api/v1/attempts/{attempt['id']}/submit/", {"answers": "nope"}, format="json"
    )
    assert bad.status_code == 400
    bodies.append(bad.content)
    bodies.append(
        client.post(
            f"/api/v1/attempts/{attempt['id']}/submit/", {"answers": {}}, format="json"
        ).content
    )
    bodies.append(
        client.post(
            f"/api/v1/attempts/{attempt['id']}/submit/", {"answers": {}}, format="json"
        ).content
    )
    for body in bodies:
        text = body.decode()
        assert "answer_key" not in text
        for key in _key_strings(exam):
            assert key not in text


def test_my_certifications_are_my_own(client_for: Client, expert: User, lab_owner: User) -> None:
    certify(expert, "medicine.cardiology")
    assert len(client_for(expert).get("/api/v1/me/certifications/").json()) == 1
    assert client_for(lab_owner).get("/api/v1/me/certifications/").json() == []


def test_admin_certifies_and_revokes_with_mfa_and_qualification_follows_at_once(
    client_for: Client, staff: User, expert: User, lab: Lab, lab_owner: User
) -> None:
    project = make_project(lab, lab_owner)
    give_skill(expert, "medicine.cardiology", 4)
    client = client_for(staff)
    body = {"user": expert.id, "skill": "medicine.cardiology", "level": 3}
    refused = client.post("/api/v1/admin/certifications/", body, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "mfa_required"
    assert not Certification.objects.exists()

    enable_mfa(staff)
    client = client_for(staff)
    created = client.post("/api/v1/admin/certifications/", body, format="json")
    assert created.status_code == 201
    assert expert_is_qualified(expert=expert, project=project)

    revoke_url = f"/api/v1/admin/certifications/{created.json()['id']}/revoke/"
    assert client.post(revoke_url, {}, format="json").status_code == 400  # a reason is required
    revoked = client.post(revoke_url, {"reason": "fraud"}, format="json")
    assert revoked.status_code == 200
    assert revoked.json()["is_active"] is False
    assert not expert_is_qualified(expert=expert, project=project)
    assert client.post(revoke_url, {"reason": "again"}, format="json").status_code == 409
    certification = Certification.objects.get()
    assert (certification.revoked_by, certification.revocation_reason) == (staff, "fraud")


def test_non_staff_cannot_certify(client_for: Client, expert: User) -> None:
    enable_mfa(expert)
    response = client_for(expert).post(
        "/api/v1/admin/certifications/",
        {"user": expert.id, "skill": "medicine.cardiology"},
        format="json",
    )
    assert response.status_code == 403
    assert not Certification.objects.exists()


def test_expiry_disqualifies_immediately_and_the_daily_task_emails_once(
    expert: User, lab: Lab, lab_owner: User, django_capture_on_commit_callbacks: Any
) -> None:
    from contributors.tasks import certifications_expiry_task

    project = make_project(lab, lab_owner)
    give_skill(expert, "medicine.cardiology", 4)
    soon = certify(expert, "medicine.cardiology", days=10)
    assert expert_is_qualified(expert=expert, project=project)
    with django_capture_on_commit_callbacks(execute=True):
        assert certifications_expiry_task.apply().get() == {"reminded": 1, "expired": 0}
        assert certifications_expiry_task.apply().get() == {"reminded": 0, "expired": 0}
    assert "expires soon" in mail.outbox[-1].subject

    Certification.objects.filter(pk=soon.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert not expert_is_qualified(expert=expert, project=project)  # no task needed
    with django_capture_on_commit_callbacks(execute=True):
        assert certifications_expiry_task.apply().get() == {"reminded": 0, "expired": 1}
    assert "expired" in mail.outbox[-1].subject

    # Retaking the exam renews.
    exam = make_exam()
    attempt = services.exam_attempt_start(exam=exam, user=expert)
    answers = {
        str(q): CORRECT_ANSWERS[ExamQuestion.objects.get(pk=q).kind] for q in attempt.question_ids
    }
    services.exam_attempt_submit(attempt=attempt, answers=answers)
    assert expert_is_qualified(expert=expert, project=project)


def test_suspension_needs_mfa_and_stops_qualification(
    client_for: Client, staff: User, expert: User, lab: Lab, lab_owner: User
) -> None:
    project = make_project(lab, lab_owner)
    give_skill(expert, "medicine.cardiology", 4)
    certify(expert, "medicine.cardiology")
    assert (
        client_for(staff)
        .post(f"/api/v1/admin/experts/{expert.id}/suspend/", {"reason": "spam"}, format="json")
        .status_code
        == 403
    )
    enable_mfa(staff)
    client = client_for(staff)
    response = client.post(
        f"/api/v1/admin/experts/{expert.id}/suspend/", {"reason": "spam"}, format="json"
    )
    assert response.status_code == 200 and response.json()["is_suspended"] is True
    assert not expert_is_qualified(expert=expert, project=project)
    assert (
        client.post(
            f"/api/v1/admin/experts/{expert.id}/suspend/", {"reason": "x"}, format="json"
        ).status_code
        == 409
    )
    client.post(
        f"/api/v1/admin/experts/{expert.id}/reinstate/", {"reason": "appeal upheld"}, format="json"
    )
    assert expert_is_qualified(expert=expert, project=project)
    events = list(expert.suspension_events.order_by("id").values_list("action", "actor", "reason"))
    assert events == [("suspend", staff.id, "spam"), ("reinstate", staff.id, "appeal upheld")]
    assert ExpertProfile.objects.get(user=expert).suspended_at is None
