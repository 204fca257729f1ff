"""Reads of scoring results that other apps use."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Max, Min, Q

from contributors.models import ExpertProfile
from contributors.selectors import expert_pseudonym, pseudonym_from_secret
from marketplace.models import User
from projects.models import (
    Capability,
    Project,
    ProjectRequiredCertification,
    ProjectRequiredSkill,
)
from scoring.engine.gold import gold_posterior
from scoring.engine.reward_model import quality_weight
from scoring.engine.tiers import TIERS, tier_for
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


def likert_consensus(*, run: ScoringRun, item_ids: list[int]) -> dict[tuple[int, str], Any]:
    """(item id, dimension key) -> the run's quality-weighted likert consensus row."""
    rows = ItemConsensus.objects.filter(run=run, item_id__in=item_ids, target__startswith="likert:")
    return {(row.item_id, row.target.split(":", 1)[1]): row for row in rows}


def contributor_quality_weights(*, run: ScoringRun | None) -> dict[int, float]:
    """expert id -> the quality weight of their labels for training (from the composite)."""

    if run is None:
        return {}
    return {
        expert: quality_weight(composite)
        for expert, composite in ContributorScore.objects.filter(run=run).values_list(
            "expert_id", "composite"
        )
    }


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


@dataclass(frozen=True)
class Reputation:
    """An expert's standing on a skill or a capability, pooled over the projects that required
    that skill or were built on that capability, weighted by evidence."""

    kind: str  # "skill" or "capability"
    key: str  # the skill key, or the capability's name
    capability: int | None  # the capability's first version's id (kind "capability")
    projects: int
    n_labels: int
    gold: dict[str, float | int] | None
    agreement: dict[str, float | int] | None
    composite: float | None
    tier: str


def pool_scores(group: list[ContributorScore]) -> dict[str, Any]:
    """Pool snapshots of several projects. Gold pools the Beta evidence (the sum of g is
    n x (mean x (n + 2) - 1) / n, recovered from each snapshot's posterior mean); agreement and
    the composite are weighted by their counts."""
    gold_scores: list[float] = []
    for score in group:
        if score.gold_mean is None or not score.gold_n:
            continue
        successes = score.gold_mean * (score.gold_n + 2) - 1
        share = min(max(successes / score.gold_n, 0.0), 1.0)
        gold_scores += [share] * score.gold_n
    posterior = gold_posterior(gold_scores) if gold_scores else None
    agreement_n = sum(score.agreement_n for score in group if score.agreement_rate is not None)
    agreement = (
        sum(
            score.agreement_rate * score.agreement_n
            for score in group
            if score.agreement_rate is not None
        )
        / agreement_n
        if agreement_n
        else None
    )
    weighted = [(score.composite, score.n_labels) for score in group if score.composite is not None]
    weight = sum(n for _, n in weighted)
    composite = sum(q * n for q, n in weighted) / weight if weight else None
    gold_n = posterior.n if posterior else 0
    return {
        "projects": len({score.run.project_id for score in group}),
        "n_labels": sum(score.n_labels for score in group),
        "gold": None
        if posterior is None
        else {"mean": posterior.mean, "low": posterior.low, "high": posterior.high, "n": gold_n},
        "agreement": None if agreement is None else {"rate": agreement, "n": agreement_n},
        "composite": composite,
        "tier": tier_for(composite, gold_n),
    }


def project_reputation_keys(
    *, project_ids: list[int]
) -> dict[int, set[tuple[str, str, int | None]]]:
    """What each project counts toward: every skill it required (skills and certifications),
    and the capability it was built on or saved as (by name within its lab, across versions,
    identified by the first version's id). Reputation is keyed on these, not on the free-text
    domain."""

    keys: dict[int, set[tuple[str, str, int | None]]] = {pk: set() for pk in project_ids}
    for model in (ProjectRequiredSkill, ProjectRequiredCertification):
        for project_id, skill_key in model.objects.filter(project_id__in=project_ids).values_list(
            "project_id", "skill__key"
        ):
            keys[project_id].add(("skill", skill_key, None))
    linked = Capability.objects.filter(
        Q(projects__in=project_ids) | Q(source_project_id__in=project_ids)
    ).values_list("lab_id", "name")
    families = {
        (lab_id, name): first
        for lab_id, name, first in Capability.objects.filter(
            Q(*[Q(lab_id=lab_id, name=name) for lab_id, name in set(linked)], _connector=Q.OR)
            if linked
            else Q(pk__in=[])
        )
        .values_list("lab_id", "name")
        .annotate(first=Min("id"))
    }
    rows = Project.objects.filter(pk__in=project_ids).values_list(
        "pk", "capability__lab_id", "capability__name"
    )
    for project_id, lab_id, name in rows:
        if name is not None:
            keys[project_id].add(("capability", name, families[(lab_id, name)]))
    for project_id, lab_id, name in Capability.objects.filter(
        source_project_id__in=project_ids
    ).values_list("source_project_id", "lab_id", "name"):
        keys[project_id].add(("capability", name, families[(lab_id, name)]))
    return keys


