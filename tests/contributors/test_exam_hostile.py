"""Exam answers a client shapes to crash grading, and retakes after feedback (issue 17)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from contributors.exams import grade_question
from contributors.models import Exam, ExamAttempt, ExamQuestion
from marketplace.models import User
from tests.contributors.factories import CORRECT_ANSWERS, make_exam

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


def start(client: APIClient, exam: Exam) -> dict[str, Any]:
    response = client.post(f"/api/v1/exams/{exam.id}/attempts/")
    assert response.status_code == 201, response.content
    return dict(response.json())


def numeric_question(attempt: dict[str, Any]) -> str:
    return str(next(q["id"] for q in attempt["questions"] if q["kind"] == "numeric"))


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1e400", "-1e400"])
def test_a_huge_numeric_answer_is_refused_and_the_attempt_stays_open(
    client_for: Client, expert: User, number: str
) -> None:
    client = client_for(expert)
    attempt = start(client, make_exam())
    question = numeric_question(attempt)
    body = '{"answers": {"%s": %s}}' % (question, number)  # noqa: UP031
    response = client.post(
        f"/api/v1/attempts/{attempt['id']}/submit/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert [problem["field"] for problem in error["details"]] == [f"answers.{question}"]
    assert ExamAttempt.objects.get(pk=attempt["id"]).submitted_at is None


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("numeric", 10**400),
        ("numeric", -(10**400)),
        ("pairwise", {"preference": "a", "answers": ["safety"]}),
        ("pairwise", {"preference": "a", "answers": {"safety": [10**400, 0]}}),
        ("pairwise", {"preference": "a", "answers": {"safety": {"nested": 1}}}),
        ("pairwise", {"preference": ["a"], "answers": {"safety": [1, 0]}}),
        ("pairwise", {"ranking": [{"a": 1}, [2]], "answers": {"safety": [1, 0]}}),
    ],
    ids=[
        "numeric-huge",
        "numeric-huge-negative",
        "answers-not-an-object",
        "likert-huge",
        "nested-value",
        "preference-not-text",
        "ranking-unhashable",
    ],
)
def test_grading_odd_shapes_and_huge_numbers_earns_nothing(kind: str, answer: Any) -> None:
    exam = make_exam()
    question = ExamQuestion.objects.get(exam=exam, kind=kind)
    if kind == "pairwise":
        question.answer_key = {"ranking": [0, 1], "answers": {"safety": [1, 0]}}
    assert grade_question(question, answer) == 0.0
    assert grade_question(question, CORRECT_ANSWERS[kind]) > 0.0 or kind == "pairwise"


def test_a_retake_with_feedback_draws_questions_not_seen_before(
    client_for: Client, expert: User
) -> None:
    exam = make_exam(allows_feedback=True, max_attempts=3, cooldown_hours=0, question_count=5)
    # A bank of ten: the first attempt sees five, the retake must see the other five.
    extra = ExamQuestion.objects.filter(exam=exam, kind="numeric").get()
    for index in range(5):
        extra.pk = None
        extra.prompt = f"Numeric question {index}"
        extra.save()
    client = client_for(expert)
    first = start(client, exam)
    answers = {str(q["id"]): None for q in first["questions"][:2]}
    result = client.post(
        f"/api/v1/attempts/{first['id']}/submit/", {"answers": answers}, format="json"
    ).json()
    assert len(result["wrong_questions"]) == 5  # unanswered questions are wrong too
    retake = start(client, exam)
    first_ids = {q["id"] for q in first["questions"]}
    retake_ids = {q["id"] for q in retake["questions"]}
    assert len(retake_ids) == 5 and not first_ids & retake_ids


def test_when_the_bank_runs_out_questions_marked_wrong_come_last(
    client_for: Client, expert: User
) -> None:
    exam = make_exam(allows_feedback=True, max_attempts=3, cooldown_hours=0, question_count=4)
    client = client_for(expert)
    first = start(client, exam)  # four of the five
    wrong = first["questions"][0]["id"]
    answers = {str(q["id"]): CORRECT_ANSWERS[q["kind"]] for q in first["questions"][1:]}
    result = client.post(
        f"/api/v1/attempts/{first['id']}/submit/", {"answers": answers}, format="json"
    ).json()
    assert result["wrong_questions"] == [wrong]
    retake_ids = {q["id"] for q in start(client, exam)["questions"]}
    unseen = set(ExamQuestion.objects.filter(exam=exam).values_list("id", flat=True)) - {
        q["id"] for q in first["questions"]
    }
    # The unseen question, then the three answered right; the one marked wrong is left out.
    assert retake_ids == unseen | {q["id"] for q in first["questions"][1:]}
