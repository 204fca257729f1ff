"""Scoring runs: load a project's labels, run the engine, store the snapshots.

A run is idempotent per (project, submission high-water mark): asking again with no new labels
returns the existing run. The engine does the maths on arrays; this module only moves data
between the database and the engine, and records timings per stage."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
from celery import chord
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from contributors.models import ExpertProfile
from marketplace.models import User
from marketplace.webhooks import webhook_emit
from projects.models import Project, QualityStop, QualityStopStatus, Submission
from scoring.engine.shapley import (
    MAX_EXACT_PLAYERS,
    PermutationBatch,
    ShapleyEstimate,
    merge_batches,
    permutation_batch,
    shapley,
)
from scoring.models import ContributorScore, ItemConsensus, ScoringRun, ScoringRunStatus
from scoring.services.agreement import agreement_stage, judge_agreement, rate_with_interval
from scoring.services.gate import consensus_stops
from scoring.services.gold import GoldEvidence, gold_stage
from scoring.services.impact import eval_pairs, impact_scores, impact_utility
from scoring.services.labels import ENGINE_VERSION, Labels, load_labels
from scoring.services.tiers import TierStage, judge_scores, tiers_stage


def scoring_run_create(*, project: Project, created_by: User | None, seed: int = 0) -> ScoringRun:
    """Queue a run, or return the one that already covers every submission."""
    high_water = Submission.objects.filter(project=project).aggregate(top=Max("id"))["top"] or 0
    with transaction.atomic():
        Project.objects.select_for_update().get(pk=project.pk)
        existing = (
            ScoringRun.objects.filter(
                project=project,
                submission_high_water=high_water,
                status__in=[
                    ScoringRunStatus.QUEUED,
                    ScoringRunStatus.RUNNING,
                    ScoringRunStatus.SUCCEEDED,
                ],
            )
            .order_by("-id")
            .first()
        )
        if existing is not None:
            return existing
        run = ScoringRun.objects.create(
            project=project,
            created_by=created_by,
            submission_high_water=high_water,
            seed=seed,
            engine_version=ENGINE_VERSION,
            parameters={
                "shapley_target_se": settings.SCORING_SHAPLEY_TARGET_SE,
                "shapley_max_seconds": settings.SCORING_SHAPLEY_MAX_SECONDS,
                "utility": settings.SCORING_UTILITY,
                "impact_metric": settings.SCORING_IMPACT_METRIC,
            },
        )
        # Cycle broken here: tasks.py wraps this module's services.
        from scoring import tasks  # noqa: PLC0415

        transaction.on_commit(lambda: tasks.scoring_run_execute_task.delay(run.pk))
    return run


def _fail(run_id: int, error: BaseException) -> None:
    ScoringRun.objects.filter(pk=run_id).update(
        status=ScoringRunStatus.FAILED,
        finished_at=timezone.now(),
        error=f"{type(error).__name__}: {error}"[:5000],
    )


def scoring_run_execute(*, run_id: int) -> ScoringRun:
    """Compute and store a run's snapshots. Safe to call again: a finished run is left alone.

    Shapley over more than MAX_EXACT_PLAYERS contributors fans out over Celery workers when
    SCORING_SHAPLEY_FANOUT is on (a broker is configured): rounds of permutation batches run as
    a chord whose body merges them (exactly: sums and sums of squares) and either finishes the
    run or starts another round. Otherwise everything runs here.
    """
    claimed = ScoringRun.objects.filter(pk=run_id, status=ScoringRunStatus.QUEUED).update(
        status=ScoringRunStatus.RUNNING, started_at=timezone.now()
    )
    run = ScoringRun.objects.select_related("project").get(pk=run_id)
    if not claimed:
        return run
    try:
        started = time.perf_counter()
        labels = load_labels(run.project, run.submission_high_water, run.created_at)
        utility, train_counts = impact_utility(run.project, labels)
        n_players = len(labels.experts)
        if (
            utility is not None
            and n_players > MAX_EXACT_PLAYERS
            and settings.SCORING_SHAPLEY_FANOUT
        ):
            everyone = np.ones(n_players, dtype=bool)
            parameters = dict(run.parameters)
            parameters["fanout"] = {
                "v_full": utility.evaluate(everyone, None)[0],
                "v_empty": utility.evaluate(~everyone, None)[0],
                "round": 0,
                "merged": None,
                "started": time.time(),
                "load_seconds": round(time.perf_counter() - started, 4),
            }
            ScoringRun.objects.filter(pk=run.pk).update(parameters=parameters)
            _dispatch_round(run.pk, 0)
            return ScoringRun.objects.get(pk=run.pk)
        loaded = time.perf_counter()
        estimate = None
        if utility is not None:
            estimate = shapley(
                utility,
                n_players,
                seed=run.seed,
                target_standard_error=settings.SCORING_SHAPLEY_TARGET_SE,
                max_seconds=settings.SCORING_SHAPLEY_MAX_SECONDS,
                max_pairs=settings.SCORING_SHAPLEY_MAX_PAIRS,
                truncation_tolerance=settings.SCORING_SHAPLEY_TRUNCATION,
            )
        measured = {
            "load": round(loaded - started, 4),
            "impact": round(time.perf_counter() - loaded, 4),
        }
        _compute(run, labels, estimate, train_counts, measured)
    except Exception as error:
        _fail(run.pk, error)
        raise
    return ScoringRun.objects.get(pk=run.pk)


def _dispatch_round(run_id: int, round_number: int) -> None:
    # Cycle broken here: tasks.py wraps this module's services.
    from scoring import tasks  # noqa: PLC0415

    seeds = [
        round_number * settings.SCORING_SHAPLEY_BATCHES_PER_ROUND + index
        for index in range(settings.SCORING_SHAPLEY_BATCHES_PER_ROUND)
    ]
    header = [
        tasks.shapley_batch_task.s(run_id, seed, settings.SCORING_SHAPLEY_PAIRS_PER_BATCH)
        for seed in seeds
    ]
    chord(header)(tasks.scoring_run_merge_task.s(run_id))


# The last run's utility in this worker process: a run sends each worker many batches, and
# loading the labels and building the utility (per-contributor Hessians) costs about as much
# as a batch. Keyed by the run and the moment its fan-out started (ids can repeat after a
# rollback); a run's labels are fixed by its submission high-water mark.
_batch_utility: dict[tuple[int, float], tuple[Any, int]] = {}


def shapley_batch(*, run_id: int, seed: int, pairs: int) -> dict[str, Any]:
    """One batch of antithetic permutations for a fanned-out run (runs on any worker)."""
    run = ScoringRun.objects.select_related("project").get(pk=run_id)
    fanout = run.parameters["fanout"]
    key = (run.pk, float(fanout["started"]))
    if key not in _batch_utility:
        labels = load_labels(run.project, run.submission_high_water, run.created_at)
        _batch_utility.clear()
        _batch_utility[key] = (impact_utility(run.project, labels)[0], len(labels.experts))
    utility, n_players = _batch_utility[key]
    batch = permutation_batch(
        utility,
        n_players,
        pairs=pairs,
        seed=run.seed * 1_000_003 + seed,
        v_empty=fanout["v_empty"],
        v_full=fanout["v_full"],
        truncation_tolerance=settings.SCORING_SHAPLEY_TRUNCATION,
        bootstrap_seed=run.seed,  # every batch resamples the eval pairs the same way
    )
    return batch.as_dict()


def scoring_run_merge(*, run_id: int, batches: list[dict[str, Any]]) -> ScoringRun:
    """Merge a round's batches; finish the run, or start another round until the standard
    errors meet the target or the time budget is spent."""
    try:
        with transaction.atomic():
            run = ScoringRun.objects.select_for_update().select_related("project").get(pk=run_id)
            if run.status != ScoringRunStatus.RUNNING:
                return run
            parameters = dict(run.parameters)
            fanout = dict(parameters["fanout"])
            merged = [PermutationBatch.from_dict(batch) for batch in batches]
            if fanout["merged"] is not None:
                merged.append(PermutationBatch.from_dict(fanout["merged"]))
            total = merged[0]
            for batch in merged[1:]:
                total = total + batch
            fanout["merged"] = total.as_dict()
            fanout["round"] += 1
            parameters["fanout"] = fanout
            ScoringRun.objects.filter(pk=run.pk).update(parameters=parameters)
        estimate = merge_batches([total], v_empty=fanout["v_empty"], v_full=fanout["v_full"])
        elapsed = time.time() - fanout["started"]
        sampling = estimate.sampling_standard_errors
        assert sampling is not None
        done = (
            float(sampling.max()) < settings.SCORING_SHAPLEY_TARGET_SE
            or elapsed > settings.SCORING_SHAPLEY_MAX_SECONDS
        )
        if not done:
            _dispatch_round(run_id, fanout["round"])
            return run
        labels = load_labels(run.project, run.submission_high_water, run.created_at)
        _, train_counts = impact_utility(run.project, labels)
        measured = {"load": fanout["load_seconds"], "impact": round(elapsed, 4)}
        _compute(run, labels, estimate, train_counts, measured)
    except Exception as error:
        _fail(run_id, error)
        raise
    return ScoringRun.objects.get(pk=run_id)


def _compute(
    run: ScoringRun,
    labels: Labels,
    estimate: ShapleyEstimate | None,
    train_counts: dict[int, int],
    measured: dict[str, float] | None = None,
) -> None:
    """The stages after impact, timed: gold, agreement and consensus, tiers and flags, store.
    `measured`: seconds of the stages done before (loading, Shapley)."""
    project = run.project
    timings: dict[str, float] = dict(measured or {})
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 4)
        clock = now

    gold = gold_stage(labels)
    lap("gold")
    agreement = agreement_stage(run=run, project=project, labels=labels, gold=gold)
    lap("agreement_and_consensus")
    impact = impact_scores(labels, estimate, train_counts)
    stopped = _stopped(project, labels.experts)
    with transaction.atomic():
        # Experts without gold evidence are tested on their agreement or review outcomes (the
        # gate tests gold answers live); whoever it stops shows as stopped in this snapshot.
        for stop in consensus_stops(
            project=project, labels=labels, gold=gold, agreement=agreement, stopped=stopped
        ):
            stopped.add(stop.expert_id)
    tiers = tiers_stage(
        run=run,
        project=project,
        labels=labels,
        gold=gold,
        agreement=agreement,
        impact=impact,
        stopped=stopped,
    )
    judges = _judges_apart(run, project, labels, gold)
    lap("tiers")
    summary = agreement.summary
    if estimate is not None:
        summary["v_full"] = estimate.v_full
        summary["v_empty"] = estimate.v_empty
        summary["shapley"] = {
            "exact": estimate.is_exact,
            "samples": estimate.samples,
            "evaluations": estimate.evaluations,
            "bootstrap_replicates": estimate.bootstrap_replicates,
            "metric": settings.SCORING_IMPACT_METRIC,
            "eval_pairs": len(eval_pairs(project, labels)),
        }
    summary["ai_judges"] = _judge_versions(project, labels)
    store_stage(run, tiers, agreement.consensus, judges, summary, timings)


def _judges_apart(
    run: ScoringRun, project: Project, labels: Labels, gold: dict[int, GoldEvidence]
) -> list[ContributorScore]:
    if not labels.apart:
        return []
    judge_gold = gold_stage(labels, labels.apart)
    agreement: dict[int, dict[str, tuple[float, int]]] = {}
    by_judge: dict[int, list[Submission]] = defaultdict(list)
    for row in labels.apart:
        by_judge[row.expert_id].append(row)
    for judge, rows in by_judge.items():
        agreement[judge] = judge_agreement(project, labels, rows)
    return judge_scores(run=run, labels=labels, gold=judge_gold, agreement=agreement)


def _judge_versions(project: Project, labels: Labels) -> dict[str, Any]:
    """Judge quality by judge version: gold against the human gold answers and agreement with
    the humans, per dimension, with intervals."""
    rows = [row for row in labels.submissions + labels.apart if row.expert_id in labels.judges]
    by_version: dict[tuple[int, str], list[Submission]] = defaultdict(list)
    for row in rows:
        by_version[(row.expert_id, row.judge_version or "unversioned")].append(row)
    report: dict[str, Any] = {}
    for (judge, version), version_rows in sorted(by_version.items()):
        evidence = gold_stage(labels, version_rows).get(judge)
        components = judge_agreement(project, labels, version_rows)
        report.setdefault(str(judge), {})[version] = {
            "labels": len(version_rows),
            "counts": project.ai_judge_counts,
            "gold": None
            if evidence is None
            else {
                "mean": evidence.overall.mean,
                "low": evidence.overall.low,
                "high": evidence.overall.high,
                "n": evidence.overall.n,
                "dimensions": {
                    key: {"mean": p.mean, "low": p.low, "high": p.high, "n": p.n}
                    for key, p in evidence.components.items()
                },
            },
            "agreement_with_humans": {
                key: rate_with_interval(hits, n) for key, (hits, n) in components.items()
            },
        }
    return report


def _stopped(project: Project, experts: list[int]) -> set[int]:
    stopped = set(
        QualityStop.objects.filter(project=project, expert_id__in=experts)
        .exclude(status=QualityStopStatus.REVERSED)
        .values_list("expert_id", flat=True)
    )
    suspended = ExpertProfile.objects.filter(user_id__in=experts, suspended_at__isnull=False)
    return stopped | set(suspended.values_list("user_id", flat=True))


def store_stage(
    run: ScoringRun,
    tiers: TierStage,
    consensus: list[ItemConsensus],
    judges: list[ContributorScore],
    summary: dict[str, Any],
    timings: dict[str, float],
) -> None:
    """Write the snapshots and the run's summary in one transaction, tell the lab's webhooks,
    and after commit release the pending earnings the snapshot clears (payouts)."""
    with transaction.atomic():
        ContributorScore.objects.bulk_create(tiers.scores + judges, batch_size=1000)
        ItemConsensus.objects.bulk_create(consensus, batch_size=2000)
        ScoringRun.objects.filter(pk=run.pk).update(
            status=ScoringRunStatus.SUCCEEDED,
            finished_at=timezone.now(),
            timings=timings,
            summary=summary,
        )

        webhook_emit(
            lab_id=run.project.lab_id,
            event_type="scoring_run.completed",
            data={
                "project": run.project_id,
                "scoring_run": run.pk,
                "contributors": len(tiers.scores),
                "items": len({row.item_id for row in consensus}),
                "dawid_skene": summary.get("dawid_skene"),
            },
        )
        # A deliberate cycle (scoring -> payouts): money follows the evidence this run stored.
        from payouts.tasks import earnings_release_task  # noqa: PLC0415

        transaction.on_commit(lambda: earnings_release_task.delay(run.pk))


def scoring_rescore_open_projects() -> int:
    """Queue a run for every open project with enough labels since its latest run."""
    queued = 0
    for project in Project.objects.filter(status="open"):
        latest = ScoringRun.objects.filter(project=project).order_by("-id").first()
        since = latest.submission_high_water if latest else 0
        fresh = Submission.objects.filter(project=project, id__gt=since).count()
        if fresh >= settings.SCORING_RESCORE_AFTER_LABELS:
            scoring_run_create(project=project, created_by=None)
            queued += 1
    return queued
