"""The early-stop gate and its quality stops (docs/SCORING.md, "Early stop"; the test itself is
`scoring/engine/gate.py`).

On every gold answer (in the submit's transaction) the expert's gold evidence on the project is
re-tested. When it shows with the stated confidence that they work near chance or invert a
component, a `QualityStop` is recorded with the evidence and, in the same transaction:
- the expert gets no more tasks of the project (routing checks the stop at every claim);
- their pending pay on the project returns to its escrow (`earnings_forfeit`);
- their labels on the project stop counting: each goes back to the pool for a new label. That
  runs after the commit (`quality_stop_discount`, a task): it locks many items, and doing it in
  the submit's transaction, which already holds the submitted item, could deadlock with another
  expert's stop taken at the same moment;
- they are told why, and how to appeal; and they are suspended platform-wide until an admin
  looks (STOPS_FOR_SUSPENSION): evidence this strong on one project says little good about
  their work elsewhere, and nothing is released to a suspended expert. Reversing the stop on
  appeal lifts that suspension too.
An admin decides an appeal on the desk: uphold, or reverse (the forfeited labels are paid at
x1.0 from the project's escrow and the expert may work on the project again).

Money and suspension live in other apps; this module calls their services lazily (a
deliberate cycle: routing -> scoring gate -> payouts)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from scipy.special import betainc

from contributors.models import ExpertProfile
from contributors.services import expert_notify, expert_reinstate, expert_suspend
from marketplace.errors import Conflict, DomainError
from marketplace.models import User
from payouts.services.holds import earnings_appeal_release, earnings_forfeit
from payouts.services.ledger import InsufficientBalance
from projects.models import (
    QUALITY_STOP_TRANSITIONS,
    Assignment,
    GoldAnswer,
    Item,
    Project,
    QualityEvidence,
    QualityStop,
    QualityStopStatus,
    Submission,
    SubmissionStatus,
    TaskType,
)
from projects.selectors import project_current_rubric
from scoring.engine.gate import (
    KAPPA_AGREEMENT,
    ComponentEvidence,
    GateDecision,
    gate_decision,
)
from scoring.engine.gold import PREFERENCE, RANKING, chance_level, gold_components
from scoring.services.labels import gold_dimensions

STOPS_FOR_SUSPENSION = 1
AUTOMATIC_SUSPENSION = "stopped on quality (automatic)"
REASONS = {
    "near_chance": (
        "Your answers to this project's hidden quality checks agree with the right answers "
        "no more often than random answers would"
    ),
    "inverted": "Your answers to this project's hidden quality checks are consistently reversed",
    "near_chance_agreement": (
        "Your answers agree with the other experts' on the same items no more often than "
        "random answers would"
    ),
    "rejected_in_review": "Reviewers rejected most of your work on this project",
}
# Review evidence (demonstrations, corrections): stop when the posterior of the review credit
# (accepted 1, fixed 0.5, rejected 0) is below one half with this confidence.
REVIEW_STOP_CONFIDENCE = 0.99
MIN_REVIEWS_FOR_STOP = 5


def gate_evidence(*, project: Project, expert: User) -> tuple[GateDecision, int]:
    """Re-test an expert's gold evidence on a project: (decision, gold answers)."""
    rubric = project_current_rubric(project=project)
    dimensions = gold_dimensions(rubric)
    chances = {dimension.key: chance_level(dimension) for dimension in dimensions}
    chances[PREFERENCE] = chances[RANKING] = 0.5
    rows = Submission.objects.filter(
        project=project,
        expert=expert,
        item__is_gold=True,
        status=SubmissionStatus.ACCEPTED,
    ).values_list("item_id", "answer")
    answers = list(rows)
    gold = dict(
        GoldAnswer.objects.filter(item_id__in=[item for item, _ in answers]).values_list(
            "item_id", "answer"
        )
    )
    # Per component: successes, trials, and the chance a random click had on those trials.
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    counted = 0
    for item_id, answer in answers:
        if item_id not in gold:
            continue
        components = gold_components(answer=answer, gold=gold[item_id], dimensions=dimensions)
        if components:
            counted += 1
        for component in components:
            totals[component.key][0] += sum(component.credits)
            totals[component.key][1] += len(component.credits)
            totals[component.key][2] += sum(component.chances) or chances.get(
                component.key, 0.5
            ) * len(component.credits)
    evidence = [
        ComponentEvidence(key, chance_sum / trials, successes, int(trials))
        for key, (successes, trials, chance_sum) in sorted(totals.items())
    ]
    return gate_decision(evidence, counted), counted


