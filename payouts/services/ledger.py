"""Posting balanced transactions, and verifying the whole ledger."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from marketplace.errors import DomainError
from payouts.models import (
    EXPERT_KINDS,
    EXPERT_PROJECT_KINDS,
    PLATFORM_KINDS,
    PROJECT_KINDS,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)


class LedgerError(DomainError):
    default_code = "ledger_error"


class InsufficientBalance(LedgerError):
    default_code = "insufficient_balance"


def _owners(kind: str, project: Any, user: Any) -> dict[str, Any]:
    """Which owner fields a kind of account has: a project, an expert, both, or none."""
    return {
        "project": project if kind in PROJECT_KINDS or kind in EXPERT_PROJECT_KINDS else None,
        "user": user if kind in EXPERT_KINDS or kind in EXPERT_PROJECT_KINDS else None,
    }


def account_for(
    *, kind: str, currency: str, project: Any = None, user: Any = None
) -> LedgerAccount:
    """The ledger account of a kind and owner, created on first use."""
    account, _ = LedgerAccount.objects.get_or_create(
        kind=kind, currency=currency, **_owners(kind, project, user)
    )
    return account


def ledger_post(
    *,
    idempotency_key: str,
    currency: str,
    postings: Sequence[tuple[LedgerAccount, int]],
    kind: str,
    memo: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[LedgerTransaction, bool]:
    """Book one balanced transaction, once per idempotency key. Returns (transaction, created).

    Accounts are locked in primary-key order (every poster uses the same order, so two posters
    can never deadlock on each other), the new balances are checked, and no account outside
    PLATFORM_KINDS may go negative.
    """
    deltas: dict[int, int] = defaultdict(int)
    for account, amount in postings:
        if isinstance(amount, bool) or not isinstance(amount, int) or amount == 0:
            raise LedgerError(f"entry amounts are non-zero integers, got {amount!r}")
        if account.currency != currency:
            raise LedgerError(f"account {account} is not in {currency}")
        deltas[account.pk] += amount
    if sum(deltas.values()) != 0:
        raise LedgerError("a ledger transaction must sum to zero")
    deltas = {pk: delta for pk, delta in deltas.items() if delta != 0}
    if not deltas:
        raise LedgerError("a ledger transaction must move money")

    with transaction.atomic():
        existing = LedgerTransaction.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing, False
        locked = list(
            LedgerAccount.objects.select_for_update().filter(pk__in=deltas).order_by("pk")
        )
        for account in locked:
            new_balance = account.balance + deltas[account.pk]
            if new_balance < 0 and account.kind not in PLATFORM_KINDS:
                raise InsufficientBalance(
                    f"{account.kind} account {account.pk} would go negative "
                    f"({account.balance} + {deltas[account.pk]})."
                )
        try:
            with transaction.atomic():
                booked = LedgerTransaction.objects.create(
                    idempotency_key=idempotency_key,
                    currency=currency,
                    kind=kind,
                    memo=memo,
                    metadata=metadata or {},
                )
        except IntegrityError:
            # The same cause was booked concurrently and committed while we waited for locks.
            return LedgerTransaction.objects.get(idempotency_key=idempotency_key), False
        LedgerEntry.objects.bulk_create(
            LedgerEntry(transaction=booked, account_id=pk, amount=amount)
            for pk, amount in deltas.items()
        )
        for account in locked:
            account.balance += deltas[account.pk]
            LedgerAccount.objects.filter(pk=account.pk).update(balance=account.balance)
    # The caller's account objects show the balances this booking left (no re-read needed).
    fresh = {account.pk: account.balance for account in locked}
    for account, _ in postings:
        account.balance = fresh[account.pk]
    return booked, True


def accounts_for(
    specs: Sequence[tuple[str, str, Any, Any]],
) -> list[LedgerAccount]:
    """Several accounts (kind, currency, project, user) in one query, creating any missing:
    the submit path books three accounts on every label."""

    condition = Q(pk__in=[])
    for kind, currency, project, user in specs:
        condition |= Q(kind=kind, currency=currency, **_owners(kind, project, user))
    found = {
        (account.kind, account.currency, account.project_id, account.user_id): account
        for account in LedgerAccount.objects.filter(condition)
    }
    result = []
    for kind, currency, project, user in specs:
        owners = _owners(kind, project, user)
        key = (
            kind,
            currency,
            getattr(owners["project"], "pk", None),
            getattr(owners["user"], "pk", None),
        )
        account = found.get(key) or account_for(
            kind=kind, currency=currency, project=project, user=user
        )
        result.append(account)
    return result


def balance_of(*, kind: str, currency: str, project: Any = None, user: Any = None) -> int:
    account = LedgerAccount.objects.filter(
        kind=kind, currency=currency, **_owners(kind, project, user)
    ).first()
    return account.balance if account else 0


@dataclass
class LedgerReport:
    accounts_checked: int = 0
    transactions_checked: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)
    unbalanced_transactions: list[int] = field(default_factory=list)
    negative_accounts: list[int] = field(default_factory=list)
    trial_balance: dict[str, int] = field(default_factory=dict)

    @property
    def is_clean(self) -> bool:
        return not (
            self.drift
            or self.unbalanced_transactions
            or self.negative_accounts
            or any(self.trial_balance.values())
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.is_clean,
            "accounts_checked": self.accounts_checked,
            "transactions_checked": self.transactions_checked,
            "drift": self.drift,
            "unbalanced_transactions": self.unbalanced_transactions,
            "negative_accounts": self.negative_accounts,
            "trial_balance": self.trial_balance,
        }


def ledger_verify() -> LedgerReport:
    """Recompute every balance from the entries and report any difference from the cache,
    any transaction that does not sum to zero, negative non-platform accounts, and the trial
    balance per currency (which must be zero)."""
    report = LedgerReport()
    sums = dict(
        LedgerEntry.objects.values("account_id")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "total")
    )
    for account in LedgerAccount.objects.all().iterator(chunk_size=2000):
        report.accounts_checked += 1
        recomputed = sums.get(account.pk, 0) or 0
        if recomputed != account.balance:
            report.drift.append(
                {"account": account.pk, "cached": account.balance, "entries": recomputed}
            )
        if recomputed < 0 and account.kind not in PLATFORM_KINDS:
            report.negative_accounts.append(account.pk)
        report.trial_balance[account.currency] = (
            report.trial_balance.get(account.currency, 0) + recomputed
        )
    per_transaction = (
        LedgerEntry.objects.values("transaction_id")
        .annotate(total=Sum("amount"))
        .values_list("transaction_id", "total")
    )
    for transaction_id, total in per_transaction.iterator(chunk_size=5000):
        report.transactions_checked += 1
        if total != 0:
            report.unbalanced_transactions.append(transaction_id)
    return report
