"""Experts: the skill taxonomy, profiles, self-assessed skills and certifications."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

SKILL_KEY_PATTERN = r"^[a-z0-9]+(?:[_-][a-z0-9]+)*(?:\.[a-z0-9]+(?:[_-][a-z0-9]+)*)*$"


class Skill(models.Model):
    """A node of the hierarchical taxonomy: `medicine`, `medicine.cardiology`, ..."""

    key = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(SKILL_KEY_PATTERN, "lowercase words separated by dots")],
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )

    class Meta:
        ordering: ClassVar = ["key"]

    def __str__(self) -> str:
        return self.key

    def is_within(self, ancestor_key: str) -> bool:
        return self.key == ancestor_key or self.key.startswith(f"{ancestor_key}.")


class ExpertProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="expert_profile"
    )
    headline = models.CharField(max_length=200, blank=True)
    bio = models.TextField(blank=True)
    domains = models.JSONField(default=list, blank=True)
    country = models.CharField(max_length=2, blank=True)
    languages = models.JSONField(default=list, blank=True)
    links = models.JSONField(default=list, blank=True)
    availability_hours_per_week = models.PositiveSmallIntegerField(null=True, blank=True)
    # Opt-in: labs may see reputation earned on other labs' projects (never who those were).
    share_reputation = models.BooleanField(default=False)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.TextField(blank=True)
    # Set on an automatic judge's account (the name in settings.AI_JUDGES): never a person,
    # scored like one, never paid.
    ai_judge = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class ExpertSkill(models.Model):
    profile = models.ForeignKey(ExpertProfile, on_delete=models.CASCADE, related_name="skills")
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)], help_text="self-assessed, 1-5"
    )
    # Set only by certification (never by profile edits).
    verified_level = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["profile", "skill"], name="expert_skill_unique"),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=5), name="expert_skill_level_1_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.skill} level {self.level}"

    @property
    def effective_level(self) -> int:
        return self.verified_level if self.verified_level is not None else self.level


class CertificationRole(models.TextChoices):
    EXPERT = "expert", "Expert"
    REVIEWER = "reviewer", "Reviewer"


class Certification(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certifications"
    )
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    role = models.CharField(
        max_length=16, choices=CertificationRole.choices, default=CertificationRole.EXPERT
    )
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revocation_reason = models.TextField(blank=True)
    # Set when the certification came from passing an exam (issued_by is then empty).
    exam_attempt = models.ForeignKey(
        "ExamAttempt", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    expiry_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["user", "skill"]),
            models.Index(fields=["expires_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.user} certified in {self.skill} (level {self.level})"

    def is_active_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > moment


class ApplicationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Application(models.Model):
    """An expert asks to be vetted for a skill (or a project); an admin decides, on record.

    Passing an exam that does not certify automatically also lands here (`exam_attempt`).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="applications"
    )
    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    project = models.ForeignKey(
        "projects.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    statement = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True)
    exam_attempt = models.OneToOneField(
        "ExamAttempt", on_delete=models.SET_NULL, null=True, blank=True, related_name="application"
    )
    status = models.CharField(
        max_length=8, choices=ApplicationStatus.choices, default=ApplicationStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.user} for {self.skill} ({self.status})"


class Exam(models.Model):
    """A qualification test for a skill at a level, authored by admins."""

    skill = models.ForeignKey(Skill, on_delete=models.PROTECT, related_name="exams")
    level = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    question_count = models.PositiveSmallIntegerField(
        default=10, help_text="questions drawn at random from the bank for each attempt"
    )
    pass_mark = models.FloatField(default=0.8, help_text="share of points needed, 0-1")
    time_limit_minutes = models.PositiveIntegerField(default=30)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    cooldown_hours = models.PositiveIntegerField(default=24)
    allows_feedback = models.BooleanField(
        default=False, help_text="tell the expert which questions were wrong"
    )
    auto_certify = models.BooleanField(
        default=True, help_text="a pass certifies at once; otherwise it waits for an admin"
    )
    certification_days = models.PositiveIntegerField(default=365)
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(pass_mark__gte=0, pass_mark__lte=1), name="exam_pass_mark_0_1"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class QuestionKind(models.TextChoices):
    SINGLE_CHOICE = "single_choice", "Single choice"
    MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
    NUMERIC = "numeric", "Numeric (with tolerance)"
    SHORT_TEXT = "short_text", "Short text (exact or regex)"
    PAIRWISE = "pairwise", "Pairwise judgement"


class ExamQuestion(models.Model):
    """A bank question. `answer_key` never leaves the server.

    Answer keys by kind: single_choice `{"option": "b"}`; multiple_choice `{"options": [...]}`;
    numeric `{"value": 3.2, "tolerance": 0.05}`; short_text `{"text": "..."}` (matched after
    trimming, case-insensitive) or `{"regex": "..."}` (full match); pairwise a gold answer in the
    format of docs/API.md, "Answers", graded like gold (docs/SCORING.md section 1) against
    `rubric` (dimension objects as in a project rubric).
    """

    exam = models.ForeignKey(Exam, on_delete=models.CASCADE, related_name="questions")
    kind = models.CharField(max_length=16, choices=QuestionKind.choices)
    prompt = models.TextField()
    options = models.JSONField(default=list, blank=True)
    responses = models.JSONField(default=list, blank=True, help_text="pairwise: the two responses")
    rubric = models.JSONField(default=list, blank=True, help_text="pairwise: dimension objects")
    answer_key = models.JSONField()
    points = models.PositiveSmallIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.kind}: {self.prompt[:60]}"


class ExamAttempt(models.Model):
    exam = models.ForeignKey(Exam, on_delete=models.PROTECT, related_name="attempts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exam_attempts"
    )
    question_ids = models.JSONField(default=list)
    started_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    score = models.FloatField(null=True, blank=True)
    has_passed = models.BooleanField(null=True, blank=True)
    wrong_question_ids = models.JSONField(default=list, blank=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["user", "exam", "-started_at"])]

    def __str__(self) -> str:
        return f"attempt {self.pk} of {self.exam_id} by {self.user_id}"


class SuspensionAction(models.TextChoices):
    SUSPEND = "suspend", "Suspend"
    REINSTATE = "reinstate", "Reinstate"


class SuspensionEvent(models.Model):
    """The audit trail of suspensions: who, when, why, and the evidence behind it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="suspension_events"
    )
    action = models.CharField(max_length=9, choices=SuspensionAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.action} {self.user_id} at {self.created_at:%Y-%m-%d}"