def quality_gate_check(*, submission: Submission) -> QualityStop | None:
    """Called in the submit's transaction after a gold answer is recorded."""
    if not submission.item.is_gold:
        return None
    decision, answers = gate_evidence(project=submission.project, expert=submission.expert)
    QualityEvidence.objects.update_or_create(
        project=submission.project,
        expert=submission.expert,
        defaults={"log_likelihood_ratio": decision.log_likelihood_ratio, "gold_answers": answers},
    )
    if not decision.stop:
        return None
    return quality_stop_create(
        project=submission.project,
        expert=submission.expert,
        reason=decision.reason,
        evidence={**decision.as_evidence(), "gold_answers": answers},
    )


def quality_stop_create(
    *, project: Project, expert: User, reason: str, evidence: dict[str, Any]
) -> QualityStop | None:
    """Stop an expert on a project (see the module docstring); None if already stopped."""

    with transaction.atomic():
        if QualityStop.objects.filter(project=project, expert=expert).exists():
            return None
        tasks_done = Assignment.objects.filter(project=project, expert=expert).count()
        stop = QualityStop.objects.create(
            project=project,
            expert=expert,
            reason=REASONS.get(reason, reason)[:500],
            evidence={"test": reason, **evidence},
            tasks_done=tasks_done,
        )
        stop.forfeited = earnings_forfeit(stop=stop)
        QualityStop.objects.filter(pk=stop.pk).update(forfeited=stop.forfeited)
        _tell(expert, stop)
        _escalate(expert, stop)
        stop_id = stop.pk
        transaction.on_commit(lambda: _queue_discount(stop_id))
    return stop


def _queue_discount(stop_id: int) -> None:
    # Cycle broken here: tasks.py wraps this module's services.
    from scoring.tasks import quality_stop_discount_task  # noqa: PLC0415

    quality_stop_discount_task.delay(stop_id)


def quality_stop_discount(*, stop_id: int) -> int:
    """The stopped expert's accepted labels on the project's work items stop counting: each
    item gets its slot back for a new label (the forfeited money pays for it). Idempotent (a
    label already rejected is skipped); nothing is done for a stop reversed meanwhile. Items are
    locked in id order, so two discounts running at once cannot deadlock."""
    with transaction.atomic():
        stop = QualityStop.objects.filter(pk=stop_id).first()
        if stop is None or stop.status == QualityStopStatus.REVERSED:
            return 0
        rows = list(
            Submission.objects.filter(
                project_id=stop.project_id,
                expert_id=stop.expert_id,
                status=SubmissionStatus.ACCEPTED,
                item__is_gold=False,
            ).values_list("pk", "item_id")
        )
        return sum(
            _discount_one(submission_id, item_id)
            for submission_id, item_id in sorted(rows, key=lambda row: row[1])
        )


def _discount_one(submission_id: int, item_id: int) -> bool:
    item = Item.objects.select_for_update().get(pk=item_id)
    # Conditional on the status, under the item's lock: a second run of the task finds nothing.
    changed = Submission.objects.filter(pk=submission_id, status=SubmissionStatus.ACCEPTED).update(
        status=SubmissionStatus.REJECTED
    )
    if not changed:
        return False
    item.labels_count = max(item.labels_count - 1, 0)
    item.assigned_count = max(item.assigned_count - 1, 0)
    item.is_open = item.assigned_count < item.target_labels
    item.save(update_fields=["labels_count", "assigned_count", "is_open"])
    return True


def _tell(expert: User, stop: QualityStop) -> None:
    message = (
        f"{stop.reason} (project '{stop.project.title}').\n\n"
        f"You will not get more tasks from this project, and the pay waiting for your "
        f"{stop.tasks_done} tasks there ({stop.forfeited / 100:.2f} "
        f"{stop.project.currency.upper()}) went back to the project.\n\n"
        "The evidence is on your earnings page. If you think this is wrong, appeal there: an "
        f"admin will look at it.\n{settings.SITE_URL}/expert/earnings/"
    )

    expert_notify(user=expert, subject="You were stopped on a project", message=message)


def _escalate(expert: User, stop: QualityStop) -> None:
    """Stopped on several projects: suspended platform-wide until an admin looks."""

    active = QualityStop.objects.filter(expert=expert).exclude(status=QualityStopStatus.REVERSED)
    if active.count() < STOPS_FOR_SUSPENSION:
        return
    if ExpertProfile.objects.filter(user=expert, suspended_at__isnull=False).exists():
        return
    expert_suspend(
        user=expert,
        reason=AUTOMATIC_SUSPENSION,
        suspended_by=None,
        evidence={"quality_stops": list(active.values_list("pk", flat=True))},
    )


def _transition(stop: QualityStop, to_status: str, **fields: Any) -> QualityStop:
    locked = QualityStop.objects.select_for_update().get(pk=stop.pk)
    if to_status not in QUALITY_STOP_TRANSITIONS[locked.status]:
        raise Conflict(
            f"This stop is {locked.status}; it cannot become {to_status}.", code="invalid_state"
        )
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.status = to_status
    locked.save()
    return locked


