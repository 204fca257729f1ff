"""Payout runs, stage 1: draft and approve. A run pays what experts' payable accounts hold:
money already released by quality evidence (docs/MONEY.md, "Earnings"), bonuses and review
pay. Nothing is computed at payout time any more, so no line can be blocked for lack of
escrow: the money left escrow when it was released."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from marketplace.errors import Conflict, DomainError
from marketplace.models import User
from payouts.models import (
    AccountKind,
    Earning,
    EarningStatus,
    LedgerAccount,
    LedgerEntry,
    PayoutAccount,
    PayoutLine,
    PayoutRun,
    PayoutRunApproval,
    PayoutRunStatus,
    TransactionKind,
)
from payouts.multipliers import BASIS

# The database's refusal of overlapping runs (migration 0007), by name.
OVERLAP_CONSTRAINT = "payouts_payoutrun_no_overlap"

# Payable credits a line's breakdown explains, per project (from the ledger's metadata).
CREDIT_KINDS = {
    TransactionKind.EARNING_RELEASE: "released",
    TransactionKind.BONUS: "bonus",
    TransactionKind.REVIEW_PAY: "review_pay",
    TransactionKind.APPEAL_RELEASE: "appeal",
}


def _period_credits(
    user_ids: list[int], currency: str, start: date, end: date
) -> dict[int, dict[str, dict[str, int]]]:
    """user -> project -> credit kind -> amount booked to payable in the period."""
    rows = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.EXPERT_PAYABLE,
            account__currency=currency,
            account__user_id__in=user_ids,
            transaction__kind__in=list(CREDIT_KINDS),
            transaction__created_at__date__gte=start,
            transaction__created_at__date__lte=end,
        )
        .values_list("account__user_id", "transaction__metadata__project_id", "transaction__kind")
        .annotate(total=Sum("amount"))
    )
    credits: dict[int, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for user_id, project_id, kind, total in rows:
        credits[user_id][str(project_id)][CREDIT_KINDS[kind]] = int(total)
    return credits


def _period_releases(
    user_ids: list[int], currency: str, start: date, end: date
) -> dict[int, dict[str, dict[str, Any]]]:
    """user -> project -> base and amount of the labels released in the period, and tiers."""
    rows = (
        Earning.objects.filter(
            expert_id__in=user_ids,
            currency=currency,
            status=EarningStatus.RELEASED,
            decided_at__date__gte=start,
            decided_at__date__lte=end,
        )
        .values("expert_id", "project_id", "tier", "multiplier_basis_points")
        .annotate(base=Sum("base"), amount=Sum("amount"), active=Sum("active_seconds"))
    )
    releases: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        entry = releases[row["expert_id"]].setdefault(
            str(row["project_id"]), {"base": 0, "amount": 0, "active_seconds": 0, "tiers": {}}
        )
        entry["base"] += int(row["base"])
        entry["amount"] += int(row["amount"])
        entry["active_seconds"] += int(row["active"] or 0)
        multiplier = (row["multiplier_basis_points"] or BASIS) / BASIS
        entry["tiers"][row["tier"] or "provisional"] = multiplier
    return releases


def payout_run_create(
    *, period_start: date, period_end: date, currency: str, created_by: User
) -> PayoutRun:
    """Draft a run: one line per expert with a positive payable and an account that can take
    transfers, with what the period released to them per project (base, the tier and pace
    adjustment, bonus, review pay) as the line's explanation."""
    if period_end < period_start:
        raise DomainError("period_end is before period_start.", code="invalid_period")
    overlapping = Conflict(
        "Another run already covers part of this period.", code="overlapping_period"
    )
    with transaction.atomic():
        # A fast, friendly answer for the common case; the database decides the race (an
        # exclusion constraint on PostgreSQL, triggers on SQLite: migration 0007). A draft
        # inserted concurrently makes this insert wait for its commit, then fail.
        if PayoutRun.objects.filter(
            currency=currency, period_start__lte=period_end, period_end__gte=period_start
        ).exists():
            raise overlapping
        try:
            with transaction.atomic():
                run = PayoutRun.objects.create(
                    period_start=period_start,
                    period_end=period_end,
                    currency=currency,
                    created_by=created_by,
                )
        except IntegrityError as error:
            if OVERLAP_CONSTRAINT in str(error):
                raise overlapping from error
            raise
        payables: dict[int, int] = {
            account.user_id: account.balance
            for account in LedgerAccount.objects.filter(
                kind=AccountKind.EXPERT_PAYABLE, currency=currency, balance__gt=0
            )
            if account.user_id is not None
        }
        held = dict(
            LedgerAccount.objects.filter(
                kind=AccountKind.EXPERT_HELD, currency=currency, user_id__in=payables
            ).values_list("user_id", "balance")
        )
        accounts = {
            account.user_id: account
            for account in PayoutAccount.objects.filter(user_id__in=payables, transfers_active=True)
        }
        eligible = sorted(user_id for user_id in payables if user_id in accounts)
        credits = _period_credits(eligible, currency, period_start, period_end)
        releases = _period_releases(eligible, currency, period_start, period_end)
        lines = []
        for user_id in eligible:
            total = payables[user_id]
            per_project: dict[str, dict[str, Any]] = {}
            for project_id in sorted(
                set(credits.get(user_id, {})) | set(releases.get(user_id, {}))
            ):
                released = releases.get(user_id, {}).get(project_id, {})
                per_project[project_id] = {
                    **credits.get(user_id, {}).get(project_id, {}),
                    "labels_base": released.get("base", 0),
                    "labels_paid": released.get("amount", 0),
                    "active_seconds": released.get("active_seconds", 0),
                    "tiers": released.get("tiers", {}),
                }
            adjustment = sum(
                row["labels_paid"] - row["labels_base"] for row in per_project.values()
            )
            bonus = sum(row.get("bonus", 0) for row in per_project.values())
            # The line's parts always sum to its total: what is not explained by this period's
            # releases and bonuses (earlier unpaid releases, review pay, appeals) is in base.
            adjustment = max(min(adjustment, total - bonus), -total)
            bonus = min(bonus, total)
            lines.append(
                PayoutLine(
                    run=run,
                    user_id=user_id,
                    payout_account=accounts[user_id],
                    base=total - adjustment - bonus,
                    tier_adjustment=adjustment,
                    bonus=bonus,
                    held=held.get(user_id, 0),
                    total=total,
                    breakdown={"projects": per_project},
                )
            )
        PayoutLine.objects.bulk_create(lines, batch_size=2000)
        run.total = sum(line.total for line in lines)
        run.save(update_fields=["total"])
    return run


def payout_run_approve(*, run: PayoutRun, approver: User) -> PayoutRun:
    """Record an approval; above the threshold, the run needs two different approvers."""
    with transaction.atomic():
        locked = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != PayoutRunStatus.DRAFT:
            raise Conflict(f"The run is {locked.status}, not a draft.", code="not_draft")
        if PayoutRunApproval.objects.filter(run=locked, approver=approver).exists():
            raise Conflict("You already approved this run.", code="already_approved")
        PayoutRunApproval.objects.create(run=locked, approver=approver)
        needed = 2 if locked.total > settings.PAYOUT_DUAL_APPROVAL_THRESHOLD else 1
        if locked.approvals.count() >= needed:
            locked.status = PayoutRunStatus.APPROVED
            locked.approved_at = timezone.now()
            locked.save(update_fields=["status", "approved_at"])
    return locked
