"""Reads of money that other apps use."""

from __future__ import annotations

from typing import Any

from payouts.models import AccountKind, LedgerAccount
from scoring.models import HIGHEST_MULTIPLIER_BASIS_POINTS

BASIS = 10_000


def project_escrow_balance(*, project: Any) -> int:
    account = LedgerAccount.objects.filter(
        kind=AccountKind.PROJECT_ESCROW, project=project, currency=project.currency
    ).first()
    return account.balance if account else 0


def task_price_ceiling(*, project: Any) -> int:
    """The most one task can cost: the base rate at the highest tier multiplier (for an hourly
    project, one hour), rounded up."""
    return -(-int(project.base_rate) * HIGHEST_MULTIPLIER_BASIS_POINTS // BASIS)


def project_can_pay_one_task(*, project: Any) -> bool:
    return project_escrow_balance(project=project) >= task_price_ceiling(project=project)


# Ledger transaction kinds that spend a project's escrow on labels.
SPENDING_KINDS = ("earning", "earning_reversal", "tier_adjustment", "bonus")


def project_spent(*, project: Any) -> int:
    """What the project has paid out of escrow for labels so far: base earnings net of
    reversals, plus tier adjustments and bonuses booked at payout (minor units)."""
    from django.db.models import Sum

    from payouts.models import LedgerEntry

    total = LedgerEntry.objects.filter(
        account__kind=AccountKind.PROJECT_ESCROW,
        account__project=project,
        transaction__kind__in=SPENDING_KINDS,
    ).aggregate(total=Sum("amount"))["total"]
    return -int(total or 0)


def escrow_balance_subquery() -> Any:
    """`project_escrow_balance` as a subquery on an outer Project row (NULL without one)."""
    from django.db.models import OuterRef, Subquery

    accounts = LedgerAccount.objects.filter(
        kind=AccountKind.PROJECT_ESCROW, project=OuterRef("pk"), currency=OuterRef("currency")
    )
    return Subquery(accounts.values("balance")[:1])


def project_spent_subquery() -> Any:
    """`project_spent` as a subquery on an outer Project row (NULL before any spending)."""
    from django.db.models import BigIntegerField, OuterRef, Subquery, Sum
    from django.db.models.functions import Cast

    from payouts.models import LedgerEntry

    entries = LedgerEntry.objects.filter(
        account__kind=AccountKind.PROJECT_ESCROW,
        account__project=OuterRef("pk"),
        transaction__kind__in=SPENDING_KINDS,
    )
    spent = entries.order_by().values("account__project").annotate(total=-Sum("amount"))
    return Cast(Subquery(spent.values("total")), BigIntegerField())


def project_spent_by_day(*, project: Any, since: Any) -> dict[Any, int]:
    """Spending of `project_spent`, per calendar day (UTC) since a moment, for the dashboard."""
    from django.db.models import Sum
    from django.db.models.functions import TruncDate

    from payouts.models import LedgerEntry

    rows = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.PROJECT_ESCROW,
            account__project=project,
            transaction__kind__in=SPENDING_KINDS,
            transaction__created_at__gte=since,
        )
        .annotate(day=TruncDate("transaction__created_at"))
        .values("day")
        .annotate(total=Sum("amount"))
    )
    return {row["day"]: -int(row["total"] or 0) for row in rows}


def payout_account_of(*, user: Any) -> Any:
    from payouts.models import PayoutAccount

    return PayoutAccount.objects.filter(user=user).first()


def payout_runs_needing_attention() -> Any:
    """Runs an admin has to act on: drafts to approve, approved to execute, stopped runs."""
    from payouts.models import PayoutRun, PayoutRunStatus

    return PayoutRun.objects.exclude(status=PayoutRunStatus.COMPLETED)
