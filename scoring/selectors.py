"""Reads of scoring results that other apps use."""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from scoring.models import ContributorScore, ItemConsensus, ScoringRun, ScoringRunStatus, Tier


def latest_succeeded_run(*, project: Any) -> ScoringRun | None:
    return (
        ScoringRun.objects.filter(project=project, status=ScoringRunStatus.SUCCEEDED)
        .order_by("-id")
        .first()
    )


def contributor_tier(*, expert: Any, project: Any) -> str:
    """The expert's tier in the project's latest succeeded run; provisional (x1.0) before any."""
    run = latest_succeeded_run(project=project)
    if run is None:
        return Tier.PROVISIONAL
    tier = (
        ContributorScore.objects.filter(run=run, expert=expert)
        .values_list("tier", flat=True)
        .first()
    )
    return tier or Tier.PROVISIONAL


def contributor_tiers(*, run: ScoringRun | None) -> dict[int, str]:
    """expert id -> tier in a run (empty without a run)."""
    if run is None:
        return {}
    return dict(ContributorScore.objects.filter(run=run).values_list("expert_id", "tier"))


def item_consensus(
    *, run: ScoringRun, item_ids: list[int], target: str
) -> dict[int, ItemConsensus]:
    rows = ItemConsensus.objects.filter(run=run, item_id__in=item_ids, target=target)
    return {row.item_id: row for row in rows}


def contributor_rows(*, run: ScoringRun | None) -> list[ContributorScore]:
    if run is None:
        return []
    return list(
        ContributorScore.objects.filter(run=run)
        .select_related("expert")
        .order_by("-composite", "id")
    )


def expert_scores(*, expert: Any) -> list[ContributorScore]:
    """The expert's score in the latest succeeded run of each project they worked on."""
    latest_runs = (
        ScoringRun.objects.filter(
            status=ScoringRunStatus.SUCCEEDED, contributor_scores__expert=expert
        )
        .values("project_id")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    return list(
        ContributorScore.objects.filter(run_id__in=list(latest_runs), expert=expert)
        .select_related("run__project")
        .order_by("-run_id")
    )
