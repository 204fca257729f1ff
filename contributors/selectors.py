"""Reads about experts that other apps use: lab-stable pseudonyms, queues, exams.

Who may be served work (skills, certifications, suspension) is `contributors.eligibility`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch, QuerySet

from contributors.models import (
    Application,
    Certification,
    Exam,
    ExpertProfile,
    ExpertSkill,
)
from contributors.services import exam_eligibility

if TYPE_CHECKING:
    from marketplace.models import User


def expert_pseudonym(*, expert: User, lab_id: int) -> str:
    """The name a lab sees for an expert: stable for that lab, different for every other lab."""
    return pseudonym_from_secret(expert.pseudonym_secret, lab_id)


def pseudonym_from_secret(secret: str, lab_id: int) -> str:
    digest = hmac.new(secret.encode(), f"lab:{lab_id}".encode(), hashlib.sha256).digest()
    return "expert-" + base64.b32encode(digest[:10]).decode().lower()


def expert_profile(*, expert: User) -> ExpertProfile:
    """The profile with its skills (created empty on first access by the profile service)."""
    profile = (
        ExpertProfile.objects.filter(user=expert)
        .select_related("user")
        .prefetch_related(Prefetch("skills", queryset=ExpertSkill.objects.select_related("skill")))
        .first()
    )
    return profile if profile is not None else ExpertProfile(user=expert)


def applications_of(*, expert: User) -> QuerySet[Application]:
    return Application.objects.filter(user=expert).select_related("skill").order_by("-created_at")


def application_queue(*, status: str | None) -> QuerySet[Application]:
    rows = Application.objects.select_related("skill", "user", "decided_by").order_by("created_at")
    return rows.filter(status=status) if status else rows


@dataclass(frozen=True)
class ExamRow:
    id: int
    title: str
    description: str
    skill: Any
    level: int
    question_count: int
    pass_mark: float
    time_limit_minutes: int
    max_attempts: int
    cooldown_hours: int
    allows_feedback: bool
    attempts_used: int
    attempts_left: int
    next_attempt_at: datetime | None
    open_attempt: int | None


def exams_for(*, expert: User) -> list[ExamRow]:
    rows = []
    exams = Exam.objects.filter(is_published=True).select_related("skill").order_by("skill__key")
    for exam in exams:
        eligibility = exam_eligibility(exam=exam, user=expert)
        rows.append(
            ExamRow(
                id=exam.id,
                title=exam.title,
                description=exam.description,
                skill=exam.skill,
                level=exam.level,
                question_count=exam.question_count,
                pass_mark=exam.pass_mark,
                time_limit_minutes=exam.time_limit_minutes,
                max_attempts=exam.max_attempts,
                cooldown_hours=exam.cooldown_hours,
                allows_feedback=exam.allows_feedback,
                attempts_used=eligibility.attempts_used,
                attempts_left=eligibility.attempts_left,
                next_attempt_at=eligibility.next_attempt_at,
                open_attempt=eligibility.open_attempt.pk if eligibility.open_attempt else None,
            )
        )
    return rows


def certifications_of(*, expert: User) -> QuerySet[Certification]:
    return Certification.objects.filter(user=expert).select_related("skill").order_by("-issued_at")
