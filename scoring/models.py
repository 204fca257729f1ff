"""Scoring runs and their snapshots: per-contributor scores and per-item consensus."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models


class Tier(models.TextChoices):
    PLATINUM = "platinum", "Platinum"
    GOLD = "gold", "Gold"
    SILVER = "silver", "Silver"
    BRONZE = "bronze", "Bronze"
    PROBATION = "probation", "Probation"
    PROVISIONAL = "provisional", "Provisional"


# Ranked tiers, lowest first. Provisional (too little gold evidence) is outside the ranking:
# it passes no `min_tier` filter.
TIER_RANK: dict[str, int] = {
    Tier.PROBATION: 0,
    Tier.BRONZE: 1,
    Tier.SILVER: 2,
    Tier.GOLD: 3,
    Tier.PLATINUM: 4,
}


class ScoringRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ScoringRun(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="scoring_runs"
    )
    status = models.CharField(
        max_length=9, choices=ScoringRunStatus.choices, default=ScoringRunStatus.QUEUED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The highest submission id the run saw: runs are idempotent per (project, high-water mark).
    submission_high_water = models.BigIntegerField(default=0)
    seed = models.BigIntegerField(default=0)
    engine_version = models.CharField(max_length=32, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["project", "status", "-id"])]

    def __str__(self) -> str:
        return f"scoring run {self.pk} of project {self.project_id} ({self.status})"


class ContributorScore(models.Model):
    """One contributor's scores in one run. A component without evidence is NULL."""

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="contributor_scores")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    n_labels = models.PositiveIntegerField(default=0)
    gold_mean = models.FloatField(null=True, blank=True)
    gold_low = models.FloatField(null=True, blank=True)
    gold_high = models.FloatField(null=True, blank=True)
    gold_n = models.PositiveIntegerField(default=0)
    # Gold answers weigh less as the gold item ages: the sum of their weights (<= gold_n).
    gold_n_effective = models.FloatField(default=0.0)
    agreement_rate = models.FloatField(null=True, blank=True)
    agreement_low = models.FloatField(null=True, blank=True)
    agreement_high = models.FloatField(null=True, blank=True)
    agreement_n = models.PositiveIntegerField(default=0)
    impact_value = models.FloatField(null=True, blank=True)
    # Standard error of the impact: permutation sampling and eval-set bootstrap combined.
    impact_se = models.FloatField(null=True, blank=True)
    impact_per_label = models.FloatField(null=True, blank=True)
    # Impact per label shrunk toward the project's mean by its own error (empirical Bayes), and
    # the 0..1 score the composite uses (docs/SCORING.md section 5).
    impact_shrunk = models.FloatField(null=True, blank=True)
    impact_score = models.FloatField(null=True, blank=True)
    # Per rubric component (the preference or ranking, each dimension): gold and agreement
    # with their intervals, and the component's tier where the project tiers by dimension.
    dimensions = models.JSONField(default=dict, blank=True)
    # Review outcomes as evidence (demonstrations, corrections, and any reviewed label):
    # counts per outcome and a Beta posterior of the credit (accepted 1, fixed 0.5, rejected 0).
    reviews = models.JSONField(null=True, blank=True)
    composite = models.FloatField(null=True, blank=True)
    tier = models.CharField(max_length=11, choices=Tier.choices, default=Tier.PROVISIONAL)
    is_suspended = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)
    is_ai = models.BooleanField(default=False)
    # False for an AI judge whose labels do not count: scored against human gold and humans,
    # but never a player in anyone's agreement, consensus, impact or percentiles.
    counts = models.BooleanField(default=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["run", "expert"], name="contributor_score_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.expert_id} in run {self.run_id}: {self.tier}"

    def gold_evidence(self) -> dict[str, Any] | None:
        """Gold as every reader shows it: mean, 90% interval and n; None without gold."""
        if self.gold_mean is None:
            return None
        return {
            "mean": self.gold_mean,
            "low": self.gold_low,
            "high": self.gold_high,
            "n": self.gold_n,
        }

    def agreement_evidence(self) -> dict[str, Any] | None:
        """Agreement with peers: rate, 90% interval and comparisons; None without any."""
        if self.agreement_rate is None:
            return None
        return {
            "rate": self.agreement_rate,
            "low": self.agreement_low,
            "high": self.agreement_high,
            "n": self.agreement_n,
        }


class ItemConsensus(models.Model):
    """A run's consensus on one target of one item (`preference`, `ranking`, `dim:<key>`)."""

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="consensus")
    item = models.ForeignKey("projects.Item", on_delete=models.CASCADE, related_name="+")
    target = models.CharField(max_length=80)
    value = models.JSONField()
    confidence = models.FloatField()
    n_labels = models.PositiveIntegerField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["run", "item", "target"], name="consensus_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.target} of item {self.item_id}"
