"""Earnings (escrow -> expert payable), holds for suspended experts, releases and forfeits."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from marketplace.models import User
from payouts.models import AccountKind, LedgerAccount, LedgerEntry
from payouts.services.ledger import account_for, ledger_post


def _median_seconds(project: Any) -> int:
    from projects.models import Submission, SubmissionStatus

    accepted = Submission.objects.filter(project=project, status=SubmissionStatus.ACCEPTED)
    count = accepted.count()
    if count == 0:
        return 0
    return int(
        accepted.order_by("seconds_spent").values_list("seconds_spent", flat=True)[count // 2]
    )


def earning_amount(*, project: Any, seconds_spent: int) -> int:
    """Base pay for one accepted submission, in minor units.

    Per task: the base rate. Per hour: the seconds spent, capped at twice the project's median
    (so a task left open over lunch is not billed), times the hourly rate, rounded down.
    """
    if project.pay_unit == "task":
        return int(project.base_rate)
    median = _median_seconds(project)
    billable = min(seconds_spent, 2 * median) if median else seconds_spent
    return int(project.base_rate) * int(billable) // 3600


def earning_book(*, submission: Any) -> int:
    """Book a submission's base earning inside the caller's transaction; returns the amount."""
    project = submission.project
    amount = earning_amount(project=project, seconds_spent=submission.seconds_spent)
    if amount <= 0:
        return 0
    currency = project.currency
    escrow = account_for(kind=AccountKind.PROJECT_ESCROW, currency=currency, project=project)
    _, booked = ledger_post(
        idempotency_key=f"earning:{submission.pk}",
        currency=project.currency,
        postings=[
            (escrow, -amount),
            (
                account_for(
                    kind=AccountKind.EXPERT_PAYABLE,
                    currency=project.currency,
                    user=submission.expert,
                ),
                amount,
            ),
        ],
        kind="earning",
        metadata={
            "project_id": project.pk,
            "user_id": submission.expert_id,
            "submission_id": submission.pk,
        },
    )
    if booked:
        _maybe_budget_low(project)
    return amount


def _maybe_budget_low(project: Any) -> None:
    """Tell the lab once when escrow falls below BUDGET_LOW_TASKS tasks' worth (webhook
    `project.budget_low`); funding re-arms it."""
    from django.conf import settings

    from payouts.selectors import project_escrow_balance, task_price_ceiling

    threshold = settings.BUDGET_LOW_TASKS * task_price_ceiling(project=project)
    escrow_balance = project_escrow_balance(project=project)
    if escrow_balance >= threshold:
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
            ledger_post(
                idempotency_key=f"hold:{payable.pk}:{_state_key(payable)}",
                currency=payable.currency,
                postings=[(payable, -payable.balance), (held, payable.balance)],
                kind="hold",
                metadata={"user_id": user.pk},
            )
            moved += payable.balance
    return moved


def held_release(*, user: User) -> int:
    """An admin releases held money back to the expert's payable."""
    moved = 0
    with transaction.atomic():
        for held in _balances(user, AccountKind.EXPERT_HELD):
            payable = account_for(
                kind=AccountKind.EXPERT_PAYABLE, currency=held.currency, user=user
            )
            ledger_post(
                idempotency_key=f"release:{held.pk}:{_state_key(held)}",
                currency=held.currency,
                postings=[(held, -held.balance), (payable, held.balance)],
                kind="release",
                metadata={"user_id": user.pk},
            )
            moved += held.balance
    return moved


def held_forfeit(*, user: User) -> int:
    """Forfeited money returns to the escrows of the projects it was earned on.

    The held balance is split in proportion to what the expert earned on each project (the
    ledger does not track which earnings a payout consumed); the rounding residue goes to the
    project with the largest share, so the split always sums exactly.
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
                    transaction__kind="earning",
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
                kind="forfeit",
                metadata={"user_id": user.pk, "split": split},
            )
            moved += amount
    return moved
