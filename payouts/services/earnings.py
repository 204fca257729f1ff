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
This module books (1) and reverses; `release.py` releases (2), `holds.py` forfeits, appeals
and holds (3). The payouts app is the only writer of ledger entries: other apps call these
services.
"""

from __future__ import annotations

import logging
import statistics
from typing import Any

from django.conf import settings
from django.utils import timezone

from marketplace.webhooks import webhook_emit
from payouts.models import (
    AccountKind,
    Earning,
    EarningStatus,
    LedgerAccount,
    LedgerEntry,
    TransactionKind,
)
from payouts.multipliers import (
    uplift_ceiling,
)
from payouts.services.ledger import (
    InsufficientBalance,
    account_for,
    accounts_for,
    ledger_post,
)
from projects.models import Project, Submission, SubmissionStatus

logger = logging.getLogger(__name__)
RECENT_LABELS_FOR_MEDIAN = 500


def escrow_account(project: Any) -> LedgerAccount:
    return account_for(kind=AccountKind.PROJECT_ESCROW, currency=project.currency, project=project)


def reserve_account(project: Any) -> LedgerAccount:
    return account_for(kind=AccountKind.PROJECT_RESERVE, currency=project.currency, project=project)


def pending_account(project: Any, user: Any) -> LedgerAccount:
    return account_for(
        kind=AccountKind.EXPERT_PENDING, currency=project.currency, project=project, user=user
    )


def payable_account(currency: str, user: Any) -> LedgerAccount:
    return account_for(kind=AccountKind.EXPERT_PAYABLE, currency=currency, user=user)


def median_active_seconds(project: Any) -> int | None:
    """The median server-measured active time of the project's recent accepted labels."""

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
    # Cycle broken here: payouts.selectors prices a task with this module's ceiling.
    from payouts.selectors import project_escrow_balance, task_price_ceiling  # noqa: PLC0415

    threshold = settings.BUDGET_LOW_TASKS * task_price_ceiling(project=project)
    if escrow_balance >= threshold or project.budget_low_notified_at is not None:
        return

    armed = Project.objects.filter(pk=project.pk, budget_low_notified_at__isnull=True).update(
        budget_low_notified_at=timezone.now()
    )
    if armed:
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
            (pending_account(project, submission.expert), -earning.base),
            (escrow_account(project), earning.base + reserve),
        ]
        if reserve:
            postings.append((reserve_account(project), -reserve))
    else:
        postings = [
            (payable_account(project.currency, submission.expert), -earning.amount),
            (escrow_account(project), earning.amount),
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
            (escrow_account(project), -int(project.review_pay)),
            (reserve_account(project), int(project.review_pay)),
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
            (reserve_account(project), -reserved),
            (payable_account(project.currency, review.reviewer), reserved),
        ],
        kind=TransactionKind.REVIEW_PAY,
        metadata={"project_id": project.pk, "review_id": review.pk, "user_id": review.reviewer_id},
    )
    return int(reserved)


# --- Holds (suspension) ----------------------------------------------------------------------


EARNED_KINDS = (
    TransactionKind.EARNING_RELEASE,
    TransactionKind.BONUS,
    TransactionKind.APPEAL_RELEASE,
    TransactionKind.REVIEW_PAY,
)
