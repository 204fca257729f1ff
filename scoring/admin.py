"""Scoring runs and their snapshots in the Django admin, read-only: a score is what a run
computed from the labels, so it changes only by running scoring again (docs/SCORING.md)."""

from __future__ import annotations

from django.contrib import admin

from marketplace.admin import ReadOnlyAdmin
from scoring.models import ContributorScore, ScoringRun


class ContributorScoreInline(admin.TabularInline):
    model = ContributorScore
    extra = 0
    can_delete = False
    fields = ("expert", "n_labels", "gold_mean", "agreement_rate", "impact_value", "tier")
    readonly_fields = ("expert", "n_labels", "gold_mean", "agreement_rate", "impact_value", "tier")
    show_change_link = True


@admin.register(ScoringRun)
class ScoringRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "status", "created_at", "finished_at", "engine_version"]
    list_filter = ["status"]
    search_fields = ["project__title"]
    inlines = [ContributorScoreInline]


@admin.register(ContributorScore)
class ContributorScoreAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "expert", "tier", "composite", "is_ai", "is_suspended"]
    list_filter = ["tier", "is_ai", "is_suspended"]
    search_fields = ["expert__email"]
