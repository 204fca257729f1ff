"""Reads of money that other apps use."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db.models import BigIntegerField, Count, OuterRef, Subquery, Sum
from django.db.models.functions import Cast, TruncDate

from payouts.models import (
    AccountKind,
    BankPayout,
    Earning,
    EarningStatus,
    LedgerAccount,
    LedgerEntry,
    PayoutAccount,
    PayoutLine,
    PayoutLineStatus,
    PayoutRun,
    PayoutRunStatus,
    TransactionKind,
)
from payouts.services.earnings import task_cost_ceiling
from projects.models import Assignment, AssignmentStatus, QualityStop


def project_escrow_balance(*, project: Any) -> int:
    account = LedgerAccount.objects.filter(
        kind=AccountKind.PROJECT_ESCROW, project=project, currency=project.currency
    ).first()
    return account.balance if account else 0


def task_price_ceiling(*, project: Any) -> int:
    """The most one task can cost (an hourly task at its longest, the lease): what a lease
    reserves and a submit books (docs/MONEY.md, "What one task costs")."""

    return task_cost_ceiling(project=project, cap_seconds=int(project.lease_minutes) * 60)


def project_can_pay_one_task(*, project: Any) -> bool:
    return project_escrow_balance(project=project) >= task_price_ceiling(project=project)


# Ledger transaction kinds that move a project's escrow for labels: booked at submit (pending
# and reserve), and what comes back (unused reserve, pace, forfeits, reversals).
SPENDING_KINDS = (
    TransactionKind.EARNING,
    TransactionKind.EARNING_RELEASE,
    TransactionKind.EARNING_FORFEIT,
    TransactionKind.EARNING_REVERSAL,
    TransactionKind.APPEAL_RELEASE,
    TransactionKind.BONUS,
    TransactionKind.REVIEW_RESERVE,
)


# Ledger transaction kinds that move money into an expert's payable for a project's work (and a
# reversal that takes it back): what "paid to experts" sums.
PAID_KINDS = (
    TransactionKind.EARNING_RELEASE,
    TransactionKind.BONUS,
    TransactionKind.REVIEW_PAY,
    TransactionKind.APPEAL_RELEASE,
    TransactionKind.EARNING_REVERSAL,
)


def project_spent(*, project: Any) -> int:
    """What the project's escrow has committed to labels so far: released to experts, waiting
    in pending, and set aside in reserve (minor units); what a budget cap limits."""

    total = LedgerEntry.objects.filter(
        account__kind=AccountKind.PROJECT_ESCROW,
        account__project=project,
        transaction__kind__in=SPENDING_KINDS,
    ).aggregate(total=Sum("amount"))["total"]
    return -int(total or 0)


def escrow_balance_subquery() -> Any:
    """`project_escrow_balance` as a subquery on an outer Project row (NULL without one)."""

    accounts = LedgerAccount.objects.filter(
        kind=AccountKind.PROJECT_ESCROW, project=OuterRef("pk"), currency=OuterRef("currency")
    )
    return Subquery(accounts.values("balance")[:1])


def project_spent_subquery() -> Any:
    """`project_spent` as a subquery on an outer Project row (NULL before any spending)."""

    entries = LedgerEntry.objects.filter(
        account__kind=AccountKind.PROJECT_ESCROW,
        account__project=OuterRef("pk"),
        transaction__kind__in=SPENDING_KINDS,
    )
    spent = entries.order_by().values("account__project").annotate(total=-Sum("amount"))
    return Cast(Subquery(spent.values("total")), BigIntegerField())


def project_spent_by_day(*, project: Any, since: Any) -> dict[Any, int]:
    """Spending of `project_spent`, per calendar day (UTC) since a moment, for the dashboard."""

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
    return PayoutAccount.objects.filter(user=user).first()


def bank_payouts_of(*, user: Any, limit: int = 20) -> list[Any]:
    """The expert's latest payouts to their bank, as Stripe reported them."""

    return list(
        BankPayout.objects.filter(payout_account__user=user).order_by("-created_at", "-pk")[:limit]
    )


