"""Money: a double-entry ledger, funding, Stripe events, payout accounts.

Amounts are integers in minor units. Ledger transactions and entries are append-only: the
database refuses UPDATE and DELETE on them, and on PostgreSQL a deferred constraint trigger
refuses to commit a transaction whose entries do not sum to zero (migration 0002).

Past 400 lines on purpose: Django's one models module per app; the ledger's guards and
their comments read in one place.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q


class AccountKind(models.TextChoices):
    PROJECT_ESCROW = "project_escrow", "Project escrow"
    # What a project has set aside for submitted labels beyond their base pay: the highest
    # tier's uplift, the bonus share and review pay, until the labels are released or forfeited.
    PROJECT_RESERVE = "project_reserve", "Project reserve"
    # An expert's base earnings on one project, waiting for quality evidence (per project).
    EXPERT_PENDING = "expert_pending", "Expert pending"
    EXPERT_PAYABLE = "expert_payable", "Expert payable"
    EXPERT_HELD = "expert_held", "Expert held"
    PAYOUT_IN_FLIGHT = "payout_in_flight", "Payout in flight"
    PLATFORM_REVENUE = "platform_revenue", "Platform revenue"
    STRIPE_CLEARING = "stripe_clearing", "Stripe clearing"
    # What labs owe the platform: refunded or disputed money their escrow no longer held
    # (it was already committed to experts' work), advanced by the platform.
    FUNDING_SHORTFALL = "funding_shortfall", "Funding shortfall (owed by labs)"


# Only these may go negative: Stripe clearing mirrors money held at Stripe (negative = cash the
# platform holds there), revenue can be corrected downwards, and the shortfall account is a
# receivable (negative = what labs owe).
PLATFORM_KINDS = frozenset(
    {AccountKind.PLATFORM_REVENUE, AccountKind.STRIPE_CLEARING, AccountKind.FUNDING_SHORTFALL}
)
PROJECT_KINDS = frozenset({AccountKind.PROJECT_ESCROW, AccountKind.PROJECT_RESERVE})
EXPERT_KINDS = frozenset({AccountKind.EXPERT_PAYABLE, AccountKind.EXPERT_HELD})
# Accounts owned by an expert on one project.
EXPERT_PROJECT_KINDS = frozenset({AccountKind.EXPERT_PENDING})


class TransactionKind(models.TextChoices):
    """Why money moved; every ledger transaction has one (docs/MONEY.md lists the postings)."""

    FUNDING = "funding", "Funding"
    FUNDING_REVERSAL = "funding_reversal", "Funding refunded or disputed"
    FUNDING_REINSTATED = "funding_reinstated", "Funding reinstated (dispute won, refund failed)"
    EARNING = "earning", "Earning booked (pending)"
    EARNING_RELEASE = "earning_release", "Earnings released"
    EARNING_FORFEIT = "earning_forfeit", "Earnings forfeited"
    EARNING_REVERSAL = "earning_reversal", "Earning reversed (review)"
    APPEAL_RELEASE = "appeal_release", "Forfeit reversed on appeal"
    BONUS = "bonus", "Bonus"
    REVIEW_RESERVE = "review_reserve", "Review pay reserved"
    REVIEW_PAY = "review_pay", "Review paid"
    HOLD = "hold", "Held (suspension)"
    RELEASE = "release", "Held money released"
    FORFEIT = "forfeit", "Held money forfeited"
    PAYOUT = "payout", "Payout"
    PAYOUT_SENT = "payout_sent", "Payout sent"
    PAYOUT_UNDO = "payout_undo", "Payout undone"
    PAYOUT_REVERSED = "payout_reversed", "Payout reversed"


class LedgerAccount(models.Model):
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    currency = models.CharField(max_length=3)
    project = models.ForeignKey(
        "projects.Project", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A cache of SUM(entries.amount), written under the account's row lock in the same database
    # transaction as the entries; `ledger_verify` recomputes and compares it.
    balance = models.BigIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["kind", "currency", "project"],
                condition=Q(project__isnull=False, user__isnull=True),
                name="ledger_account_unique_project",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency", "user"],
                condition=Q(user__isnull=False, project__isnull=True),
                name="ledger_account_unique_user",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency", "user", "project"],
                condition=Q(user__isnull=False, project__isnull=False),
                name="ledger_account_unique_user_project",
            ),
            models.UniqueConstraint(
                fields=["kind", "currency"],
                condition=Q(project__isnull=True, user__isnull=True),
                name="ledger_account_unique_platform",
            ),
        ]

    def __str__(self) -> str:
        owner = self.project_id or self.user_id or "platform"
        return f"{self.kind}:{owner}:{self.currency}"


class LedgerTransaction(models.Model):
    idempotency_key = models.CharField(max_length=200, unique=True)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=40, choices=TransactionKind.choices)
    memo = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.idempotency_key


class LedgerEntry(models.Model):
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField()

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_entry_nonzero"),
        ]
        indexes: ClassVar = [models.Index(fields=["account", "transaction"])]

    def __str__(self) -> str:
        return f"{self.amount} on {self.account_id}"


class EarningStatus(models.TextChoices):
    PENDING = "pending", "Pending: waiting for quality evidence"
    RELEASED = "released", "Released to payable"
    FORFEITED = "forfeited", "Forfeited to the project"
    REVERSED = "reversed", "Reversed (rejected in review)"


# The one place the earning status machine is written down. A forfeited earning goes back to
# released only when an admin grants the expert's appeal.
EARNING_TRANSITIONS: dict[str, frozenset[str]] = {
    EarningStatus.PENDING: frozenset(
        {EarningStatus.RELEASED, EarningStatus.FORFEITED, EarningStatus.REVERSED}
    ),
    EarningStatus.FORFEITED: frozenset({EarningStatus.RELEASED}),
    EarningStatus.RELEASED: frozenset(),
    EarningStatus.REVERSED: frozenset(),
}


class Earning(models.Model):
    """One label's money, from submit to release or forfeit, with the reason an expert reads.

    The ledger holds the money (`earning:<submission>` put `base` into the expert's pending
    account and `reserve` into the project's reserve); this row says which decision applied
    to this label, at what multiplier and pace, and why."""

    submission = models.OneToOneField(
        "projects.Submission", on_delete=models.PROTECT, related_name="earning"
    )
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    base = models.BigIntegerField()
    # The uplift ceiling and bonus share set aside with it (returned to escrow when unused).
    reserve = models.BigIntegerField(default=0)
    bonus_reserve = models.BigIntegerField(default=0)
    # Server-measured active time (claim to submit, capped), the basis of pay per hour.
    active_seconds = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=9, choices=EarningStatus.choices, default=EarningStatus.PENDING
    )
    multiplier_basis_points = models.PositiveIntegerField(null=True, blank=True)
    pace_basis_points = models.PositiveIntegerField(null=True, blank=True)
    amount = models.BigIntegerField(default=0)  # what reached payable (0 until released)
    tier = models.CharField(max_length=11, blank=True)
    scoring_run = models.ForeignKey(
        "scoring.ScoringRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(base__gte=0), name="earning_base_nonnegative"),
            models.CheckConstraint(
                condition=Q(reserve__gte=0) & Q(bonus_reserve__gte=0) & Q(amount__gte=0),
                name="earning_amounts_nonnegative",
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["project", "expert", "status"])]

    def __str__(self) -> str:
        return f"earning of submission {self.submission_id}: {self.base} ({self.status})"


class FundingStatus(models.TextChoices):
    OPEN = "open", "Waiting for payment"
    PAID = "paid", "Paid"


class Funding(models.Model):
    """A lab's payment into a project's escrow through Stripe Checkout."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.PROTECT, related_name="fundings"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=4, choices=FundingStatus.choices, default=FundingStatus.OPEN
    )
    checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    # What Stripe said when it was credited (read back from Stripe, never from the event body):
    # refund and dispute events name a charge and its payment intent, which lead here.
    payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    charge_id = models.CharField(max_length=255, blank=True)
    # Why Stripe's view was refused (unpaid, another amount or currency), for the staff.
    note = models.TextField(blank=True)
    # Refunded and disputed (still withdrawn) at Stripe, as booked out of the project; and the
    # part of it the escrow no longer held, which the platform advanced (docs/MONEY.md).
    amount_refunded = models.BigIntegerField(default=0)
    amount_disputed = models.BigIntegerField(default=0)
    shortfall = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="funding_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0)
                & Q(amount_disputed__gte=0)
                & Q(shortfall__gte=0)
                & Q(shortfall__lte=models.F("amount_refunded") + models.F("amount_disputed"))
                & Q(amount__gte=models.F("amount_refunded") + models.F("amount_disputed")),
                name="funding_reversals_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"funding {self.pk}: {self.amount} {self.currency} ({self.status})"


class StripeEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    APPLIED = "applied", "Applied"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class StripeEvent(models.Model):
    """Every verified webhook, stored before it is applied; applied at most once."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    account = models.CharField(max_length=255, blank=True)
    payload = models.JSONField()
    status = models.CharField(
        max_length=8, choices=StripeEventStatus.choices, default=StripeEventStatus.RECEIVED
    )
    note = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.status})"


class PayoutAccount(models.Model):
    """An expert's Stripe connected account (Express-style controller settings)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payout_account"
    )
    stripe_account_id = models.CharField(max_length=255, unique=True)
    transfers_active = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    details_submitted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stripe_account_id} of {self.user_id}"


class BankPayoutStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_TRANSIT = "in_transit", "In transit"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class BankPayout(models.Model):
    """A payout of an expert's connected account to their bank, as Stripe reported it
    (`payout.paid`, `payout.failed`). No money moves in our ledger: the transfer to the
    connected account was the platform's payment; this is Stripe paying it out to the bank."""

    payout_account = models.ForeignKey(
        PayoutAccount, on_delete=models.PROTECT, related_name="bank_payouts"
    )
    stripe_payout_id = models.CharField(max_length=255, unique=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=BankPayoutStatus.choices)
    arrival_date = models.DateTimeField(null=True, blank=True)
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stripe_payout_id}: {self.amount} {self.currency} ({self.status})"


class PayoutRunStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    EXECUTING = "executing", "Executing"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"


class PayoutRun(models.Model):
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3, default="usd")
    status = models.CharField(
        max_length=9, choices=PayoutRunStatus.choices, default=PayoutRunStatus.DRAFT
    )
    total = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Why execution stopped (`balance_insufficient`, `idempotency_error`...): an admin alert.
    alert = models.TextField(blank=True)
    reconciliation = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"payout run {self.pk} ({self.status})"

    @property
    def transfer_group(self) -> str:
        return f"payout-run-{self.pk}"


class PayoutRunApproval(models.Model):
    run = models.ForeignKey(PayoutRun, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["run", "approver"], name="payout_approval_once"),
        ]

    def __str__(self) -> str:
        return f"{self.approver_id} approved run {self.run_id}"


class PayoutLineStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTING = "submitting", "Submitting"
    SENT = "sent", "Sent"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    BLOCKED = "blocked", "Blocked"


# The line status machine, in one place. `submitting -> pending` happens only when Stripe said
# for certain that no transfer was made (a definitive refusal), with a new idempotency key.
PAYOUT_LINE_TRANSITIONS: dict[str, frozenset[str]] = {
    PayoutLineStatus.PENDING: frozenset({PayoutLineStatus.SUBMITTING, PayoutLineStatus.BLOCKED}),
    PayoutLineStatus.SUBMITTING: frozenset(
        {PayoutLineStatus.SENT, PayoutLineStatus.PENDING, PayoutLineStatus.BLOCKED}
    ),
    PayoutLineStatus.SENT: frozenset({PayoutLineStatus.PAID, PayoutLineStatus.FAILED}),
    PayoutLineStatus.PAID: frozenset({PayoutLineStatus.FAILED}),
    PayoutLineStatus.FAILED: frozenset({PayoutLineStatus.PENDING}),
    PayoutLineStatus.BLOCKED: frozenset({PayoutLineStatus.PENDING}),
}
PAYOUT_LINE_DONE = frozenset(
    {
        PayoutLineStatus.SENT,
        PayoutLineStatus.PAID,
        PayoutLineStatus.FAILED,
        PayoutLineStatus.BLOCKED,
    }
)


class PayoutLine(models.Model):
    run = models.ForeignKey(PayoutRun, on_delete=models.CASCADE, related_name="lines")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    payout_account = models.ForeignKey(PayoutAccount, on_delete=models.PROTECT, related_name="+")
    base = models.BigIntegerField()
    tier_adjustment = models.BigIntegerField(default=0)
    bonus = models.BigIntegerField(default=0)
    held = models.BigIntegerField(default=0)
    total = models.BigIntegerField()
    # How base, adjustment and bonus were computed (per project: earned, tier, multiplier).
    breakdown = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=10, choices=PayoutLineStatus.choices, default=PayoutLineStatus.PENDING
    )
    # Bumped only after Stripe proved no transfer exists for the previous key.
    key_generation = models.PositiveIntegerField(default=0)
    transfer_id = models.CharField(max_length=255, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["run", "user"], name="payout_line_once_per_run"),
            models.CheckConstraint(condition=Q(total__gt=0), name="payout_line_total_positive"),
        ]

    def __str__(self) -> str:
        return f"line {self.pk} of run {self.run_id}: {self.total} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        suffix = f"-g{self.key_generation}" if self.key_generation else ""
        return f"payout-line-{self.pk}{suffix}"
