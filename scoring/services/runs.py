"""Scoring runs: load a project's labels, run the engine, store the snapshots.

A run is idempotent per (project, submission high-water mark): asking again with no new labels
returns the existing run. The engine does the maths on arrays; this module only moves data
between the database and the engine, and records timings per stage."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from marketplace.models import User
from projects.models import Project, Submission, TaskType
from scoring.ai import ai_contributor_ids
from scoring.engine import agreement as agreement_engine
from scoring.engine.gold import gold_item_score, gold_posterior
from scoring.engine.majority import majority_vote
from scoring.engine.shapley import (
    MAX_EXACT_PLAYERS,
    PermutationBatch,
    ShapleyEstimate,
    merge_batches,
    permutation_batch,
    shapley,
)
from scoring.engine.tiers import (
    FlagInputs,
    composite,
    flags_for,
    percentile_ranks,
    should_suspend,
    tier_for,
)
from scoring.models import ContributorScore, ItemConsensus, ScoringRun, ScoringRunStatus
from scoring.services.agreement import (
    _consensus,
    _dimension_agreement,
    _dimension_alphas,
    _pairwise_agreement,
    _review_agreement,
)
from scoring.services.impact import _utility
from scoring.services.labels import ENGINE_VERSION, PREFERENCES, Labels, _category, _load


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
            },
        )
        from scoring import tasks

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
        labels = _load(run.project, run.submission_high_water)
        utility, train_counts = _utility(run.project, labels)
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
    from celery import chord

    from scoring import tasks

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
        labels = _load(run.project, run.submission_high_water)
        _batch_utility.clear()
        _batch_utility[key] = (_utility(run.project, labels)[0], len(labels.experts))
    utility, n_players = _batch_utility[key]
    batch = permutation_batch(
        utility,
        n_players,
        pairs=pairs,
        seed=run.seed * 1_000_003 + seed,
        v_empty=fanout["v_empty"],
        v_full=fanout["v_full"],
        truncation_tolerance=settings.SCORING_SHAPLEY_TRUNCATION,
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
        done = (
            float(estimate.standard_errors.max()) < settings.SCORING_SHAPLEY_TARGET_SE
            or elapsed > settings.SCORING_SHAPLEY_MAX_SECONDS
        )
        if not done:
            _dispatch_round(run_id, fanout["round"])
            return run
        labels = _load(run.project, run.submission_high_water)
        _, train_counts = _utility(run.project, labels)
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
    """`measured`: seconds of the stages done before (loading, Shapley), for the timings."""
    project = run.project
    timings: dict[str, float] = dict(measured or {})
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 4)
        clock = now

    n_experts = len(labels.experts)

    # 1. Gold.
    gold_scores: dict[int, list[float]] = defaultdict(list)
    for row in labels.submissions:
        gold = labels.gold.get(row.item_id)
        if gold is None:
            continue
        score = gold_item_score(answer=row.answer, gold=gold, dimensions=labels.dimensions)
        if score is not None:
            gold_scores[row.expert_id].append(score)
    posteriors = {expert: gold_posterior(scores) for expert, scores in gold_scores.items()}
    lap("gold")

    # 2. Agreement and 3. consensus on the categorical target (non-gold items).
    work = [row for row in labels.submissions if not labels.items[row.item_id].is_gold]
    categories: list[tuple[Submission, int]] = []
    for row in work:
        category = _category(project, row.answer)
        if category is not None:
            categories.append((row, category))
    item_ids = sorted({row.item_id for row, _ in categories})
    item_position = {item_id: index for index, item_id in enumerate(item_ids)}
    n_classes = max([value for _, value in categories], default=0) + 1
    if project.task_type == TaskType.PAIRWISE:
        n_classes = len(PREFERENCES)
    agreement_rate = np.full(n_experts, np.nan)
    agreement_n = np.zeros(n_experts, dtype=np.int64)
    summary: dict[str, Any] = {"n_labels": len(labels.submissions), "n_contributors": n_experts}
    consensus_rows = []
    if categories:
        items_array = np.array([item_position[row.item_id] for row, _ in categories])
        workers_array = np.array([labels.expert_index[row.expert_id] for row, _ in categories])
        values_array = np.array([value for _, value in categories])
        rates = agreement_engine.leave_one_out_agreement(
            items_array,
            workers_array,
            values_array,
            n_items=len(item_ids),
            n_workers=n_experts,
            n_classes=n_classes,
        )
        agreement_rate, agreement_n = rates.rate, rates.n
        ai_ids = ai_contributor_ids(expert_ids=labels.experts)
        counted = [
            (row, value)
            for row, value in categories
            if project.ai_judge_counts or row.expert_id not in ai_ids
        ]
        result = _consensus(project, labels, counted, item_position, n_experts, n_classes)
        vote = majority_vote(items_array, values_array, n_items=len(item_ids), n_classes=n_classes)
        targets: dict[str, str] = {
            TaskType.PAIRWISE: "preference",
            TaskType.RANKING: "best",
            TaskType.RATING: f"dim:{labels.dimensions[0].key}" if labels.dimensions else "rating",
        }
        target = targets[project.task_type]
        per_item_n = np.bincount(
            np.array([item_position[row.item_id] for row, _ in counted], dtype=np.int64),
            minlength=len(item_ids),
        )
        for item_id, position in item_position.items():
            label = int(result.labels[position])
            if label < 0:
                continue  # only labels that do not count (an AI judge's) on this item
            value: Any = PREFERENCES[label] if project.task_type == TaskType.PAIRWISE else label
            consensus_rows.append(
                ItemConsensus(
                    run=run,
                    item_id=item_id,
                    target=target,
                    value=value,
                    confidence=float(result.confidence[position]),
                    n_labels=int(per_item_n[position]),
                )
            )
        summary["dawid_skene"] = {
            "iterations": result.iterations,
            "agrees_with_majority": float(np.mean(result.labels == vote.labels)),
        }
        matrix = np.full((n_experts, len(item_ids)), np.nan)
        matrix[workers_array, items_array] = values_array
        alpha = agreement_engine.krippendorff_alpha(matrix, "nominal")
        summary["alpha"] = {target: None if np.isnan(alpha) else round(alpha, 6)}
    summary["alpha"] = {**summary.get("alpha", {}), **_dimension_alphas(labels, work)}
    dimension_hits, dimension_n = _dimension_agreement(labels, work, n_experts)
    review_hits, review_n, reviews_used = _review_agreement(
        project, labels, run.submission_high_water, n_experts
    )
    summary["reviews_as_evidence"] = reviews_used
    preference_hits = np.nan_to_num(agreement_rate) * agreement_n
    agreement_n = agreement_n + dimension_n + review_n
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement_rate = np.where(
            agreement_n > 0,
            (preference_hits + dimension_hits + review_hits) / np.maximum(agreement_n, 1),
            np.nan,
        )
    lap("agreement_and_consensus")

    # 4. Impact (computed by the caller: in process, or merged from the workers' batches).
    clock = time.perf_counter()
    if estimate is not None:
        summary["v_full"] = estimate.v_full
        summary["v_empty"] = estimate.v_empty
        summary["shapley"] = {
            "exact": estimate.is_exact,
            "samples": estimate.samples,
            "evaluations": estimate.evaluations,
        }

    # 5. Composite, tiers, suspensions, flags.
    per_label = np.full(n_experts, np.nan)
    if estimate is not None:
        for expert, index in labels.expert_index.items():
            if train_counts.get(expert):
                per_label[index] = estimate.values[index] / train_counts[expert]
    percentiles = percentile_ranks(per_label)
    project_seconds = [row.server_seconds or row.seconds_spent for row in labels.submissions]
    project_median = float(np.median(project_seconds)) if project_seconds else None
    pair_rates = _pairwise_agreement(categories, labels)
    scores = []
    suspensions = []
    # Automatic judges are scored like anyone but never suspended or flagged for speed.
    judges = ai_contributor_ids(expert_ids=labels.experts)
    for expert, index in labels.expert_index.items():
        rows = labels.rows_by_expert[expert]
        posterior = posteriors.get(expert)
        rate = None if np.isnan(agreement_rate[index]) else float(agreement_rate[index])
        impact_pct = None if np.isnan(percentiles[index]) else float(percentiles[index])
        q = composite(posterior.mean if posterior else None, rate, impact_pct)
        gold_n = posterior.n if posterior else 0
        tier = tier_for(q, gold_n)
        suspend = should_suspend(posterior.high if posterior else None, gold_n)
        expert_values = [value for row, value in categories if row.expert_id == expert]
        others = pair_rates.get(expert, {})
        baseline = float(np.mean([rate_ for rate_, _ in others.values()])) if others else None
        flags = flags_for(
            FlagInputs(
                median_seconds=float(
                    np.median([r.server_seconds or r.seconds_spent for r in rows])
                ),
                project_median_seconds=project_median,
                top_answer_share=(
                    Counter(expert_values).most_common(1)[0][1] / len(expert_values)
                    if expert_values
                    else None
                ),
                n_labels=len(expert_values),
                pair_agreement=others,
                mean_agreement_with_others=baseline,
            )
        )
        # Every contributor is a player; one without train labels is a null player (value 0).
        has_impact = estimate is not None
        if expert in judges:
            suspend, flags = False, []
        scores.append(
            ContributorScore(
                run=run,
                expert_id=expert,
                is_ai=expert in judges,
                n_labels=len(rows),
                gold_mean=posterior.mean if posterior else None,
                gold_low=posterior.low if posterior else None,
                gold_high=posterior.high if posterior else None,
                gold_n=gold_n,
                agreement_rate=rate,
                agreement_n=int(agreement_n[index]),
                impact_value=float(estimate.values[index]) if estimate and has_impact else None,
                impact_se=(
                    float(estimate.standard_errors[index]) if estimate and has_impact else None
                ),
                impact_per_label=None if np.isnan(per_label[index]) else float(per_label[index]),
                composite=q,
                tier=tier,
                is_suspended=suspend,
                flags=flags,
            )
        )
        if suspend:
            suspensions.append(
                (
                    expert,
                    {
                        "scoring_run": run.pk,
                        "project": project.pk,
                        "gold_mean": posterior.mean if posterior else None,
                        "gold_high": posterior.high if posterior else None,
                        "gold_n": gold_n,
                    },
                )
            )
    lap("tiers")

    with transaction.atomic():
        ContributorScore.objects.bulk_create(scores, batch_size=1000)
        ItemConsensus.objects.bulk_create(consensus_rows, batch_size=2000)
        ScoringRun.objects.filter(pk=run.pk).update(
            status=ScoringRunStatus.SUCCEEDED,
            finished_at=timezone.now(),
            timings=timings,
            summary=summary,
        )
        _suspend(suspensions)
        from marketplace.webhooks import webhook_emit

        webhook_emit(
            lab_id=run.project.lab_id,
            event_type="scoring_run.completed",
            data={
                "project": run.project_id,
                "scoring_run": run.pk,
                "contributors": len(scores),
                "items": len(consensus_rows),
                "dawid_skene": summary.get("dawid_skene"),
            },
        )


def _suspend(suspensions: list[tuple[int, dict[str, Any]]]) -> None:
    """Automatic suspension (with its evidence); an expert already suspended stays as is."""
    from contributors.models import ExpertProfile
    from contributors.services import expert_suspend

    for expert_id, evidence in suspensions:
        if ExpertProfile.objects.filter(user_id=expert_id, suspended_at__isnull=False).exists():
            continue
        expert_suspend(
            user=User.objects.get(pk=expert_id),
            reason="gold accuracy near chance with confidence (automatic)",
            suspended_by=None,
            evidence=evidence,
        )


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
