"""Writes about experts: profiles, applications, exams, certifications, suspensions.

Past 400 lines on purpose: the expert's lifecycle (profile, application, exam, certification,
suspension) in the order it happens; each step is short and calls the next.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from contributors.exams import grade_question
from contributors.models import (
    Application,
    ApplicationStatus,
    Certification,
    CertificationRole,
    Exam,
    ExamAttempt,
    ExamQuestion,
    ExpertProfile,
    ExpertSkill,
    Skill,
    SuspensionAction,
    SuspensionEvent,
)
from marketplace.errors import Conflict, DomainError, Gone
from marketplace.models import User
from payouts.services import payable_hold

# Profile fields an expert may set. Anything else (verified levels, tiers, staff flags, payout
# data...) is refused by the API before it reaches here.
PROFILE_FIELDS = frozenset(
    {
        "headline",
        "bio",
        "domains",
        "country",
        "languages",
        "links",
        "availability_hours_per_week",
        "share_reputation",
    }
)
EXPIRY_REMINDER_DAYS = 30
# The sample of questions drawn per attempt comes from a CSPRNG: an expert must not be able to
# predict which questions come up.
_sampler = random.SystemRandom()


def expert_notify(*, user: User, subject: str, message: str) -> None:
    """Email one person after commit (other apps tell experts things through this)."""
    _notify(user, subject, message)


def _notify(user: User, subject: str, message: str) -> None:
    """Email after commit: a rolled-back decision must not have told anyone anything."""
    transaction.on_commit(
        lambda: send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
            message=message,
            from_email=None,
            recipient_list=[user.email],
            fail_silently=True,
        )
    )


def profile_get_or_create(*, user: User) -> ExpertProfile:
    profile, _ = ExpertProfile.objects.get_or_create(user=user)
    return profile


def profile_update(*, user: User, data: dict[str, Any]) -> ExpertProfile:
    """Update allowed fields; `skills` replaces the self-assessed set, keeping verified levels."""
    with transaction.atomic():
        ExpertProfile.objects.get_or_create(user=user)
        profile = ExpertProfile.objects.select_for_update().get(user=user)
        for key, value in data.items():
            if key in PROFILE_FIELDS:
                setattr(profile, key, value)
        profile.save()
        if "skills" in data:
            wanted = {row["skill"]: row["level"] for row in data["skills"]}
            skills = {skill.key: skill for skill in Skill.objects.filter(key__in=wanted)}
            ExpertSkill.objects.filter(profile=profile).exclude(
                skill__key__in=list(wanted)
            ).delete()
            for key, level in wanted.items():
                ExpertSkill.objects.update_or_create(
                    profile=profile, skill=skills[key], defaults={"level": level}
                )
    return profile


def application_create(
    *,
    user: User,
    skill: Skill,
    level: int,
    statement: str,
    links: list[str],
    project: Any = None,
) -> Application:
    if Application.objects.filter(
        user=user, skill=skill, status=ApplicationStatus.PENDING, exam_attempt__isnull=True
    ).exists():
        raise Conflict("You already have a pending application for this skill.", code="duplicate")
    return Application.objects.create(
        user=user, skill=skill, level=level, project=project, statement=statement, links=links
    )


def certification_issue(
    *,
    user: User,
    skill: Skill,
    level: int,
    issued_by: User | None,
    days: int = 365,
    role: str = CertificationRole.EXPERT,
    exam_attempt: ExamAttempt | None = None,
) -> Certification:
    """Issue a certification. A renewal is a new row (the audit trail keeps the old one)."""
    now = timezone.now()
    with transaction.atomic():
        certification = Certification.objects.create(
            user=user,
            skill=skill,
            level=level,
            role=role,
            issued_at=now,
            expires_at=now + timedelta(days=days),
            issued_by=issued_by,
            exam_attempt=exam_attempt,
        )
        profile, _ = ExpertProfile.objects.get_or_create(user=user)
        expert_skill, created = ExpertSkill.objects.get_or_create(
            profile=profile, skill=skill, defaults={"level": level, "verified_level": level}
        )
        if not created and (expert_skill.verified_level or 0) < level:
            expert_skill.verified_level = level
            expert_skill.save(update_fields=["verified_level"])
        _notify(
            user,
            f"Certified in {skill.name}",
            f"You are certified in {skill.name} (level {level}) until "
            f"{certification.expires_at:%Y-%m-%d}.",
        )
    return certification


def certification_revoke(
    *, certification: Certification, revoked_by: User, reason: str
) -> Certification:
    # Compare-and-swap: a second revocation keeps the first one's author, time and reason.
    changed = Certification.objects.filter(pk=certification.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by, revocation_reason=reason
    )
    certification.refresh_from_db()
    if not changed:
        raise Conflict("This certification is already revoked.", code="already_revoked")
    _notify(
        certification.user,
        f"Certification in {certification.skill.name} revoked",
        f"Your certification in {certification.skill.name} was revoked: {reason}",
    )
    return certification


def application_decide(
    *,
    application: Application,
    decided_by: User,
    approve: bool,
    reason: str,
    certify: bool = False,
) -> Application:
    """Approve or reject a pending application, once, with who, when and why on record.

    Approving verifies the skill at the requested level; it certifies when asked to, and always
    for an exam pass that was waiting for review.
    """
    with transaction.atomic():
        locked = (
            Application.objects.select_for_update()
            .select_related("skill", "user")
            .get(pk=application.pk)
        )
        if locked.status != ApplicationStatus.PENDING:
            raise Conflict(f"This application was already {locked.status}.", code="already_decided")
        locked.status = ApplicationStatus.APPROVED if approve else ApplicationStatus.REJECTED
        locked.decided_by = decided_by
        locked.decided_at = timezone.now()
        locked.decision_reason = reason
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        if approve:
            if certify or locked.exam_attempt_id is not None:
                days = locked.exam_attempt.exam.certification_days if locked.exam_attempt else 365
                certification_issue(
                    user=locked.user,
                    skill=locked.skill,
                    level=locked.level,
                    issued_by=decided_by,
                    days=days,
                    exam_attempt=locked.exam_attempt,
                )
            else:
                profile, _ = ExpertProfile.objects.get_or_create(user=locked.user)
                expert_skill, _ = ExpertSkill.objects.get_or_create(
                    profile=profile, skill=locked.skill, defaults={"level": locked.level}
                )
                expert_skill.verified_level = max(expert_skill.verified_level or 0, locked.level)
                expert_skill.save(update_fields=["verified_level"])
        verdict = "approved" if approve else "rejected"
        _notify(
            locked.user,
            f"Your application for {locked.skill.name} was {verdict}",
            f"Your application for {locked.skill.name} was {verdict}."
            + (f"\nReason: {reason}" if reason else ""),
        )
    return locked


@dataclass(frozen=True)
class ExamEligibility:
    attempts_used: int
    attempts_left: int
    next_attempt_at: datetime | None
    open_attempt: ExamAttempt | None


def exam_eligibility(*, exam: Exam, user: User, now: datetime | None = None) -> ExamEligibility:
    now = now or timezone.now()
    attempts = list(ExamAttempt.objects.filter(exam=exam, user=user).order_by("-started_at"))
    open_attempt = next((a for a in attempts if a.submitted_at is None and a.deadline > now), None)
    next_at = None
    if attempts and open_attempt is None:
        last_end = attempts[0].submitted_at or attempts[0].deadline
        cooldown_end = last_end + timedelta(hours=exam.cooldown_hours)
        if cooldown_end > now:
            next_at = cooldown_end
    return ExamEligibility(
        attempts_used=len(attempts),
        attempts_left=max(exam.max_attempts - len(attempts), 0),
        next_attempt_at=next_at,
        open_attempt=open_attempt,
    )


def _draw_questions(*, exam: Exam, user: User, bank: list[int]) -> list[int]:
    """The questions of a new attempt: a random sample, least exposed questions first.

    The retake rule: questions this expert was never served come first; then questions served
    before whose result was never shown (an attempt left unsubmitted, or an exam without
    feedback); then, with feedback on, questions the expert was told were right; questions
    the expert was told were wrong come last. So a retake repeats a question whose result the
    expert saw only when the bank has no other question left. Random within each group.
    """
    earlier = ExamAttempt.objects.filter(exam=exam, user=user).only(
        "question_ids", "wrong_question_ids", "submitted_at"
    )
    served: set[int] = set()
    shown_right: set[int] = set()
    shown_wrong: set[int] = set()
    for attempt in earlier:
        served.update(attempt.question_ids)
        if exam.allows_feedback and attempt.submitted_at is not None:
            wrong = set(attempt.wrong_question_ids)
            shown_wrong |= wrong
            shown_right |= set(attempt.question_ids) - wrong

    def exposure(question_id: int) -> int:
        if question_id in shown_wrong:
            return 3
        if question_id in shown_right:
            return 2
        return 1 if question_id in served else 0

    # sorted() is stable: a random order first keeps the choice random within each group.
    ordered = sorted(_sampler.sample(bank, len(bank)), key=exposure)
    chosen = ordered[: min(exam.question_count, len(bank))]
    _sampler.shuffle(chosen)  # the order must not tell which questions are repeats
    return chosen


def exam_attempt_start(*, exam: Exam, user: User) -> ExamAttempt:
    """Start a timed attempt with a fresh random sample of the question bank."""
    with transaction.atomic():
        # One lock per expert serialises their own concurrent starts: two clicks cannot both
        # pass the attempt limit.
        ExpertProfile.objects.get_or_create(user=user)
        ExpertProfile.objects.select_for_update().get(user=user)
        eligibility = exam_eligibility(exam=exam, user=user)
        if eligibility.open_attempt is not None:
            raise DomainError(
                "An attempt of this exam is already running.",
                code="attempt_in_progress",
                status_code=409,
                details={"attempt": eligibility.open_attempt.pk},
            )
        if eligibility.attempts_left <= 0:
            raise DomainError(
                "No attempts left for this exam.", code="no_attempts_left", status_code=403
            )
        if eligibility.next_attempt_at is not None:
            raise DomainError(
                "Wait for the cool-down before the next attempt.",
                code="cooldown",
                status_code=429,
                details={"next_attempt_at": eligibility.next_attempt_at.isoformat()},
            )
        bank = list(exam.questions.values_list("id", flat=True))
        if not bank:
            raise DomainError("This exam has no questions yet.", code="exam_empty")
        sample = _draw_questions(exam=exam, user=user, bank=bank)
        now = timezone.now()
        return ExamAttempt.objects.create(
            exam=exam,
            user=user,
            question_ids=sample,
            started_at=now,
            deadline=now + timedelta(minutes=exam.time_limit_minutes),
        )


def exam_attempt_submit(*, attempt: ExamAttempt, answers: dict[str, Any]) -> ExamAttempt:
    """Grade once. After the deadline: 410. A second submit (even a concurrent one): 409."""
    with transaction.atomic():
        locked = (
            ExamAttempt.objects.select_for_update()
            .select_related("exam__skill", "user")
            .get(pk=attempt.pk)
        )
        if locked.submitted_at is not None:
            raise Conflict("This attempt was already submitted.", code="already_submitted")
        now = timezone.now()
        if now > locked.deadline:
            raise Gone("The time for this attempt is over.", code="deadline_passed")
        questions = {q.id: q for q in locked.exam.questions.filter(id__in=locked.question_ids)}
        earned = 0.0
        possible = 0
        wrong = []
        for question_id in locked.question_ids:
            question = questions.get(question_id)
            if question is None:  # deleted from the bank mid-attempt: not counted
                continue
            share = grade_question(question, answers.get(str(question_id)))
            earned += share * question.points
            possible += question.points
            if share < 1.0:
                wrong.append(question_id)
        locked.score = earned / possible if possible else 0.0
        locked.has_passed = locked.score >= locked.exam.pass_mark
        locked.wrong_question_ids = wrong
        locked.answers = answers
        locked.submitted_at = now
        locked.save()
        if locked.has_passed:
            if locked.exam.auto_certify:
                certification_issue(
                    user=locked.user,
                    skill=locked.exam.skill,
                    level=locked.exam.level,
                    issued_by=None,
                    days=locked.exam.certification_days,
                    exam_attempt=locked,
                )
            else:
                Application.objects.create(
                    user=locked.user,
                    skill=locked.exam.skill,
                    level=locked.exam.level,
                    statement=f"Passed '{locked.exam.title}' with {locked.score:.0%}.",
                    exam_attempt=locked,
                )
    return locked


@dataclass(frozen=True)
class ExpiryReport:
    reminded: int
    expired: int


def certifications_process_expiry(*, now: datetime | None = None) -> ExpiryReport:
    """Daily: remind experts 30 days before expiry, and tell them when a certification lapsed.

    Qualification never waits for this task: routing compares `expires_at` with the clock.
    Each email is sent once (its timestamp is set by a compare-and-swap update).
    """
    now = now or timezone.now()
    reminded = expired = 0
    due = Certification.objects.filter(
        revoked_at__isnull=True,
        reminder_sent_at__isnull=True,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(days=EXPIRY_REMINDER_DAYS),
    ).select_related("user", "skill")
    for certification in due:
        with transaction.atomic():
            if Certification.objects.filter(
                pk=certification.pk, reminder_sent_at__isnull=True
            ).update(reminder_sent_at=now):
                reminded += 1
                _notify(
                    certification.user,
                    f"Your {certification.skill.name} certification expires soon",
                    f"It expires on {certification.expires_at:%Y-%m-%d}. Retake the exam to renew.",
                )
    lapsed = Certification.objects.filter(
        revoked_at__isnull=True, expiry_notified_at__isnull=True, expires_at__lte=now
    ).select_related("user", "skill")
    for certification in lapsed:
        with transaction.atomic():
            if Certification.objects.filter(
                pk=certification.pk, expiry_notified_at__isnull=True
            ).update(expiry_notified_at=now):
                expired += 1
                _notify(
                    certification.user,
                    f"Your {certification.skill.name} certification expired",
                    "Projects that require it no longer route work to you. Retake the exam "
                    "to renew.",
                )
    return ExpiryReport(reminded=reminded, expired=expired)


def expert_suspend(
    *,
    user: User,
    reason: str,
    suspended_by: User | None,
    evidence: dict[str, Any] | None = None,
) -> ExpertProfile:
    """Suspend at once (routing checks it at every claim); `suspended_by` None means scoring."""
    with transaction.atomic():
        ExpertProfile.objects.get_or_create(user=user)
        profile = ExpertProfile.objects.select_for_update().get(user=user)
        if profile.suspended_at is not None:
            raise Conflict("This expert is already suspended.", code="already_suspended")
        profile.suspended_at = timezone.now()
        profile.suspension_reason = reason
        profile.save(update_fields=["suspended_at", "suspension_reason", "updated_at"])
        # A suspended expert's unpaid earnings wait in the held account for an admin's review.

        payable_hold(user=user)
        SuspensionEvent.objects.create(
            user=user,
            action=SuspensionAction.SUSPEND,
            actor=suspended_by,
            reason=reason,
            evidence=evidence or {},
        )
    return profile


def expert_reinstate(*, user: User, reinstated_by: User, reason: str) -> ExpertProfile:
    with transaction.atomic():
        ExpertProfile.objects.get_or_create(user=user)
        profile = ExpertProfile.objects.select_for_update().get(user=user)
        if profile.suspended_at is None:
            raise Conflict("This expert is not suspended.", code="not_suspended")
        profile.suspended_at = None
        profile.suspension_reason = ""
        profile.save(update_fields=["suspended_at", "suspension_reason", "updated_at"])
        SuspensionEvent.objects.create(
            user=user, action=SuspensionAction.REINSTATE, actor=reinstated_by, reason=reason
        )
    return profile


CAPABILITY_SKILL_ROOT = "capabilities"


def capability_exam_create(*, key: str, name: str, source_exams: list[Exam]) -> Exam | None:
    """The certification of a published capability: its own skill (`capabilities.<key>`) and
    one exam on it, whose question bank is the capability's exams' questions (copied once, then
    shared by every lab's project on the capability). A pass certifies in that skill, so an
    expert certifies once and qualifies for every lab's project built on the capability.
    None when the capability has no exam questions to certify on."""
    questions = list(ExamQuestion.objects.filter(exam__in=source_exams).order_by("exam_id", "pk"))
    if not questions:
        return None
    with transaction.atomic():
        root, _ = Skill.objects.get_or_create(
            key=CAPABILITY_SKILL_ROOT, defaults={"name": "Capabilities in the catalogue"}
        )
        skill, _ = Skill.objects.get_or_create(
            key=f"{CAPABILITY_SKILL_ROOT}.{key}",
            defaults={"name": f"Capability: {name}"[:200], "parent": root},
        )
        exam = Exam.objects.create(
            skill=skill,
            level=1,
            title=f"{name}: qualification"[:200],
            description=f"Certifies for every lab's project built on the capability {name}.",
            question_count=min(
                max(source.question_count for source in source_exams), len(questions)
            ),
            pass_mark=max(source.pass_mark for source in source_exams),
            time_limit_minutes=max(source.time_limit_minutes for source in source_exams),
            max_attempts=min(source.max_attempts for source in source_exams),
            cooldown_hours=max(source.cooldown_hours for source in source_exams),
            auto_certify=True,
            is_published=True,
        )
        ExamQuestion.objects.bulk_create(
            ExamQuestion(
                exam=exam,
                kind=question.kind,
                prompt=question.prompt,
                options=question.options,
                responses=question.responses,
                rubric=question.rubric,
                answer_key=question.answer_key,
                points=question.points,
            )
            for question in questions
        )
    return exam
