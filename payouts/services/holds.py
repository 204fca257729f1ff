"""Money stopped or held: a quality stop forfeits the expert's pending money on the project
back to escrow (and an appeal an admin grants pays it at x1.0); a suspension holds the expert's
payable until an admin releases or forfeits it (docs/MONEY.md, step 3 of the lifecycle in
`earnings.py`).
"""

from __future__ import annotations

from typing import Any

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
)
from payouts.services.earnings import (
    EARNED_KINDS,
    escrow_account,
    payable_account,
    pending_account,
    reserve_account,
)
from payouts.services.ledger import (
    account_for,
    ledger_post,
)
from projects.models import Project


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
    postings = [
        (pending_account(project, stop.expert), -base),
        (escrow_account(project), base + reserve),
    ]
    if reserve:
        postings.append((reserve_account(project), -reserve))
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
        postings=[
            (escrow_account(project), -amount),
            (payable_account(project.currency, stop.expert), amount),
        ],
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
