"""Stage 4 of a scoring run: composite scores, tiers (overall and per dimension), flags and
suspensions (docs/SCORING.md section 5), one `ContributorScore` per contributor.

What stands in for gold where a project has none:
- rating and ranking work without gold: Dawid-Skene's estimate of the contributor's accuracy
  on the categorical answer (its confusion matrix's diagonal, weighted by the class priors),
  with at least MIN_AGREEMENT_FOR_TIER comparisons of agreement behind it;
- demonstrations and corrections: review outcomes (accepted 1, fixed 0.5, rejected 0), a Beta
  posterior with at least MIN_REVIEWS_FOR_TIER decided reviews.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from projects.models import Project, Submission, TaskType
from scoring.engine.gold import GoldPosterior, chance_level, gold_posterior
from scoring.engine.tiers import MIN_GOLD_FOR_TIER, FlagInputs, composite, flags_for, tier_for
from scoring.models import ContributorScore, ScoringRun, Tier
from scoring.services.agreement import AgreementStage, pairwise_agreement, rate_with_interval
from scoring.services.gold import GoldEvidence
from scoring.services.impact import ImpactScore
from scoring.services.labels import Labels

MIN_AGREEMENT_FOR_TIER = 10
MIN_REVIEWS_FOR_TIER = 3
REVIEW_CREDIT = {"accepted": 1.0, "fixed": 0.5, "rejected": 0.0}
# A component is "inverted" when its gold posterior puts at least this much probability below
# chance: such a contributor is never above probation (an inverted preference is sabotage,
# whatever the other components say).
INVERTED_PROBABILITY = 0.95


@dataclass
class TierStage:
    scores: list[ContributorScore] = field(default_factory=list)


def _posterior_dict(posterior: GoldPosterior | None) -> dict[str, Any] | None:
    if posterior is None:
        return None
    return {"mean": posterior.mean, "low": posterior.low, "high": posterior.high, "n": posterior.n}


def _gold_fields(evidence: GoldEvidence | None) -> dict[str, Any]:
    """The overall gold columns of a ContributorScore (None / 0 without gold evidence)."""
    return {
        "gold_mean": evidence.overall.mean if evidence else None,
        "gold_low": evidence.overall.low if evidence else None,
        "gold_high": evidence.overall.high if evidence else None,
        "gold_n": evidence.overall.n if evidence else 0,
        "gold_n_effective": evidence.n_effective if evidence else 0.0,
    }


def review_evidence(outcomes: Counter[str] | None) -> dict[str, Any] | None:
    if not outcomes:
        return None
    credits = [REVIEW_CREDIT[status] for status, count in outcomes.items() for _ in range(count)]
    posterior = gold_posterior(credits)
    return {
        "accepted": outcomes.get("accepted", 0),
        "fixed": outcomes.get("fixed", 0),
        "rejected": outcomes.get("rejected", 0),
        **(_posterior_dict(posterior) or {}),
    }


def inverted_components(labels: Labels, evidence: GoldEvidence | None) -> list[str]:
    """Components on which the contributor is confidently below chance (on gold)."""
    if evidence is None:
        return []
    chances = {dimension.key: chance_level(dimension) for dimension in labels.dimensions}
    return [
        key
        for key, posterior in evidence.components.items()
        if posterior.n
        and posterior.probability_below(chances.get(key, 0.5)) >= INVERTED_PROBABILITY
    ]


def _dimension_rows(
    project: Project,
    labels: Labels,
    evidence: GoldEvidence | None,
    agreement: dict[str, tuple[float, int]],
    impact_score: float | None,
) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    keys = list(evidence.components) if evidence else []
    keys += [key for key in agreement if key not in keys]
    for key in keys:
        posterior = evidence.components.get(key) if evidence else None
        hits, n = agreement.get(key, (0.0, 0))
        row: dict[str, Any] = {
            "gold": _posterior_dict(posterior),
            "agreement": rate_with_interval(hits, n),
        }
        if project.tiers_by_dimension:
            q = composite(
                posterior.mean if posterior else None,
                hits / n if n else None,
                impact_score,
            )
            row["composite"] = q
            row["tier"] = tier_for(q, evidence.overall.n if evidence else 0)
        rows[key] = row
    return rows


def tiers_stage(
    *,
    run: ScoringRun,
    project: Project,
    labels: Labels,
    gold: dict[int, GoldEvidence],
    agreement: AgreementStage,
    impact: dict[int, ImpactScore],
    stopped: set[int],
) -> TierStage:
    """`stopped`: experts stopped on the project by the quality gate or suspended platform-wide
    (shown as suspended in the snapshot; the gate, not the run, stops people)."""
    stage = TierStage()
    project_seconds = [row.server_seconds or row.seconds_spent for row in labels.submissions]
    project_median = float(np.median(project_seconds)) if project_seconds else None
    pair_rates = pairwise_agreement(agreement.categories)
    for expert, index in labels.expert_index.items():
        rows = labels.rows_by_expert[expert]
        evidence = gold.get(expert)
        rate = agreement.rate(index)
        low, high = agreement.interval(index)
        scored = impact.get(expert)
        impact_score = scored.score if scored else None
        reviews = review_evidence(agreement.review_outcomes.get(index))
        gold_mean, evidence_n = _quality_evidence(project, evidence, agreement, index, reviews)
        q = composite(gold_mean, rate, impact_score)
        tier = tier_for(q, evidence_n)
        inverted = inverted_components(labels, evidence)
        if inverted and tier not in (Tier.PROVISIONAL,):
            tier = Tier.PROBATION
        if expert in stopped:
            tier = Tier.PROBATION  # stopped by the quality gate (or suspended): never above
        flags = _flags(rows, project_median, agreement.categories, expert, pair_rates)
        if inverted:
            flags.append({"flag": "inverted", "components": inverted})
        is_judge = expert in labels.judges
        if is_judge:
            flags = []
        stage.scores.append(
            ContributorScore(
                run=run,
                expert_id=expert,
                is_ai=is_judge,
                n_labels=len(rows),
                **_gold_fields(evidence),
                agreement_rate=rate,
                agreement_low=low,
                agreement_high=high,
                agreement_n=int(agreement.n[index]),
                impact_value=scored.value if scored else None,
                impact_se=scored.se if scored else None,
                impact_per_label=scored.per_label if scored else None,
                impact_shrunk=scored.shrunk if scored else None,
                impact_score=impact_score,
                dimensions=_dimension_rows(
                    project, labels, evidence, agreement.per_component.get(index, {}), impact_score
                ),
                reviews=reviews,
                composite=q,
                tier=tier,
                is_suspended=expert in stopped,
                flags=flags,
            )
        )
    return stage


def _quality_evidence(
    project: Project,
    evidence: GoldEvidence | None,
    agreement: AgreementStage,
    index: int,
    reviews: dict[str, Any] | None,
) -> tuple[float | None, int]:
    """The composite's first component and the evidence count its tier needs (see the module
    docstring): gold where there is gold, else consensus accuracy, else review outcomes."""

    if evidence is not None:
        return evidence.overall.mean, evidence.overall.n
    if project.task_type in (TaskType.DEMONSTRATION, TaskType.CORRECTION):
        if reviews is None:
            return None, 0
        decided = reviews["accepted"] + reviews["fixed"] + reviews["rejected"]
        enough = decided >= MIN_REVIEWS_FOR_TIER
        return reviews["mean"], MIN_GOLD_FOR_TIER if enough else 0
    accuracy = agreement.consensus_accuracy.get(index)
    enough = int(agreement.n[index]) >= MIN_AGREEMENT_FOR_TIER
    return accuracy, MIN_GOLD_FOR_TIER if accuracy is not None and enough else 0


def _flags(
    rows: list[Submission],
    project_median: float | None,
    categories: list[tuple[Submission, int]],
    expert: int,
    pair_rates: dict[int, dict[int, tuple[float, int]]],
) -> list[dict[str, object]]:
    expert_values = [value for row, value in categories if row.expert_id == expert]
    others = pair_rates.get(expert, {})
    baseline = float(np.mean([rate_ for rate_, _ in others.values()])) if others else None
    return flags_for(
        FlagInputs(
            median_seconds=float(np.median([r.server_seconds or r.seconds_spent for r in rows])),
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


def judge_scores(
    *,
    run: ScoringRun,
    labels: Labels,
    gold: dict[int, GoldEvidence],
    agreement: dict[int, dict[str, tuple[float, int]]],
) -> list[ContributorScore]:
    """Rows for AI judges whose labels do not count: gold against the human gold answers and
    agreement with the humans (both per dimension, with intervals); no impact, no composite
    rank among people, never suspended or flagged."""
    rows_by_judge: dict[int, list[Submission]] = {}
    for row in labels.apart:
        rows_by_judge.setdefault(row.expert_id, []).append(row)
    scores = []
    for judge, rows in sorted(rows_by_judge.items()):
        evidence = gold.get(judge)
        components = agreement.get(judge, {})
        hits = sum(value for value, _ in components.values())
        n = sum(count for _, count in components.values())
        rate = rate_with_interval(hits, n)
        q = composite(
            evidence.overall.mean if evidence else None, rate["rate"] if rate else None, None
        )
        dimensions: dict[str, Any] = {}
        keys = list(evidence.components) if evidence else []
        keys += [key for key in components if key not in keys]
        for key in keys:
            posterior = evidence.components.get(key) if evidence else None
            dimension_hits, dimension_n = components.get(key, (0.0, 0))
            dimensions[key] = {
                "gold": _posterior_dict(posterior),
                "agreement": rate_with_interval(dimension_hits, dimension_n),
            }
        scores.append(
            ContributorScore(
                run=run,
                expert_id=judge,
                is_ai=True,
                counts=False,
                n_labels=len(rows),
                **_gold_fields(evidence),
                agreement_rate=rate["rate"] if rate else None,
                agreement_low=rate["low"] if rate else None,
                agreement_high=rate["high"] if rate else None,
                agreement_n=int(n),
                dimensions=dimensions,
                composite=q,
                tier=tier_for(q, evidence.overall.n if evidence else 0),
            )
        )
    return scores