def quality_stop_appeal(*, stop: QualityStop, expert: User, reason: str) -> QualityStop:
    if stop.expert_id != expert.pk:
        raise DomainError("Not your stop.", code="not_found")
    if not reason.strip():
        raise DomainError("Say why you think the stop is wrong.", code="reason_required")
    with transaction.atomic():
        return _transition(
            stop, QualityStopStatus.APPEALED, appeal=reason[:5000], appealed_at=timezone.now()
        )


def quality_stop_decide(
    *, stop: QualityStop, decided_by: User, reverse: bool, note: str
) -> QualityStop:
    """Uphold, or reverse: the forfeited labels are paid at x1.0 from the project's escrow
    (409 when the escrow no longer holds them) and the expert may work on the project again."""

    with transaction.atomic():
        if not reverse:
            return _transition(
                stop,
                QualityStopStatus.UPHELD,
                decided_by=decided_by,
                decision_note=note,
                decided_at=timezone.now(),
            )
        decided = _transition(
            stop,
            QualityStopStatus.REVERSED,
            decided_by=decided_by,
            decision_note=note,
            decided_at=timezone.now(),
        )
        try:
            earnings_appeal_release(stop=decided)
        except InsufficientBalance as error:
            raise Conflict(
                "The project's escrow no longer holds the forfeited pay; the lab must fund it "
                "before the appeal can be granted.",
                code="escrow_short",
            ) from error
        _lift_automatic_suspension(decided.expert, decided_by)
    return decided


def _lift_automatic_suspension(expert: User, decided_by: User) -> None:
    """The suspension a stop caused ends with the last standing stop; one an admin imposed for
    another reason stays."""

    standing = QualityStop.objects.filter(expert=expert).exclude(status=QualityStopStatus.REVERSED)
    profile = ExpertProfile.objects.filter(user=expert, suspended_at__isnull=False).first()
    if profile is None or standing.exists() or profile.suspension_reason != AUTOMATIC_SUSPENSION:
        return
    expert_reinstate(
        user=expert, reinstated_by=decided_by, reason="quality stop reversed on appeal"
    )


def _agreement_chances(project: Project, labels: Any) -> dict[str, float]:
    """What random answers agree on per agreement component (see docs/SCORING.md)."""

    chances = {dimension.key: chance_level(dimension) for dimension in labels.dimensions}
    chances[PREFERENCE] = 0.5
    if project.task_type == TaskType.RANKING:
        responses = max((len(item.responses) for item in labels.items.values()), default=2)
        chances["best"] = 1.0 / max(responses, 2)
    if project.task_type == TaskType.RATING and labels.dimensions:
        first = labels.dimensions[0]
        points = (
            (first.high - first.low + 1) if first.high is not None and first.low is not None else 2
        )
        chances[f"dim:{first.key}"] = 1.0 / max(points, 2)
    return chances


def consensus_stops(
    *, project: Project, labels: Any, gold: dict[int, Any], agreement: Any, stopped: set[int]
) -> list[QualityStop]:
    """At a scoring run, the same test for experts without gold evidence on the project:
    agreement with peers (rating and ranking projects without gold) or review outcomes
    (demonstrations, corrections). Whoever it stops is stopped as the live gate would."""

    # Cycle broken here: tiers reads the gate's thresholds.
    from scoring.services.tiers import REVIEW_CREDIT  # noqa: PLC0415

    chances = _agreement_chances(project, labels)
    stops = []
    for expert, index in labels.expert_index.items():
        if expert in stopped or expert in gold or expert in labels.judges:
            continue
        user = User.objects.get(pk=expert)
        if project.task_type in (TaskType.DEMONSTRATION, TaskType.CORRECTION):
            outcomes = agreement.review_outcomes.get(index)
            if not outcomes or sum(outcomes.values()) < MIN_REVIEWS_FOR_STOP:
                continue
            credit = sum(REVIEW_CREDIT[status] * count for status, count in outcomes.items())
            n = sum(outcomes.values())
            below_half = float(betainc(1 + credit, 1 + n - credit, 0.5))
            if below_half < REVIEW_STOP_CONFIDENCE:
                continue
            evidence: dict[str, Any] = {
                "source": "reviews",
                "reviews": dict(outcomes),
                "probability_credit_below_half": round(below_half, 4),
            }
            stop = quality_stop_create(
                project=project, expert=user, reason="rejected_in_review", evidence=evidence
            )
        else:
            components = [
                ComponentEvidence(key, chances.get(key, 0.5), hits, int(n))
                for key, (hits, n) in agreement.per_component.get(index, {}).items()
            ]
            decision = gate_decision(
                components, sum(c.trials for c in components), kappa=KAPPA_AGREEMENT
            )
            if not decision.stop or decision.reason != "near_chance":
                continue
            stop = quality_stop_create(
                project=project,
                expert=user,
                reason="near_chance_agreement",
                evidence={"source": "agreement", **decision.as_evidence()},
            )
        if stop is not None:
            stops.append(stop)
    return stops