def payout_runs_needing_attention() -> Any:
    """Runs an admin has to act on: drafts to approve, approved to execute, stopped runs."""

    return PayoutRun.objects.exclude(status=PayoutRunStatus.COMPLETED)


def payout_lines_for(*, user: Any) -> Any:
    return PayoutLine.objects.filter(user=user).select_related("run").order_by("-run_id")


def _hourly(amount: int, seconds: int) -> int | None:
    """Effective pay per hour of server-measured active time (minor units), or None."""
    return amount * 3600 // seconds if seconds > 0 else None


def expert_earnings(*, user: Any) -> dict[str, Any]:
    """What an expert sees of their money: balances (pending, payable, held, paid) per
    currency, and per project the labels pending, released (at which tiers, with the effective
    hourly pay) and forfeited or reversed, each with its reason; their quality stops."""

    balances: dict[str, dict[str, int]] = defaultdict(
        lambda: {"pending": 0, "payable": 0, "held": 0, "paid": 0}
    )
    names: dict[str, str] = {
        AccountKind.EXPERT_PENDING: "pending",
        AccountKind.EXPERT_PAYABLE: "payable",
        AccountKind.EXPERT_HELD: "held",
    }
    for account in LedgerAccount.objects.filter(user=user, kind__in=list(names)):
        balances[account.currency][names[account.kind]] += account.balance
    for currency, total in PayoutLine.objects.filter(
        user=user, status__in=[PayoutLineStatus.SENT, PayoutLineStatus.PAID]
    ).values_list("run__currency", "total"):
        balances[currency]["paid"] += total
    projects: dict[int, dict[str, Any]] = {}
    rows = (
        Earning.objects.filter(expert=user)
        .values("project_id", "project__title", "currency", "status")
        .annotate(
            labels=Count("id"),
            base=Sum("base"),
            amount=Sum("amount"),
            seconds=Sum("active_seconds"),
        )
    )
    for row in rows:
        entry = projects.setdefault(
            row["project_id"],
            {
                "project": row["project_id"],
                "title": row["project__title"],
                "currency": row["currency"],
                **{status: {"labels": 0, "base": 0, "amount": 0} for status in EarningStatus},
                "bonus": 0,
                "active_seconds_released": 0,
            },
        )
        entry[row["status"]] = {
            "labels": row["labels"],
            "base": int(row["base"] or 0),
            "amount": int(row["amount"] or 0),
        }
        if row["status"] == EarningStatus.RELEASED:
            entry["active_seconds_released"] = int(row["seconds"] or 0)
    bonuses = (
        LedgerEntry.objects.filter(
            account__user=user,
            account__kind=AccountKind.EXPERT_PAYABLE,
            transaction__kind=TransactionKind.BONUS,
        )
        .values_list("transaction__metadata__project_id")
        .annotate(total=Sum("amount"))
    )
    for project_id, total in bonuses:
        if int(project_id) in projects:
            projects[int(project_id)]["bonus"] = int(total)
    reasons = defaultdict(list)
    for project_id, status, reason in (
        Earning.objects.filter(expert=user)
        .exclude(reason="")
        .values_list("project_id", "status", "reason")
        .distinct()
    ):
        reasons[project_id].append({"status": status, "reason": reason})
    for project_id, entry in projects.items():
        released = entry[EarningStatus.RELEASED]["amount"] + entry["bonus"]
        entry["effective_hourly"] = _hourly(released, entry["active_seconds_released"])
        entry["reasons"] = reasons.get(project_id, [])[:10]
    stops = [
        {
            "id": stop.pk,
            "project": stop.project_id,
            "title": stop.project.title,
            "status": stop.status,
            "reason": stop.reason,
            "evidence": stop.evidence,
            "tasks_done": stop.tasks_done,
            "forfeited": stop.forfeited,
            "created_at": stop.created_at,
            "appeal": stop.appeal,
            "decision_note": stop.decision_note,
        }
        for stop in QualityStop.objects.filter(expert=user).select_related("project")
    ]
    return {
        "balances": dict(balances),
        "projects": sorted(projects.values(), key=lambda entry: -entry["project"]),
        "quality_stops": stops,
    }


