"""Gray-zone calibration of the live feed (issue 18): how often auto-accepted events turn out
wrong in the audit sample, with a 95% Wilson interval, and the gray zone that would hold that
rate under the lab's target.

Why the audit sample: `feed_audit_rate` of auto-accepted events, drawn uniformly whatever
their confidence, become items that experts label; they are an unbiased sample of what the
feed auto-accepts. Gray-zone items are not: every one of them is labelled, and they sit where
the model is least sure, so they are left out.

An audited event is *wrong* when at least half of its counted labels say the model's output
(the event's first response) was not acceptable:
- pairwise: the preference is "b" (the other response is better; a tie is not wrong);
- ranking: the first response is not ranked first;
- rating: the rubric-weighted mean of its dimensions, each on a 0..1 scale, is below 0.5;
- correction: the expert changed the text (ignoring surrounding white space);
- demonstration: there is no output to judge, so no verdict.
An event counts once it has at least one counted label (`relabel.counted_submissions`).
A half-and-half split counts as wrong: a disagreement is not a confirmation.

Recommendation: the gray zone can only be *widened* from the audit sample (nothing inside
the zone was auto-accepted, so nothing there was audited). For every pair of thresholds
(low' <= low, high' >= high) taken at the judged events' confidences, the events still
auto-accepted are those below low' or above high'; we keep the pairs whose Wilson upper bound
on the error rate is at most the target and pick the one that auto-accepts the most audited
events (then the one closest to the current zone). The audit sample is uniform, so the share
of audited events kept estimates the share of all auto-accepted events kept.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from django.db import transaction

from marketplace.errors import DomainError
from projects.answers import dimension_specs
from projects.evolution import normalised
from projects.intervals import Z95, proportion, wilson
from projects.models import DimensionKind, FeedDecision, FeedEvent, Project, TaskType
from projects.relabel import counted_submissions

# Candidate thresholds per side at most (quantiles of the judged confidences beyond this).
MAX_CANDIDATES = 200
VERDICT_RULE = (
    "An audited event is wrong when at least half of its counted labels reject the model's "
    "output (pairwise: 'b' preferred; ranking: the first response not ranked first; rating: "
    "weighted mean below 0.5; correction: the text was changed)."
)


def _label_is_wrong(
    project: Project, answer: dict[str, Any], specs: Any, original: str
) -> bool | None:
    if project.task_type == TaskType.PAIRWISE:
        return answer.get("preference") == "b"
    if project.task_type == TaskType.RANKING:
        ranking = answer.get("ranking")
        return isinstance(ranking, list) and bool(ranking) and ranking[0] != 0
    if project.task_type == TaskType.CORRECTION:
        return str(answer.get("text", "")).strip() != original.strip()
    if project.task_type == TaskType.RATING:
        total = weight = 0.0
        for spec in specs:
            if spec.kind == DimensionKind.CHOICE:
                continue
            score = normalised(
                spec.kind,
                spec.min_value,
                spec.max_value,
                (answer.get("answers") or {}).get(spec.key),
            )
            if score is not None:
                total += spec.weight * score
                weight += spec.weight
        return None if weight == 0 else total / weight < 0.5
    return None


def audited_verdicts(*, project: Project) -> tuple[list[tuple[float, bool]], int]:
    """(confidence, is_wrong) per judged audited event, and how many audited events wait."""
    events = list(
        FeedEvent.objects.filter(
            project=project, decision=FeedDecision.AUDIT, item__isnull=False
        ).values_list("item_id", "payload")
    )
    labels: dict[int, list[tuple[dict[str, Any], int]]] = defaultdict(list)
    for item_id, answer, version_id in (
        counted_submissions(project)
        .filter(item_id__in=[item_id for item_id, _ in events])
        .values_list("item_id", "answer", "rubric_version_id")
    ):
        labels[item_id].append((answer, version_id))
    versions = {
        version.pk: dimension_specs(version.dimensions.all())
        for version in project.rubric_versions.prefetch_related("dimensions")
    }
    judged: list[tuple[float, bool]] = []
    for item_id, payload in events:
        responses = [payload["response"]] if "response" in payload else payload.get("responses", [])
        original = str(responses[0]) if responses else ""
        votes = [
            vote
            for answer, version_id in labels.get(item_id, [])
            if (vote := _label_is_wrong(project, answer, versions.get(version_id, []), original))
            is not None
        ]
        if votes:
            judged.append((float(payload["model_confidence"]), 2 * sum(votes) >= len(votes)))
    return judged, len(events) - len(judged)


def _candidates(values: list[float], keep: float) -> list[float]:
    distinct = sorted(set(values))
    if len(distinct) > MAX_CANDIDATES:
        step = len(distinct) / MAX_CANDIDATES
        distinct = [distinct[int(index * step)] for index in range(MAX_CANDIDATES)]
    return [keep, *[value for value in distinct if value != keep]]


def _upper(wrong: int, n: int) -> float:
    interval = wilson(wrong, n)
    return 1.0 if interval is None else interval[1]


def recommend_gray_zone(
    *, judged: list[tuple[float, bool]], low: float, high: float, target: float
) -> dict[str, Any] | None:
    """The widest auto-accepting gray zone whose audited error rate stays under `target` at
    95% confidence (see the module docstring), or None when no zone does."""
    below = [(confidence, wrong) for confidence, wrong in judged if confidence < low]
    above = [(confidence, wrong) for confidence, wrong in judged if confidence > high]
    best: tuple[int, float, float, int] | None = None  # (kept, low', high', wrong)
    best_key: tuple[int, float] | None = None
    for new_low in _candidates([c for c, _ in below], low):
        kept_below = [wrong for confidence, wrong in below if confidence < new_low]
        for new_high in _candidates([c for c, _ in above], high):
            kept = kept_below + [wrong for confidence, wrong in above if confidence > new_high]
            if not kept or _upper(sum(kept), len(kept)) > target:
                continue
            key = (len(kept), -((low - new_low) + (new_high - high)))
            if best_key is None or key > best_key:
                best_key, best = key, (len(kept), new_low, new_high, sum(kept))
    if best is None:
        return None
    kept_count, new_low, new_high, wrong = best
    return {
        "gray_zone": [new_low, new_high],
        "changed": (new_low, new_high) != (low, high),
        "error_rate": proportion(wrong, kept_count),
        "auto_accepted_share": round(kept_count / len(judged), 4),
    }


def minimum_audited_for(target: float) -> int:
    """How many judged audits with no error at all bring the Wilson upper bound to `target`:
    z^2 / (n + z^2) <= target, i.e. n >= z^2 (1 - target) / target."""
    return math.ceil(Z95 * Z95 * (1 - target) / target)


def feed_calibration(*, project: Project) -> dict[str, Any]:
    judged, pending = audited_verdicts(project=project)
    low, high, target = (
        project.feed_gray_low,
        project.feed_gray_high,
        project.feed_target_error_rate,
    )
    wrong = sum(is_wrong for _, is_wrong in judged)
    overall = proportion(wrong, len(judged))
    sides = {
        "below": [is_wrong for confidence, is_wrong in judged if confidence < low],
        "above": [is_wrong for confidence, is_wrong in judged if confidence > high],
    }
    auto = FeedEvent.objects.filter(
        project=project, decision__in=[FeedDecision.AUTO_ACCEPTED, FeedDecision.AUDIT]
    ).count()
    return {
        "target_error_rate": target,
        "gray_zone": [low, high],
        "audit_rate": project.feed_audit_rate,
        "auto_accepted": auto,
        "audited": len(judged) + pending,
        "judged": len(judged),
        "pending": pending,
        "error_rate": overall,
        "by_side": {name: proportion(sum(rows), len(rows)) for name, rows in sides.items()},
        "holds_target": None if overall is None else overall["high"] <= target,
        "recommendation": recommend_gray_zone(judged=judged, low=low, high=high, target=target),
        "minimum_audited_for_target": minimum_audited_for(target),
        "verdict_rule": VERDICT_RULE,
    }


def feed_target_set(*, project: Project, target_error_rate: float) -> Project:
    if not 0.0 < target_error_rate < 1.0:
        raise DomainError(
            "The target error rate is a number between 0 and 1 (exclusive).",
            code="invalid_target_error_rate",
        )
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(feed_target_error_rate=target_error_rate)
    project.refresh_from_db()
    return project
