"""What a lab reads of its money beyond one project's figures: its fundings, and every
project's figures from the ledger with totals per currency (docs/MONEY.md, "What a lab sees of
its money")."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import QuerySet, Sum

from payouts.models import (
    AccountKind,
    Funding,
    FundingStatus,
    LedgerAccount,
    LedgerEntry,
    TransactionKind,
)
from payouts.selectors import PAID_KINDS, SPENDING_KINDS
from projects.models import Assignment, AssignmentStatus, Project


def project_fundings(*, project: Any) -> QuerySet[Funding]:
    """Every funding of a project, newest first: what the lab paid in and when Stripe confirmed."""
    return Funding.objects.filter(project=project).order_by("-created_at", "-pk")


def lab_money(*, lab_id: int) -> dict[str, Any]:
    """A lab's money across its projects, from the ledger, in a fixed number of queries: per
    project the figures of `project_money` (escrow, reserved, pending, paid, spent, fees) and
    funded (paid fundings, gross), and totals per currency (projects in different currencies
    are never added together)."""
    projects = list(
        Project.objects.filter(lab_id=lab_id).order_by("-pk").values("pk", "title", "currency")
    )
    ids = [row["pk"] for row in projects]
    currency_of = {row["pk"]: row["currency"] for row in projects}
    balances: dict[tuple[int, str], int] = defaultdict(int)
    for project_id, currency, kind, total in (
        LedgerAccount.objects.filter(project_id__in=ids)
        .values_list("project_id", "currency", "kind")
        .annotate(total=Sum("balance"))
    ):
        if currency == currency_of[project_id]:
            balances[(project_id, kind)] += int(total or 0)
    leases = dict(
        Assignment.objects.filter(project_id__in=ids, status=AssignmentStatus.ACTIVE)
        .values_list("project_id")
        .annotate(total=Sum("reserved_amount"))
    )

    def by_project(queryset: Any, sign: int) -> dict[int, int]:
        rows = queryset.values_list("transaction__metadata__project_id").annotate(
            total=Sum("amount")
        )
        return {int(project_id): sign * int(total or 0) for project_id, total in rows}

    paid = by_project(
        LedgerEntry.objects.filter(
            account__kind=AccountKind.EXPERT_PAYABLE,
            transaction__metadata__project_id__in=ids,
            transaction__kind__in=PAID_KINDS,
        ),
        1,
    )
    fees = by_project(
        LedgerEntry.objects.filter(
            account__kind=AccountKind.PLATFORM_REVENUE,
            transaction__kind=TransactionKind.FUNDING,
            transaction__metadata__project_id__in=ids,
        ),
        1,
    )
    spent = {
        project_id: -int(total or 0)
        for project_id, total in LedgerEntry.objects.filter(
            account__kind=AccountKind.PROJECT_ESCROW,
            account__project_id__in=ids,
            transaction__kind__in=SPENDING_KINDS,
        )
        .values_list("account__project_id")
        .annotate(total=Sum("amount"))
    }
    funded = dict(
        Funding.objects.filter(project_id__in=ids, status=FundingStatus.PAID)
        .values_list("project_id")
        .annotate(total=Sum("amount"))
    )
    rows: list[dict[str, Any]] = []
    totals: dict[str, dict[str, int]] = {}
    for project in projects:
        project_id = project["pk"]
        lease_total = int(leases.get(project_id) or 0)
        row: dict[str, Any] = {
            "project": project_id,
            "title": project["title"],
            "currency": project["currency"],
            "funded": int(funded.get(project_id) or 0),
            "escrow": balances[(project_id, AccountKind.PROJECT_ESCROW)],
            "reserved": lease_total + balances[(project_id, AccountKind.PROJECT_RESERVE)],
            "pending": balances[(project_id, AccountKind.EXPERT_PENDING)],
            "paid": paid.get(project_id, 0),
            "spent": spent.get(project_id, 0),
            "fees": fees.get(project_id, 0),
        }
        rows.append(row)
        total = totals.setdefault(
            project["currency"],
            dict.fromkeys(("funded", "escrow", "reserved", "pending", "paid", "spent", "fees"), 0),
        )
        for key in total:
            total[key] += row[key]
    return {"projects": rows, "totals": totals}
