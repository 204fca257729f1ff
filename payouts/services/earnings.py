"""Earnings: from a submit to the expert's payable, or back to the project (docs/MONEY.md).

Lifecycle of one label's money (an `Earning` row, and the ledger postings named by its cause):
1. submit, `earning:<submission>`: escrow -> the expert's *pending* account on that project
   (the base pay) and escrow -> the project's reserve (the highest tier's uplift and the bonus
   share), so whatever the evidence later says is already set aside;
2. release, when a scoring run's evidence clears the expert on the project,
   `release:<run>:<expert>`: pending -> payable at base x tier multiplier x pace, the unused
   reserve and base back to escrow; and `bonus:<run>`: the bonus shares from the reserve, by
   impact's lower confidence bound;
3. or forfeit, when the quality gate stops the expert on the project, `forfeit:<stop>`:
   pending and reserve -> escrow. An appeal an admin grants books `appeal:<stop>`: escrow ->
   payable at x1.0.
A label a reviewer rejects is reversed (`earning-reversal:<submission>`).

Holds (suspension) move payable to held; nothing is released to a suspended expert.
The payouts app is the only writer of ledger entries: other apps call these services.
"""

from __future__ import annotations

import logging
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from marketplace.models import User
from payouts.models import (
    AccountKind,
    Earning,
    EarningStatus,
    LedgerAccount,
    LedgerEntry,
    TransactionKind,
)
from payouts.multipliers import (
    BASIS,
    FLOOR_AND_BONUS_TIERS,
    TIER_MULTIPLIER_BASIS_POINTS,
    apply_basis_points,
    uplift_ceiling,
)
from payouts.services.ledger import (
    InsufficientBalance,
    account_for,
    accounts_for,
    ledger_post,
)

logger = logging.getLogger(__name__)
# A bonus goes to impact distinguishable from zero: its lower bound at this many standard
# errors (one-sided 95%) must be positive, and shares are proportional to that lower bound.
BONUS_LOWER_BOUND_Z = 1.6448536269514722
# Trusted experts whose pace sets the reference time (docs/MONEY.md, "Pace").
TRUSTED_TIERS = frozenset({"platinum", "gold", "silver"})
MIN_TRUSTED_FOR_PACE = 3
PACE_PERCENTILE = 75
RECENT_LABELS_FOR_MEDIAN = 500


def _escrow(project: Any) -> LedgerAccount:
    return account_for(kind=AccountKind.PROJECT_ESCROW, currency=project.currency, project=project)


def _reserve(project: Any) -> LedgerAccount:
    return account_for(kind=AccountKind.PROJECT_RESERVE, currency=project.currency, project=project)


def _pending(project: Any, user: Any) -> LedgerAccount:
    return account_for(
        kind=AccountKind.EXPERT_PENDING, currency=project.currency, project=project, user=user
    )


def _payable(currency: str, user: Any) -> LedgerAccount:
    return account_for(kind=AccountKind.EXPERT_PAYABLE, currency=currency, user=user)


def median_active_seconds(project: Any) -> int | None:
    """The median server-measured active time of the project's recent accepted labels."""
    from projects.models import Submission, SubmissionStatus

    recent = list(
        Submission.objects.filter(project=project, status=SubmissionStatus.ACCEPTED)
        .order_by("-id")
        .values_list("server_seconds", flat=True)[:RECENT_LABELS_FOR_MEDIAN]
    )
    return int(statistics.median(recent)) if len(recent) >= 5 else None


def billable_seconds_cap(project: Any) -> int:
    """The most active time one task can bill (hourly projects): the lease, and at most
    HOURLY_CAP_MEDIAN_MULTIPLE times the project's median active time once there is one."""
    lease = int(project.lease_minutes) * 60
    median = median_active_seconds(project)
    if median is None:
        return lease
    return max(min(lease, settings.HOURLY_CAP_MEDIAN_MULTIPLE * median), 1)


def base_amount(*, project: Any, active_seconds: int, cap_seconds: int) -> int:
    """Base pay of one label: per task, the base rate; per hour, the server-measured active
    seconds (claim to submit, capped) times the hourly rate, rounded down. The client's own
    `seconds_spent` is advisory and never billed."""
    if project.pay_unit == "task":
        return int(project.base_rate)
    billable = min(max(active_seconds, 0), cap_seconds) if cap_seconds else active_seconds
    return int(project.base_rate) * int(billable) // 3600


def bonus_share(project: Any, base: int) -> int:
    return base * int(project.bonus_pool_percent) // 100


