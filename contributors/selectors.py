"""Reads about experts that other apps use: qualification and lab-stable pseudonyms."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from contributors.models import (
    Application,
    Certification,
    CertificationRole,
    Exam,
    ExpertProfile,
    ExpertSkill,
)

if TYPE_CHECKING:
    from marketplace.models import User


@dataclass(frozen=True)
class ExpertQualifications:
    """What an expert holds right now: effective skill levels and active certifications."""

    is_suspended: bool
    skill_levels: dict[str, int]
    certified_skills: dict[str, int]

    def has_skill(self, skill_key: str, min_level: int, *, include_children: bool) -> bool:
        return any(
            level >= min_level and _within(key, skill_key, include_children)
            for key, level in self.skill_levels.items()
        )

    def has_certification(self, skill_key: str, *, include_children: bool) -> bool:
        return any(_within(key, skill_key, include_children) for key in self.certified_skills)


def _within(key: str, required: str, include_children: bool) -> bool:
    # A certification in a child skill satisfies its parent only where the project says so.
    return key == required or (include_children and key.startswith(f"{required}."))


def expert_qualifications(
    *, expert: User, at: datetime | None = None, profile: ExpertProfile | None = None
) -> ExpertQualifications:
    """`profile`: the expert's profile when the caller already holds it (locked, say)."""
    moment = at or timezone.now()
    if profile is None:
        profile = ExpertProfile.objects.filter(user=expert).first()
    skill_levels: dict[str, int] = {}
    if profile is not None:
        for expert_skill in ExpertSkill.objects.filter(profile=profile).select_related("skill"):
            skill_levels[expert_skill.skill.key] = expert_skill.effective_level
    certified: dict[str, int] = {}
    active = Certification.objects.filter(
        user=expert,
        role=CertificationRole.EXPERT,
        revoked_at__isnull=True,
        expires_at__gt=moment,
    ).select_related("skill")
    for certification in active:
        certified[certification.skill.key] = max(
            certified.get(certification.skill.key, 0), certification.level
        )
    return ExpertQualifications(
        is_suspended=bool(profile and profile.is_suspended),
        skill_levels=skill_levels,
        certified_skills=certified,
    )


def qualifications_meet(qualifications: ExpertQualifications, project: Any) -> bool:
    """Whether held qualifications satisfy a project's requirements (prefetched on `project`)."""
    return requirements_met(
        qualifications, project.required_skills.all(), project.required_certifications.all()
    )


def requirements_met(
    qualifications: ExpertQualifications,
    required_skills: Iterable[Any],
    required_certifications: Iterable[Any],
) -> bool:
    """The same check on requirement rows the caller already has (each with its `skill`)."""
    if qualifications.is_suspended:
        return False
    for requirement in required_skills:
        if not qualifications.has_skill(
            requirement.skill.key,
            requirement.min_level,
            include_children=requirement.include_child_skills,
        ):
            return False
    for requirement in required_certifications:
        if not qualifications.has_certification(
            requirement.skill.key, include_children=requirement.include_child_skills
        ):
            return False
    return True


def expert_is_qualified(*, expert: User, project: Any) -> bool:
    """Skills, active (unexpired, unrevoked) certifications, and not suspended: checked now."""
    return qualifications_meet(expert_qualifications(expert=expert), project)


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
    from contributors.services import exam_eligibility

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