def expert_reputation(*, expert: Any, lab_id: int | None = None) -> list[Reputation]:
    """Pool the latest snapshot of each project per skill it required and per capability it
    was built on (a project counts toward each of them).

    `lab_id` limits the evidence to that lab's projects unless the expert opted in to sharing.
    """

    scores = expert_scores(expert=expert)
    if lab_id is not None:
        shares = ExpertProfile.objects.filter(user=expert, share_reputation=True).exists()
        if not shares:
            scores = [score for score in scores if score.run.project.lab_id == lab_id]
    keys = project_reputation_keys(project_ids=[score.run.project_id for score in scores])
    groups: dict[tuple[str, str, int | None], list[ContributorScore]] = {}
    for score in scores:
        for key in keys.get(score.run.project_id, set()):
            groups.setdefault(key, []).append(score)
    order = {"capability": 0, "skill": 1}
    return [
        Reputation(kind=kind, key=key, capability=capability, **pool_scores(group))
        for (kind, key, capability), group in sorted(
            groups.items(), key=lambda entry: (order[entry[0][0]], entry[0][1])
        )
    ]


def reputation_strengths(*, project: Any, expert_ids: set[int]) -> dict[int, float]:
    """How proven each expert is for a project's work, for routing: their pooled composite on
    the projects of the same lab that share the project's capability, or else any of its
    required skills (the latest snapshot of each, weighted by labels); the project's own
    snapshot counts too. Experts without evidence are absent."""
    if not expert_ids:
        return {}
    wanted = project_reputation_keys(project_ids=[project.pk])[project.pk]
    capability_keys = {key for key in wanted if key[0] == "capability"}
    candidates = list(Project.objects.filter(lab_id=project.lab_id).values_list("pk", flat=True))
    keys = project_reputation_keys(project_ids=candidates)
    related = [
        pk for pk, found in keys.items() if found & (capability_keys or wanted) or pk == project.pk
    ]
    latest = (
        ScoringRun.objects.filter(status=ScoringRunStatus.SUCCEEDED, project_id__in=related)
        .values("project_id")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    totals: dict[int, list[float]] = {}
    for expert_id, composite, n_labels in ContributorScore.objects.filter(
        run_id__in=list(latest), expert_id__in=expert_ids, composite__isnull=False
    ).values_list("expert_id", "composite", "n_labels"):
        entry = totals.setdefault(expert_id, [0.0, 0.0])
        entry[0] += float(composite or 0.0) * max(n_labels, 1)
        entry[1] += max(n_labels, 1)
    return {expert_id: total / weight for expert_id, (total, weight) in totals.items()}


def lab_contributor_by_pseudonym(*, lab_id: int, pseudonym: str) -> Any:
    """The expert behind a lab-stable pseudonym, among those who worked for this lab."""

    workers = User.objects.filter(submissions__project__lab_id=lab_id).distinct()
    for worker in workers.only("id", "pseudonym_secret"):
        if pseudonym_from_secret(worker.pseudonym_secret, lab_id) == pseudonym:
            return worker
    return None


def expert_score_history(*, expert: Any) -> dict[int, list[ContributorScore]]:
    """Per project, the expert's snapshots in every succeeded run, oldest first (for charts)."""
    history: dict[int, list[ContributorScore]] = {}
    rows = (
        ContributorScore.objects.filter(expert=expert, run__status=ScoringRunStatus.SUCCEEDED)
        .select_related("run")
        .order_by("run_id")
    )
    for row in rows:
        history.setdefault(row.run.project_id, []).append(row)
    return history


def recent_runs(*, project: Any, limit: int = 10) -> list[ScoringRun]:
    return list(ScoringRun.objects.filter(project=project).order_by("-id")[:limit])


def reviewer_rows(*, run: ScoringRun | None, lab_id: int) -> list[dict[str, Any]]:
    """A run's reviewer summary (agreement with consensus, decisions) under lab pseudonyms."""
    reviewed = (run.summary.get("reviewers") or {}) if run is not None else {}
    users = User.objects.filter(pk__in=[int(pk) for pk in reviewed])
    return [
        {"pseudonym": expert_pseudonym(expert=user, lab_id=lab_id), **reviewed[str(user.pk)]}
        for user in users
    ]


def flagged_scores() -> list[ContributorScore]:
    """Contributors with fraud flags in the latest succeeded run of each project."""
    latest = (
        ScoringRun.objects.filter(status=ScoringRunStatus.SUCCEEDED)
        .values("project_id")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    rows = ContributorScore.objects.filter(run_id__in=list(latest)).select_related(
        "expert", "run__project"
    )
    return [row for row in rows if row.flags]


def hourly_by_tier(
    *, run: ScoringRun | None, pay: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per tier of a run: contributors, active hours and effective pay per hour of released
    work (with bonuses), from `payouts.selectors.effective_hourly_by_expert`'s table."""

    if run is None:
        return []
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "paid": 0, "seconds": 0})
    for expert_id, tier in contributor_tiers(run=run).items():
        row = pay.get(expert_id)
        if row is None:
            continue
        totals[tier]["n"] += 1
        totals[tier]["paid"] += row["released"] + row["bonus"]
        totals[tier]["seconds"] += row["released_seconds"]
    order = [*TIERS, "provisional"]
    return [
        {
            "tier": tier,
            "contributors": int(totals[tier]["n"]),
            "hours": round(totals[tier]["seconds"] / 3600, 2),
            "hourly": int(totals[tier]["paid"] * 3600 // totals[tier]["seconds"])
            if totals[tier]["seconds"]
            else None,
        }
        for tier in order
        if tier in totals
    ]
