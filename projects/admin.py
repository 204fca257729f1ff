from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from marketplace.admin import ReadOnlyAdmin
from projects.models import (
    Capability,
    CapabilityGold,
    Dimension,
    GoldAnswer,
    Item,
    Project,
    ProjectInvitation,
    ProjectRequiredCertification,
    ProjectRequiredSkill,
    ProjectStatusChange,
    RubricVersion,
)


class RequiredSkillInline(admin.TabularInline):
    model = ProjectRequiredSkill
    extra = 0


class RequiredCertificationInline(admin.TabularInline):
    model = ProjectRequiredCertification
    extra = 0


class StatusChangeInline(admin.TabularInline):
    model = ProjectStatusChange
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "changed_by", "changed_at", "reason"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "lab", "task_type", "status", "base_rate", "currency"]
    list_filter = ["status", "task_type"]
    search_fields = ["title", "domain"]
    # Status changes go through the services (publish/pause/close), never a raw edit.
    readonly_fields = ["status"]
    inlines = [RequiredSkillInline, RequiredCertificationInline, StatusChangeInline]


class DimensionInline(admin.TabularInline):
    model = Dimension
    extra = 0
    can_delete = False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RubricVersion)
class RubricVersionAdmin(admin.ModelAdmin):
    """Read-only: a rubric change is a new version, made through the API."""

    list_display = ["project", "number", "created_at"]
    inlines = [DimensionInline]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "external_id", "split", "is_gold", "created_at"]
    list_filter = ["split", "is_gold", "source"]
    search_fields = ["external_id"]
    raw_id_fields = ["project"]


@admin.register(GoldAnswer)
class GoldAnswerAdmin(admin.ModelAdmin):
    list_display = ["item", "rubric_version", "created_at"]
    raw_id_fields = ["item"]


@admin.register(Capability)
class CapabilityAdmin(ReadOnlyAdmin):
    """Saved and published by the capability services only (versions never change)."""

    list_display = ("name", "version", "lab", "task_type", "is_published", "created_at")
    list_filter = ("is_published", "task_type")
    search_fields = ("name",)


@admin.register(CapabilityGold)
class CapabilityGoldAdmin(ReadOnlyAdmin):
    """Shared gold: exposures are counted by routing across every project sharing a row."""

    list_display = ("pk", "lab", "split", "exposures", "retired_at", "created_at")
    list_filter = ("split",)


@admin.register(ProjectInvitation)
class ProjectInvitationAdmin(ReadOnlyAdmin):
    list_display = ("project", "expert", "rank", "status", "created_at", "accepted_at")
    list_filter = ("status",)
