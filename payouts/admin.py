"""Read-only money data in the Django admin. Every change goes through the services (and the
admin desk's API), never a raw edit: ledger rows are append-only in the database anyway."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from marketplace.admin import ReadOnlyAdmin
from payouts.models import (
    BankPayout,
    Funding,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    PayoutAccount,
    PayoutLine,
    PayoutRun,
    StripeEvent,
)


class EntryInline(admin.TabularInline):
    model = LedgerEntry
    extra = 0
    can_delete = False
    readonly_fields = ["account", "amount"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "currency", "project", "user", "balance"]
    list_filter = ["kind", "currency"]


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ["id", "idempotency_key", "kind", "currency", "created_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["idempotency_key"]
    inlines = [EntryInline]


@admin.register(Funding)
class FundingAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "project",
        "amount",
        "currency",
        "status",
        "amount_refunded",
        "amount_disputed",
        "shortfall",
        "created_at",
        "paid_at",
    ]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "status", "received_at", "processed_at"]
    list_filter = ["status", "type"]


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    list_display = ["user", "stripe_account_id", "transfers_active", "payouts_enabled"]


@admin.register(PayoutRun)
class PayoutRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "period_start", "period_end", "currency", "status", "total"]


@admin.register(PayoutLine)
class PayoutLineAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "user", "total", "status", "transfer_id"]
    list_filter = ["status"]


@admin.register(BankPayout)
class BankPayoutAdmin(ReadOnlyAdmin):
    list_display = ["stripe_payout_id", "payout_account", "amount", "currency", "status"]
    list_filter = ["status"]