def task_cost_ceiling(*, project: Any, cap_seconds: int) -> int:
    """What one task can cost the project at most, reserved by a lease and booked at submit:
    its base (per hour: at the cap), the highest tier's uplift, the bonus share, and the review
    pay if it may be reviewed."""
    base = base_amount(project=project, active_seconds=cap_seconds, cap_seconds=cap_seconds)
    review = int(project.review_pay) if project.review_rate > 0 else 0
    return base + uplift_ceiling(base) + bonus_share(project, base) + review


def earning_book(*, submission: Any, cap_seconds: int = 0) -> Earning | None:
    """Book a submission's base into pending and its reserve, in the caller's transaction."""
    project = submission.project
    active = int(submission.server_seconds)
    base = base_amount(project=project, active_seconds=active, cap_seconds=cap_seconds)
    if base <= 0:
        return None
    uplift = uplift_ceiling(base)
    bonus = bonus_share(project, base)
    escrow, pending, reserve = accounts_for(
        [
            (AccountKind.PROJECT_ESCROW, project.currency, project, None),
            (AccountKind.EXPERT_PENDING, project.currency, project, submission.expert),
            (AccountKind.PROJECT_RESERVE, project.currency, project, None),
        ]
    )
    postings = [(escrow, -(base + uplift + bonus)), (pending, base)]
    if uplift + bonus:
        postings.append((reserve, uplift + bonus))
    _, booked = ledger_post(
        idempotency_key=f"earning:{submission.pk}",
        currency=project.currency,
        postings=postings,
        kind=TransactionKind.EARNING,
        metadata={
            "project_id": project.pk,
            "user_id": submission.expert_id,
            "submission_id": submission.pk,
        },
    )
    if not booked:
        return Earning.objects.filter(submission=submission).first()
    earning = Earning.objects.create(
        submission=submission,
        expert_id=submission.expert_id,
        project=project,
        currency=project.currency,
        base=base,
        reserve=uplift,
        bonus_reserve=bonus,
        active_seconds=min(active, cap_seconds) if cap_seconds else active,
    )
    _maybe_budget_low(project, escrow.balance)
    return earning


def _maybe_budget_low(project: Any, escrow_balance: int) -> None:
    """Tell the lab once when escrow falls below BUDGET_LOW_TASKS tasks' worth (webhook
    `project.budget_low`); funding re-arms it."""
    from payouts.selectors import project_escrow_balance, task_price_ceiling

    threshold = settings.BUDGET_LOW_TASKS * task_price_ceiling(project=project)
    if escrow_balance >= threshold or project.budget_low_notified_at is not None:
        return
    from projects.models import Project

    armed = Project.objects.filter(pk=project.pk, budget_low_notified_at__isnull=True).update(
        budget_low_notified_at=timezone.now()
    )
    if armed:
        from marketplace.webhooks import webhook_emit

        webhook_emit(
            lab_id=project.lab_id,
            event_type="project.budget_low",
            data={
                "project": project.pk,
                "escrow": project_escrow_balance(project=project),
                "currency": project.currency,
                "threshold": threshold,
            },
        )


# --- Release at a scoring snapshot ----------------------------------------------------------


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
    from contributors.models import ExpertProfile
    from projects.models import ProjectStatus, QualityStop
    from scoring.models import ContributorScore, Tier

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
    from projects.models import Submission
    from scoring.selectors import latest_succeeded_run
    from scoring.services import scoring_run_create

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
    escrow = _escrow(project)
    if top_up > returned:
        # The floor costs more than this release frees: the rest comes from escrow, as far as
        # escrow goes (a floor is the lab's promise, never a debt of the platform).
        top_up = returned + min(top_up - returned, max(escrow.balance, 0))
    paid += top_up
    returned -= top_up
    user = User.objects.get(pk=expert)
    postings = [
        (_pending(project, user), -sum(earning.base for earning in earnings)),
        (_payable(project.currency, user), paid),
    ]
    reserve_used = sum(earning.reserve for earning in earnings)
    if reserve_used:
        postings.append((_reserve(project), -reserve_used))
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
    postings: list[tuple[LedgerAccount, int]] = [(_reserve(project), -pool)]
    postings += [
        (_payable(project.currency, User.objects.get(pk=expert)), amount)
        for expert, amount in sorted(shares.items())
    ]
    if pool - paid:
        postings.append((_escrow(project), pool - paid))
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


