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
