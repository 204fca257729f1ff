"""Django admin for raw expert data, exam authoring and the vetting actions.

Approve, reject, certify and revoke need the staff member to have MFA enabled, exactly as in
the API; decisions go through the same services, so they are recorded and emailed the same way.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from contributors import services
from contributors.models import (
    Application,
    ApplicationStatus,
    Certification,
    Exam,
    ExamAttempt,
    ExamQuestion,
    ExpertProfile,
    ExpertSkill,
    Skill,
    SuspensionEvent,
)
from marketplace.errors import Conflict
from marketplace.permissions import has_recent_mfa, user_has_mfa


def _mfa_or_refuse(modeladmin: admin.ModelAdmin, request: HttpRequest) -> bool:
    """Admin actions that certify, revoke or suspend need MFA set up and an MFA step in this
    session within STAFF_MFA_MAX_AGE_SECONDS, like the API and the desk."""
    if not user_has_mfa(request.user):
        modeladmin.message_user(
            request, "Enable two-factor authentication before this action.", level=messages.ERROR
        )
        return False
    if not has_recent_mfa(request, request.user):
        modeladmin.message_user(
            request,
            "Confirm with your authenticator code first (/accounts/2fa/reauthenticate/), "
            "then run the action again.",
            level=messages.ERROR,
        )
        return False
    return True


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "parent"]
    search_fields = ["key", "name"]


class ExpertSkillInline(admin.TabularInline):
    model = ExpertSkill
    extra = 0
    readonly_fields = ["verified_level"]


@admin.register(ExpertProfile)
class ExpertProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "headline", "country", "suspended_at"]
    search_fields = ["user__email", "headline"]
    readonly_fields = ["suspended_at", "suspension_reason", "certifications", "applications"]
    inlines = [ExpertSkillInline]

    @admin.display(description="certifications")
    def certifications(self, profile: ExpertProfile) -> str:
        rows = Certification.objects.filter(user=profile.user).select_related("skill")
        return "; ".join(
            f"{row.skill.key} L{row.level} until {row.expires_at:%Y-%m-%d}"
            + (" (revoked)" if row.revoked_at else "")
            for row in rows
        )

    @admin.display(description="applications")
    def applications(self, profile: ExpertProfile) -> str:
        rows = Application.objects.filter(user=profile.user).select_related("skill")
        return "; ".join(f"{row.skill.key}: {row.status}" for row in rows)


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "skill", "level", "status", "created_at", "decided_by"]
    list_filter = ["status", "skill"]
    search_fields = ["user__email"]
    readonly_fields = ["status", "decided_by", "decided_at", "decision_reason", "exam_attempt"]
    actions = ["approve", "reject"]

    def _decide(self, request: HttpRequest, queryset: QuerySet[Application], approve: bool) -> None:
        if not _mfa_or_refuse(self, request):
            return
        done = 0
        for application in queryset.filter(status=ApplicationStatus.PENDING):
            try:
                services.application_decide(
                    application=application,
                    decided_by=request.user,  # type: ignore[arg-type]
                    approve=approve,
                    reason="decided in the Django admin",
                )
                done += 1
            except Conflict:
                continue
        self.message_user(
            request, f"{done} application(s) {'approved' if approve else 'rejected'}."
        )

    @admin.action(description="Approve selected applications")
    def approve(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected applications")
    def reject(self, request: HttpRequest, queryset: QuerySet[Application]) -> None:
        self._decide(request, queryset, approve=False)


@admin.register(Certification)
class CertificationAdmin(admin.ModelAdmin):
    list_display = ["user", "skill", "level", "role", "issued_at", "expires_at", "revoked_at"]
    list_filter = ["role", "skill"]
    search_fields = ["user__email"]
    readonly_fields = ["revoked_at", "revoked_by", "revocation_reason", "exam_attempt"]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Issuing goes through the API or an approval, so it is recorded and MFA-checked.
        return False

    @admin.action(description="Revoke selected certifications")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Certification]) -> None:
        if not _mfa_or_refuse(self, request):
            return
        done = 0
        for certification in queryset.filter(revoked_at__isnull=True):
            services.certification_revoke(
                certification=certification,
                revoked_by=request.user,  # type: ignore[arg-type]
                reason="revoked in the Django admin",
            )
            done += 1
        self.message_user(request, f"{done} certification(s) revoked.")


class ExamQuestionInline(admin.StackedInline):
    model = ExamQuestion
    extra = 1


@admin.register(Exam)
class ExamAdmin(admin.ModelAdmin):
    list_display = ["title", "skill", "level", "question_count", "pass_mark", "is_published"]
    list_filter = ["is_published", "skill"]
    inlines = [ExamQuestionInline]


@admin.register(ExamAttempt)
class ExamAttemptAdmin(admin.ModelAdmin):
    list_display = ["id", "exam", "user", "started_at", "submitted_at", "score", "has_passed"]
    list_filter = ["has_passed", "exam"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(SuspensionEvent)
class SuspensionEventAdmin(admin.ModelAdmin):
    list_display = ["user", "action", "actor", "reason", "created_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