def earnings_forfeit(*, stop: Any) -> int:
    """A quality stop: every pending label of the expert on the project returns its base and
    reserve to the project's escrow. Returns the forfeited base."""
    project = stop.project
    earnings = list(
        Earning.objects.select_for_update().filter(
            project=project, expert=stop.expert, status=EarningStatus.PENDING
        )
    )
    if not earnings:
        return 0
    base = sum(earning.base for earning in earnings)
    reserve = sum(earning.reserve + earning.bonus_reserve for earning in earnings)
    postings = [(_pending(project, stop.expert), -base), (_escrow(project), base + reserve)]
    if reserve:
        postings.append((_reserve(project), -reserve))
    ledger_post(
        idempotency_key=f"forfeit:{stop.pk}",
        currency=project.currency,
        postings=postings,
        kind=TransactionKind.EARNING_FORFEIT,
        metadata={"project_id": project.pk, "user_id": stop.expert_id, "stop_id": stop.pk},
    )
    Earning.objects.filter(pk__in=[earning.pk for earning in earnings]).update(
        status=EarningStatus.FORFEITED, decided_at=timezone.now(), reason=stop.reason[:500]
    )
    return base


def earnings_appeal_release(*, stop: Any) -> int:
    """An admin granted the appeal: the forfeited labels are paid at x1.0 from escrow."""
    project = stop.project
    earnings = list(
        Earning.objects.select_for_update().filter(
            project=project, expert=stop.expert, status=EarningStatus.FORFEITED
        )
    )
    amount = sum(earning.base for earning in earnings)
    if amount <= 0:
        return 0
    ledger_post(
        idempotency_key=f"appeal:{stop.pk}",
        currency=project.currency,
        postings=[(_escrow(project), -amount), (_payable(project.currency, stop.expert), amount)],
        kind=TransactionKind.APPEAL_RELEASE,
        metadata={"project_id": project.pk, "user_id": stop.expert_id, "stop_id": stop.pk},
    )
    Earning.objects.filter(pk__in=[earning.pk for earning in earnings]).update(
        status=EarningStatus.RELEASED,
        amount=F("base"),
        multiplier_basis_points=BASIS,
        pace_basis_points=BASIS,
        decided_at=timezone.now(),
        reason="released on appeal (x1.00)",
    )
    return amount


def earning_reverse(*, submission: Any) -> str:
    """A reviewer rejected the label: its money returns to the project. Pending money comes
    back from pending and reserve; money already released comes back from payable while the
    expert still has it. Returns a note when it could not be taken back."""
    earning = Earning.objects.select_for_update().filter(submission=submission).first()
    if earning is None or earning.status in (EarningStatus.REVERSED, EarningStatus.FORFEITED):
        return ""
    project = submission.project
    if earning.status == EarningStatus.PENDING:
        reserve = earning.reserve + earning.bonus_reserve
        postings = [
            (_pending(project, submission.expert), -earning.base),
            (_escrow(project), earning.base + reserve),
        ]
        if reserve:
            postings.append((_reserve(project), -reserve))
    else:
        postings = [
            (_payable(project.currency, submission.expert), -earning.amount),
            (_escrow(project), earning.amount),
        ]
    try:
        ledger_post(
            idempotency_key=f"earning-reversal:{submission.pk}",
            currency=project.currency,
            postings=[(account, amount) for account, amount in postings if amount],
            kind=TransactionKind.EARNING_REVERSAL,
            metadata={
                "project_id": project.pk,
                "user_id": submission.expert_id,
                "submission_id": submission.pk,
            },
        )
    except InsufficientBalance:
        return f"earning of {earning.amount} already paid out; not reversed"
    Earning.objects.filter(pk=earning.pk).update(
        status=EarningStatus.REVERSED, decided_at=timezone.now(), reason="rejected in review"
    )
    return ""


def review_pay_reserve(*, review: Any) -> None:
    """Set aside the review's pay when a label is sampled for review (the lease covered it)."""
    project = review.project
    if project.review_pay <= 0:
        return
    ledger_post(
        idempotency_key=f"review-reserve:{review.pk}",
        currency=project.currency,
        postings=[
            (_escrow(project), -int(project.review_pay)),
            (_reserve(project), int(project.review_pay)),
        ],
        kind=TransactionKind.REVIEW_RESERVE,
        metadata={"project_id": project.pk, "review_id": review.pk},
    )


