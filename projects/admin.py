from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from projects.models import (
    Dimension,
    GoldAnswer,
    Item,
    Project,
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
