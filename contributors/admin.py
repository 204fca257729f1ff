from django.contrib import admin

from contributors.models import Certification, ExpertProfile, ExpertSkill, Skill


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "parent"]
    search_fields = ["key", "name"]


class ExpertSkillInline(admin.TabularInline):
    model = ExpertSkill
    extra = 0


@admin.register(ExpertProfile)
class ExpertProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "headline", "country", "suspended_at"]
    search_fields = ["user__email", "headline"]
    inlines = [ExpertSkillInline]


@admin.register(Certification)
class CertificationAdmin(admin.ModelAdmin):
    list_display = ["user", "skill", "level", "role", "issued_at", "expires_at", "revoked_at"]
    list_filter = ["role", "skill"]
    search_fields = ["user__email"]