def effective_hourly_by_expert(*, project: Any) -> dict[int, dict[str, Any]]:
    """Per expert on a project: released pay (with bonus) per hour of active time, and the
    same for pending work at base, for the lab's and the desk's tables."""

    table: dict[int, dict[str, Any]] = defaultdict(
        lambda: {
            "released": 0,
            "released_seconds": 0,
            "pending": 0,
            "pending_seconds": 0,
            "forfeited": 0,
            "bonus": 0,
        }
    )
    rows = (
        Earning.objects.filter(project=project)
        .values("expert_id", "status")
        .annotate(base=Sum("base"), amount=Sum("amount"), seconds=Sum("active_seconds"))
    )
    for row in rows:
        entry = table[row["expert_id"]]
        if row["status"] == EarningStatus.RELEASED:
            entry["released"] += int(row["amount"] or 0)
            entry["released_seconds"] += int(row["seconds"] or 0)
        elif row["status"] == EarningStatus.PENDING:
            entry["pending"] += int(row["base"] or 0)
            entry["pending_seconds"] += int(row["seconds"] or 0)
        elif row["status"] == EarningStatus.FORFEITED:
            entry["forfeited"] += int(row["base"] or 0)
    for user_id, total in (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.EXPERT_PAYABLE,
            transaction__kind=TransactionKind.BONUS,
            transaction__metadata__project_id=project.pk,
        )
        .values_list("account__user_id")
        .annotate(total=Sum("amount"))
    ):
        table[user_id]["bonus"] = int(total)
    for entry in table.values():
        entry["hourly"] = _hourly(entry["released"] + entry["bonus"], entry["released_seconds"])
        entry["hours"] = round((entry["released_seconds"] + entry["pending_seconds"]) / 3600, 3)
    return dict(table)


def project_money(*, project: Any) -> dict[str, int]:
    """A project's money as the lab reads it (minor units): `escrow` free to spend, `reserved`
    by open leases and set aside for submitted labels (uplift, bonus and review pay),
    `pending` base pay waiting for quality evidence, `paid` to experts (released, bonuses,
    review pay and appeals, less reversals), `spent` what a budget cap counts (pending +
    reserve + paid), and `fees` the platform's share of the fundings."""

    balances = {
        kind: int(total or 0)
        for kind, total in LedgerAccount.objects.filter(project=project, currency=project.currency)
        .values_list("kind")
        .annotate(total=Sum("balance"))
    }
    leases = (
        Assignment.objects.filter(project=project, status=AssignmentStatus.ACTIVE).aggregate(
            total=Sum("reserved_amount")
        )["total"]
        or 0
    )
    paid = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.EXPERT_PAYABLE,
            transaction__metadata__project_id=project.pk,
        )
        .filter(transaction__kind__in=PAID_KINDS)
        .aggregate(total=Sum("amount"))["total"]
        or 0
    )
    fees = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.PLATFORM_REVENUE,
            transaction__kind=TransactionKind.FUNDING,
            transaction__metadata__project_id=project.pk,
        ).aggregate(total=Sum("amount"))["total"]
        or 0
    )
    return {
        "escrow": balances.get(AccountKind.PROJECT_ESCROW, 0),
        "reserved": int(leases) + balances.get(AccountKind.PROJECT_RESERVE, 0),
        "leases": int(leases),
        "pending": balances.get(AccountKind.EXPERT_PENDING, 0),
        "paid": int(paid),
        "spent": project_spent(project=project),
        "fees": int(fees),
    }


def project_low_balance(*, project: Any, escrow: int) -> dict[str, Any]:
    """How many more tasks escrow covers at the most a task can cost, and whether that is below
    BUDGET_LOW_TASKS (the threshold of the `project.budget_low` webhook), for the page's
    warning. `escrow` is the free balance the caller already read."""
    ceiling = task_price_ceiling(project=project)
    tasks_covered = escrow // ceiling if ceiling > 0 else None
    return {
        "tasks_covered": tasks_covered,
        "is_low": tasks_covered is not None and tasks_covered < settings.BUDGET_LOW_TASKS,
        "threshold_tasks": settings.BUDGET_LOW_TASKS,
    }
