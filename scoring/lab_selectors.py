"""Reads for a lab's next project: the best experts of a past project (whom to invite), and
how experts did on a capability across its projects (docs/CAPABILITIES.md)."""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from contributors.selectors import expert_pseudonym
from projects.capabilities.selectors import capability_projects
from projects.models import QualityStop, QualityStopStatus
from scoring.models import ContributorScore, ScoringRun, ScoringRunStatus
from scoring.selectors import latest_succeeded_run, pool_scores


def project_top_experts(*, project: Any, top: int) -> list[dict[str, Any]]:
    """The best experts of a project by its latest scoring run: composite first, then the
    lower bound of their gold. People only (no AI judge), not suspended, not stopped by the
    quality gate there, with a composite; each with the evidence the lab is shown."""

    run = latest_succeeded_run(project=project)
    if run is None:
        return []
    stopped = QualityStop.objects.filter(project=project).exclude(status=QualityStopStatus.REVERSED)
    rows = (
        ContributorScore.objects.filter(
            run=run, composite__isnull=False, is_ai=False, is_suspended=False
        )
        .exclude(expert_id__in=stopped.values("expert_id"))
        .exclude(expert__expert_profile__suspended_at__isnull=False)
        .exclude(expert__expert_profile__ai_judge__gt="")
        .order_by("-composite", "-gold_low", "id")[:top]
    )
    return [
        {
            "expert_id": row.expert_id,
            "rank": rank,
            "evidence": {
                "scoring_run": run.pk,
                "composite": row.composite,
                "tier": row.tier,
                "n_labels": row.n_labels,
                "gold": row.gold_evidence(),
                "agreement": row.agreement_evidence(),
            },
        }
        for rank, row in enumerate(rows, start=1)
    ]


def capability_performance(*, capability: Any) -> list[dict[str, Any]]:
    """How the experts did on a capability across every project built on it (and the ones its
    versions were saved from): per expert, pseudonymous to the capability's lab, the latest
    snapshot of each project pooled as reputation is."""

    project_ids = list(capability_projects(capability=capability).values_list("pk", flat=True))
    latest = (
        ScoringRun.objects.filter(status=ScoringRunStatus.SUCCEEDED, project_id__in=project_ids)
        .values("project_id")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    by_expert: dict[int, list[ContributorScore]] = {}
    experts: dict[int, Any] = {}
    for score in (
        ContributorScore.objects.filter(run_id__in=list(latest), is_ai=False)
        .select_related("run", "expert")
        .order_by("pk")
    ):
        by_expert.setdefault(score.expert_id, []).append(score)
        experts[score.expert_id] = score.expert
    rows = [
        {"pseudonym": expert_pseudonym(expert=experts[expert_id], lab_id=capability.lab_id)}
        | pool_scores(group)
        for expert_id, group in by_expert.items()
    ]
    return sorted(rows, key=lambda row: (-(row["composite"] or 0.0), row["pseudonym"]))