def review_pay_book(*, review: Any) -> int:
    """Pay the reviewer for a decided review, from what was reserved for it."""
    project = review.project
    reserved = (
        LedgerEntry.objects.filter(
            transaction__idempotency_key=f"review-reserve:{review.pk}", amount__gt=0
        )
        .values_list("amount", flat=True)
        .first()
    )
    if not reserved or review.reviewer_id is None:
        return 0
    ledger_post(
        idempotency_key=f"review-pay:{review.pk}",
        currency=project.currency,
        postings=[
            (_reserve(project), -reserved),
            (_payable(project.currency, review.reviewer), reserved),
        ],
        kind=TransactionKind.REVIEW_PAY,
        metadata={"project_id": project.pk, "review_id": review.pk, "user_id": review.reviewer_id},
    )
    return int(reserved)


# --- Holds (suspension) ----------------------------------------------------------------------


def _balances(user: User, kind: str) -> list[LedgerAccount]:
    return list(LedgerAccount.objects.filter(user=user, kind=kind, balance__gt=0).order_by("pk"))


def _state_key(account: LedgerAccount) -> int:
    """The account's last entry id: moving "everything up to entry N" is one cause, so a
    repeated hold or release of the same state books nothing twice."""
    return account.entries.order_by("-pk").values_list("pk", flat=True).first() or 0


def payable_hold(*, user: User) -> int:
    """Move everything an expert is owed to their held account (suspension)."""
    moved = 0
    with transaction.atomic():
        for payable in _balances(user, AccountKind.EXPERT_PAYABLE):
            held = account_for(kind=AccountKind.EXPERT_HELD, currency=payable.currency, user=user)
            # Read before booking: ledger_post leaves the new (zero) balance on the object.
            amount = payable.balance
            _, created = ledger_post(
                idempotency_key=f"hold:{payable.pk}:{_state_key(payable)}",
                currency=payable.currency,
                postings=[(payable, -amount), (held, amount)],
                kind=TransactionKind.HOLD,
                metadata={"user_id": user.pk},
            )
            moved += amount if created else 0
    return moved


def held_release(*, user: User) -> int:
    """An admin releases held money back to the expert's payable."""
    moved = 0
    with transaction.atomic():
        for held in _balances(user, AccountKind.EXPERT_HELD):
            payable = account_for(
                kind=AccountKind.EXPERT_PAYABLE, currency=held.currency, user=user
            )
            amount = held.balance
            _, created = ledger_post(
                idempotency_key=f"release:{held.pk}:{_state_key(held)}",
                currency=held.currency,
                postings=[(held, -amount), (payable, amount)],
                kind=TransactionKind.RELEASE,
                metadata={"user_id": user.pk},
            )
            moved += amount if created else 0
    return moved


def held_forfeit(*, user: User) -> int:
    """Forfeited held money returns to the escrows of the projects it was released on.

    The held balance is split in proportion to what was released to the expert per project
    (the ledger does not track which releases a payout consumed); the rounding residue goes to
    the project with the largest share, so the split always sums exactly.
    """
    from projects.models import Project

    moved = 0
    with transaction.atomic():
        for held in _balances(user, AccountKind.EXPERT_HELD):
            earned = (
                LedgerEntry.objects.filter(
                    account__kind=AccountKind.EXPERT_PAYABLE,
                    account__user=user,
                    account__currency=held.currency,
                    transaction__kind__in=EARNED_KINDS,
                )
                .values_list("transaction__metadata__project_id")
                .annotate(total=Sum("amount"))
            )
            shares = {int(project_id): int(total) for project_id, total in earned if total > 0}
            if not shares:
                continue
            total_earned = sum(shares.values())
            amount = held.balance
            split = {pid: amount * share // total_earned for pid, share in shares.items()}
            largest = max(shares, key=lambda pid: (shares[pid], -pid))
            split[largest] += amount - sum(split.values())
            projects = {project.pk: project for project in Project.objects.filter(pk__in=split)}
            postings = [(held, -amount)] + [
                (
                    account_for(
                        kind=AccountKind.PROJECT_ESCROW,
                        currency=held.currency,
                        project=projects[pid],
                    ),
                    part,
                )
                for pid, part in sorted(split.items())
                if part
            ]
            ledger_post(
                idempotency_key=f"forfeit:{held.pk}:{_state_key(held)}",
                currency=held.currency,
                postings=postings,
                kind=TransactionKind.FORFEIT,
                metadata={"user_id": user.pk, "split": split},
            )
            moved += amount
    return moved


# Kinds that credit an expert's payable for work on a project (with `project_id` metadata).
EARNED_KINDS = (
    TransactionKind.EARNING_RELEASE,
    TransactionKind.BONUS,
    TransactionKind.APPEAL_RELEASE,
    TransactionKind.REVIEW_PAY,
)
