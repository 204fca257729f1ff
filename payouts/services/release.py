"""Release: a scoring run's evidence turns an expert's pending money on a project into payable
at base x tier multiplier x pace (with the hourly floor's top-up), hands out the bonus pool by
impact's lower confidence bound, and a closed project settles what is left (docs/MONEY.md,
step 2 of the lifecycle in `earnings.py`).
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from contributors.models import ExpertProfile
from marketplace.models import User
from payouts.models import (
    Earning,
    EarningStatus,
    LedgerAccount,
    TransactionKind,
)
from payouts.multipliers import (
    BASIS,
    FLOOR_AND_BONUS_TIERS,
    TIER_MULTIPLIER_BASIS_POINTS,
    apply_basis_points,
)
from payouts.services.earnings import (
    escrow_account,
    payable_account,
    pending_account,
    reserve_account,
)
from payouts.services.ledger import (
    ledger_post,
)
from projects.models import ProjectStatus, QualityStop, Submission
from scoring.models import ContributorScore, Tier
from scoring.selectors import latest_succeeded_run
from scoring.services import scoring_run_create

logger = logging.getLogger(__name__)
# A bonus goes to impact distinguishable from zero: its lower bound at this many standard
# errors (one-sided 95%) must be positive, and shares are proportional to that lower bound.
BONUS_LOWER_BOUND_Z = 1.6448536269514722
# Trusted experts whose pace sets the reference time (docs/MONEY.md, "Pace").
TRUSTED_TIERS = frozenset({"platinum", "gold", "silver"})
MIN_TRUSTED_FOR_PACE = 3
PACE_PERCENTILE = 75


@dataclass(frozen=True)
class ReleaseReport:
    released: int = 0  # experts released
    labels: int = 0
    amount: int = 0
    bonus: int = 0
    returned: int = 0  # to escrow (unused reserve, pace, lower multipliers)
    waiting: int = 0  # experts whose evidence has not cleared


def _pace_reference(project: Any, tiers: dict[int, str]) -> int | None:
    """The PACE_PERCENTILE, over trusted experts (silver or better), of their median active
    seconds; with fewer than MIN_TRUSTED_FOR_PACE of them, over every expert of the snapshot
    (one vote per expert, so a few fast workers with many labels cannot set the pace). Most
    trusted experts work at or below it, so most careful work is paid the same per hour at
    the same tier, and speed above it earns nothing extra."""
    per_expert: dict[int, list[int]] = defaultdict(list)
    rows = Earning.objects.filter(project=project, expert_id__in=list(tiers)).values_list(
        "expert_id", "active_seconds"
    )
    for expert, seconds in rows:
        per_expert[expert].append(seconds)
    medians = {expert: statistics.median(values) for expert, values in per_expert.items()}
    trusted = [value for expert, value in medians.items() if tiers[expert] in TRUSTED_TIERS]
    pool = trusted if len(trusted) >= MIN_TRUSTED_FOR_PACE else list(medians.values())
    if not pool:
        return None
    return int(np.percentile(np.asarray(pool, dtype=np.float64), PACE_PERCENTILE))


def _pace_points(project: Any, active_seconds: int, reference: int | None) -> int:
    if project.pay_unit != "task" or not project.pace_adjusted or not reference:
        return BASIS
    return min(BASIS, max(active_seconds, 0) * BASIS // reference)


def earnings_release(*, run: Any) -> ReleaseReport:
    """Release the pending earnings a succeeded scoring run clears (idempotent per run).

    Per expert in the run: labels up to the run's submission high-water mark are released at
    the run's tier multiplier and the project's pace, unless the expert is suspended, stopped
    on the project, or still provisional (too little evidence: they wait for the next run, or
    for the project's close, when provisional work is released at x1.0). Then the bonus
    shares of the released labels are split by impact's lower confidence bound."""

    project = run.project
    scores = {
        score.expert_id: score
        for score in ContributorScore.objects.filter(run=run, counts=True, is_ai=False)
    }
    tiers = {expert: score.tier for expert, score in scores.items()}
    suspended = set(
        ExpertProfile.objects.filter(
            user_id__in=list(scores), suspended_at__isnull=False
        ).values_list("user_id", flat=True)
    )
    stopped = set(
        QualityStop.objects.filter(project=project, expert_id__in=list(scores))
        .exclude(status="reversed")
        .values_list("expert_id", flat=True)
    )
    reference = _pace_reference(project, tiers)
    closed = project.status == ProjectStatus.CLOSED
    totals: dict[str, int] = defaultdict(int)
    released_bonus: list[Earning] = []
    for expert, score in sorted(scores.items()):
        if expert in suspended or expert in stopped:
            totals["waiting"] += 1
            continue
        if score.tier == Tier.PROVISIONAL and not closed:
            totals["waiting"] += 1
            continue
        earnings = list(
            Earning.objects.filter(
                project=project,
                expert_id=expert,
                status=EarningStatus.PENDING,
                submission_id__lte=run.submission_high_water,
            ).order_by("pk")
        )
        if not earnings:
            continue
        booked = _release_expert(run, project, expert, score, earnings, reference)
        totals["released"] += 1
        totals["labels"] += len(earnings)
        totals["amount"] += booked[0]
        totals["returned"] += booked[1]
        # Every released label's bonus share joins the pool; who shares it is decided below.
        released_bonus += earnings
    bonus_paid, bonus_returned = _release_bonus(run, project, scores, released_bonus)
    return ReleaseReport(
        released=totals["released"],
        labels=totals["labels"],
        amount=totals["amount"],
        bonus=bonus_paid,
        returned=totals["returned"] + bonus_returned,
        waiting=totals["waiting"],
    )


def earnings_settle_closed_project(*, project: Any) -> None:
    """A closed project settles its pending pay: the latest scoring run that covers every
    label releases it (provisional work at x1.00 now that no more evidence will come), or a
    new run is queued whose completion does."""

    latest = latest_succeeded_run(project=project)
    newest = (
        Submission.objects.filter(project=project)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    if newest is None:
        return
    if latest is not None and latest.submission_high_water >= newest:
        earnings_release(run=latest)
        return
    scoring_run_create(project=project, created_by=None)


def _release_expert(
    run: Any,
    project: Any,
    expert: int,
    score: Any,
    earnings: list[Earning],
    reference: int | None,
) -> tuple[int, int]:
    """Book one expert's release; returns (paid to payable, returned to escrow)."""
    multiplier = TIER_MULTIPLIER_BASIS_POINTS[score.tier]
    rows = []
    for earning in earnings:
        pace = _pace_points(project, earning.active_seconds, reference)
        amount = min(
            apply_basis_points(earning.base, multiplier, pace), earning.base + earning.reserve
        )
        rows.append((earning, pace, amount))
    paid = sum(amount for _, _, amount in rows)
    held = sum(earning.base + earning.reserve for earning in earnings)
    top_up = _floor_top_up(project, score.tier, paid, sum(e.active_seconds for e in earnings))
    returned = held - paid
    escrow = escrow_account(project)
    if top_up > returned:
        # The floor costs more than this release frees: the rest comes from escrow, as far as
        # escrow goes (a floor is the lab's promise, never a debt of the platform).
        top_up = returned + min(top_up - returned, max(escrow.balance, 0))
    paid += top_up
    returned -= top_up
    user = User.objects.get(pk=expert)
    postings = [
        (pending_account(project, user), -sum(earning.base for earning in earnings)),
        (payable_account(project.currency, user), paid),
    ]
    reserve_used = sum(earning.reserve for earning in earnings)
    if reserve_used:
        postings.append((reserve_account(project), -reserve_used))
    if returned:
        postings.append((escrow, returned))
    with transaction.atomic():
        _, created = ledger_post(
            idempotency_key=f"release:{run.pk}:{expert}",
            currency=project.currency,
            postings=postings,
            kind=TransactionKind.EARNING_RELEASE,
            metadata={
                "project_id": project.pk,
                "user_id": expert,
                "scoring_run": run.pk,
                "tier": score.tier,
                "multiplier": multiplier / BASIS,
                "labels": len(earnings),
                "pace_reference_seconds": reference,
                "hourly_floor_top_up": top_up,
            },
        )
        if not created:
            return 0, 0
        now = timezone.now()
        for earning, pace, amount in rows:
            Earning.objects.filter(pk=earning.pk, status=EarningStatus.PENDING).update(
                status=EarningStatus.RELEASED,
                multiplier_basis_points=multiplier,
                pace_basis_points=pace,
                amount=amount,
                tier=score.tier,
                scoring_run=run,
                decided_at=now,
                reason=_release_reason(score.tier, multiplier, pace, reference),
            )
    return paid, returned


def _release_reason(tier: str, multiplier: int, pace: int, reference: int | None) -> str:
    reason = f"released at {tier} (x{multiplier / BASIS:.2f})"
    if pace < BASIS and reference:
        reason += (
            f", paced at {pace / BASIS:.0%}: submitted faster than the trusted experts' "
            f"median of {reference} s"
        )
    return reason


def _floor_top_up(project: Any, tier: str, paid: int, active_seconds: int) -> int:
    """What lifts released work to the project's hourly floor (bronze and better only)."""
    if not project.hourly_floor or tier not in FLOOR_AND_BONUS_TIERS or active_seconds <= 0:
        return 0
    owed = int(project.hourly_floor) * active_seconds // 3600
    return max(owed - paid, 0)


def _release_bonus(
    run: Any, project: Any, scores: dict[int, Any], earnings: list[Earning]
) -> tuple[int, int]:
    """Split the released labels' bonus shares by impact's lower confidence bound; the residue
    (no eligible impact, rounding) returns to escrow. Returns (paid, returned)."""
    pool = sum(earning.bonus_reserve for earning in earnings)
    if pool <= 0:
        return 0, 0
    bounds: dict[int, float] = {}
    for expert, score in scores.items():
        if score.tier not in FLOOR_AND_BONUS_TIERS or score.impact_value is None:
            continue
        bound = float(score.impact_value) - BONUS_LOWER_BOUND_Z * float(score.impact_se or 0.0)
        if bound > 0:
            bounds[expert] = bound
    total = sum(bounds.values())
    shares = (
        {expert: int(pool * bound / total) for expert, bound in bounds.items()} if total else {}
    )
    shares = {expert: amount for expert, amount in shares.items() if amount > 0}
    paid = sum(shares.values())
    postings: list[tuple[LedgerAccount, int]] = [(reserve_account(project), -pool)]
    postings += [
        (payable_account(project.currency, User.objects.get(pk=expert)), amount)
        for expert, amount in sorted(shares.items())
    ]
    if pool - paid:
        postings.append((escrow_account(project), pool - paid))
    ledger_post(
        idempotency_key=f"bonus:{run.pk}",
        currency=project.currency,
        postings=postings,
        kind=TransactionKind.BONUS,
        metadata={
            "project_id": project.pk,
            "scoring_run": run.pk,
            "pool": pool,
            "rule": "impact lower bound (value - 1.645 se) > 0, shares in proportion to it",
            "shares": {
                str(expert): {"bonus": amount, "impact_lower_bound": bounds[expert]}
                for expert, amount in shares.items()
            },
        },
    )
    return paid, pool - paid


# --- Forfeit, appeal, review reversal --------------------------------------------------------
