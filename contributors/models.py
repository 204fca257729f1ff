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
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.TextField(blank=True)
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

    class Meta:
        indexes: ClassVar = [models.Index(fields=["user", "skill"])]

    def __str__(self) -> str:
        return f"{self.user} certified in {self.skill} (level {self.level})"

    def is_active_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > moment
