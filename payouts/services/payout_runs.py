"""Money out: payout runs (draft -> approve -> execute), crash-safe and idempotent.

Bookings of one line (keys name their cause, so a retried step can never book twice):
- `tier:<line>:<project>`: the tier adjustment, escrow <-> expert payable;
- `payout:<line>:g<generation>`: the total leaves the payable for "payout in flight", in the same
  database transaction that moves the line `pending -> submitting`;
- `payout-sent:<line>`: Stripe made the transfer: in flight -> Stripe clearing;
- `payout-undo:<line>:g<generation>`: Stripe refused for certain (no transfer): back to payable;
- `payout-reversed:<line>:g<generation>`: a sent transfer failed or was reversed: clearing ->
  payable, and the line can be retried.

The Stripe call is never made inside a database transaction. Which executor sends a line is
decided by a compare-and-swap on its status, so two executors (or a retry after a crash) never
both create a transfer; the idempotency key is stored with the line and changes only once
Stripe has proved that no transfer exists for the old one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from marketplace.errors import Conflict, DomainError
from marketplace.models import User
from payouts.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    PayoutAccount,
    PayoutLine,
    PayoutLineStatus,
    PayoutRun,
    PayoutRunApproval,
    PayoutRunStatus,
    StripeEventStatus,
)
from payouts.services.ledger import InsufficientBalance, account_for, ledger_post
from payouts.stripe_gateway import stripe_client
from scoring.models import TIER_MULTIPLIER_BASIS_POINTS

logger = logging.getLogger(__name__)
BASIS = 10_000


def _adjustment(earned: int, basis_points: int) -> int:
    """multiplier x base - base, in integer minor units, rounded half away from zero."""
    difference = earned * (basis_points - BASIS)
    quotient, remainder = divmod(abs(difference), BASIS)
    rounded = quotient + (1 if remainder * 2 >= BASIS else 0)
    return rounded if difference >= 0 else -rounded


def _period_earnings(
    user_ids: list[int], currency: str, start: date, end: date
) -> dict[int, dict[int, int]]:
    """user -> project -> base earned in the period (from the ledger's earning transactions)."""
    rows = (
        LedgerEntry.objects.filter(
            account__kind=AccountKind.EXPERT_PAYABLE,
            account__currency=currency,
            account__user_id__in=user_ids,
            transaction__kind="earning",
            transaction__created_at__date__gte=start,
            transaction__created_at__date__lte=end,
        )
        .values_list("account__user_id", "transaction__metadata__project_id")
        .annotate(total=Sum("amount"))
    )
    earned: dict[int, dict[int, int]] = defaultdict(dict)
    for user_id, project_id, total in rows:
        earned[user_id][int(project_id)] = int(total)
    return earned


def _bonus_shares(
    projects: dict[int, Any], line_users: list[int], currency: str, start: date, end: date
) -> dict[int, dict[int, dict[str, Any]]]:
    """project -> user -> bonus row, for projects with a bonus pool (MONEY.md, "Bonuses").

    The period's pool is `bonus_pool_percent` of the base earnings booked on the project in the
    period; it is split among this run's contributors at bronze or better (not provisional,
    not on probation) in proportion to their positive impact in the latest scoring snapshot,
    rounded down. The rounding residue, and the shares of anyone without a line in this run,
    stay in escrow.
    """
    from scoring.models import TIER_RANK, ContributorScore, Tier
    from scoring.selectors import latest_succeeded_run

    shares: dict[int, dict[int, dict[str, Any]]] = {}
    for project_id, project in projects.items():
        if not project.bonus_pool_percent:
            continue
        period_base = (
            LedgerEntry.objects.filter(
                account__kind=AccountKind.EXPERT_PAYABLE,
                account__currency=currency,
                transaction__kind="earning",
                transaction__metadata__project_id=project_id,
                transaction__created_at__date__gte=start,
                transaction__created_at__date__lte=end,
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        pool = int(period_base) * project.bonus_pool_percent // 100
        run = latest_succeeded_run(project=project)
        if pool <= 0 or run is None:
            continue
        impacts = {
            score.expert_id: float(score.impact_value or 0.0)
            for score in ContributorScore.objects.filter(run=run, expert_id__in=line_users)
            if score.tier != Tier.PROVISIONAL
            and TIER_RANK.get(score.tier, 0) >= TIER_RANK[Tier.BRONZE]
            and (score.impact_value or 0) > 0
        }
        total_impact = sum(impacts.values())
        if total_impact <= 0:
            continue
        shares[project_id] = {
            user_id: {
                "pool": pool,
                "impact": impact,
                "share": impact / total_impact,
                "bonus": int(pool * impact / total_impact),
                "scoring_run": run.pk,
            }
            for user_id, impact in impacts.items()
        }
    return shares


def payout_run_create(
    *, period_start: date, period_end: date, currency: str, created_by: User
) -> PayoutRun:
    """Draft a run: one line per expert with a positive payable and an account that can take
    transfers. Tier adjustments are computed for the period's earnings from each project's
    latest scoring snapshot (provisional = x1.0 until scoring exists)."""
    from projects.models import Project
    from scoring.selectors import contributor_tier

    if period_end < period_start:
        raise DomainError("period_end is before period_start.", code="invalid_period")
    with transaction.atomic():
        overlapping = PayoutRun.objects.select_for_update().filter(
            currency=currency, period_start__lte=period_end, period_end__gte=period_start
        )
        if overlapping.exists():
            raise Conflict(
                "Another run already covers part of this period.", code="overlapping_period"
            )
        run = PayoutRun.objects.create(
            period_start=period_start,
            period_end=period_end,
            currency=currency,
            created_by=created_by,
        )
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
        earned = _period_earnings(eligible, currency, period_start, period_end)
        projects = {
            project.pk: project
            for project in Project.objects.filter(
                pk__in={pid for per_user in earned.values() for pid in per_user}
            )
        }
        users = User.objects.in_bulk(eligible)
        bonuses = _bonus_shares(projects, eligible, currency, period_start, period_end)
        lines = []
        for user_id in eligible:
            base = payables[user_id]
            adjustment = 0
            bonus_total = 0
            per_project: dict[str, dict[str, Any]] = {}
            for project_id, amount in sorted(earned.get(user_id, {}).items()):
                tier = contributor_tier(expert=users[user_id], project=projects[project_id])
                basis_points = TIER_MULTIPLIER_BASIS_POINTS[tier]
                project_adjustment = _adjustment(amount, basis_points)
                adjustment += project_adjustment
                per_project[str(project_id)] = {
                    "earned": amount,
                    "tier": tier,
                    "multiplier": basis_points / BASIS,
                    "adjustment": project_adjustment,
                    "bonus": 0,
                }
            for project_id, per_user in bonuses.items():
                row = per_user.get(user_id)
                if row and row["bonus"] > 0:
                    entry = per_project.setdefault(
                        str(project_id),
                        {"earned": 0, "tier": None, "multiplier": 1.0, "adjustment": 0},
                    )
                    entry["bonus"] = row["bonus"]
                    entry["bonus_computation"] = row
                    bonus_total += row["bonus"]
            total = base + adjustment + bonus_total
            if total <= 0:
                continue
            lines.append(
                PayoutLine(
                    run=run,
                    user_id=user_id,
                    payout_account=accounts[user_id],
                    base=base,
                    tier_adjustment=adjustment,
                    bonus=bonus_total,
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


@dataclass
class ExecuteReport:
    status: str
    sent: int = 0
    pending: int = 0
    blocked: int = 0
    alert: str = ""


def _line_transition(line: PayoutLine, expected: str, new: str, **fields: Any) -> bool:
    """Compare-and-swap a line's status; True if this caller made the change."""
    changed = PayoutLine.objects.filter(pk=line.pk, status=expected).update(
        status=new, updated_at=timezone.now(), **fields
    )
    return bool(changed)


# The platform accounts looked up once per execute call (two queries saved per booking, which
# matters at 10,000 lines); None outside an execute call.
_platform_accounts: ContextVar[dict[tuple[str, str], LedgerAccount] | None] = ContextVar(
    "platform_accounts", default=None
)


def _platform_account(kind: str, currency: str) -> LedgerAccount:
    cache = _platform_accounts.get()
    if cache is None:
        return account_for(kind=kind, currency=currency)
    if (kind, currency) not in cache:
        cache[(kind, currency)] = account_for(kind=kind, currency=currency)
    return cache[(kind, currency)]


def _accounts(line: PayoutLine) -> tuple[LedgerAccount, LedgerAccount, LedgerAccount]:
    currency = line.run.currency
    return (
        account_for(kind=AccountKind.EXPERT_PAYABLE, currency=currency, user=line.user),
        _platform_account(AccountKind.PAYOUT_IN_FLIGHT, currency),
        _platform_account(AccountKind.STRIPE_CLEARING, currency),
    )


def _claim_line(line: PayoutLine) -> bool:
    """pending -> submitting, booking the tier adjustment and payable -> in flight with it."""
    from projects.models import Project

    currency = line.run.currency
    with transaction.atomic(savepoint=False):
        if not _line_transition(
            line, PayoutLineStatus.PENDING, PayoutLineStatus.SUBMITTING, submitted_at=timezone.now()
        ):
            return False
        payable, in_flight, _ = _accounts(line)
        for project_id, row in sorted(line.breakdown.get("projects", {}).items()):
            for kind, amount in (
                ("tier_adjustment", int(row["adjustment"])),
                ("bonus", int(row.get("bonus", 0))),
            ):
                if amount == 0:
                    continue
                escrow = account_for(
                    kind=AccountKind.PROJECT_ESCROW,
                    currency=currency,
                    project=Project.objects.get(pk=int(project_id)),
                )
                ledger_post(
                    idempotency_key=f"{kind}:{line.pk}:{project_id}",
                    currency=currency,
                    postings=[(escrow, -amount), (payable, amount)],
                    kind=kind,
                    metadata={
                        "line_id": line.pk,
                        "project_id": int(project_id),
                        "user_id": line.user_id,
                    },
                )
        ledger_post(
            idempotency_key=f"payout:{line.pk}:g{line.key_generation}",
            currency=currency,
            postings=[(payable, -line.total), (in_flight, line.total)],
            kind="payout",
            metadata={"line_id": line.pk, "run_id": line.run_id, "user_id": line.user_id},
        )
    return True


def _mark_sent(line: PayoutLine, transfer_id: str) -> None:
    with transaction.atomic(savepoint=False):
        if not _line_transition(
            line,
            PayoutLineStatus.SUBMITTING,
            PayoutLineStatus.SENT,
            transfer_id=transfer_id,
            last_error="",
        ):
            return
        _, in_flight, clearing = _accounts(line)
        ledger_post(
            idempotency_key=f"payout-sent:{line.pk}:g{line.key_generation}",
            currency=line.run.currency,
            postings=[(in_flight, -line.total), (clearing, line.total)],
            kind="payout_sent",
            metadata={"line_id": line.pk, "transfer_id": transfer_id, "user_id": line.user_id},
        )


def _undo_submission(line: PayoutLine, new_status: str, error: str) -> None:
    """Stripe refused for certain: money back to payable; a retry uses a new key."""
    with transaction.atomic():
        if not _line_transition(
            line,
            PayoutLineStatus.SUBMITTING,
            new_status,
            last_error=error[:2000],
            key_generation=line.key_generation + 1,
        ):
            return
        payable, in_flight, _ = _accounts(line)
        ledger_post(
            idempotency_key=f"payout-undo:{line.pk}:g{line.key_generation}",
            currency=line.run.currency,
            postings=[(in_flight, -line.total), (payable, line.total)],
            kind="payout_undo",
            metadata={"line_id": line.pk, "user_id": line.user_id, "error": error[:200]},
        )


def _metadata(stripe_object: Any) -> dict[str, str]:
    if isinstance(stripe_object, stripe.StripeObject):
        stripe_object = stripe_object.to_dict()
    return {str(key): str(value) for key, value in (stripe_object.get("metadata") or {}).items()}


def _find_transfer(client: stripe.StripeClient, line: PayoutLine) -> str | None:
    """The transfer Stripe made for this line and key generation, if any (by listing the run's
    transfer group: the only way to know after an idempotency key has expired)."""
    transfers = client.v1.transfers.list(
        params={"transfer_group": line.run.transfer_group, "limit": 100}
    )
    for transfer in transfers.auto_paging_iter():
        metadata = _metadata(transfer)
        if metadata.get("payout_line") == str(line.pk) and metadata.get("generation") == str(
            line.key_generation
        ):
            return str(transfer.id)
    return None


def _send(client: stripe.StripeClient, line: PayoutLine) -> tuple[str, str]:
    """Create (or replay) the line's transfer, without booking it.

    Returns ('sent', transfer id), or ('unknown' | 'paused' | 'blocked', '').
    """
    window = timedelta(seconds=settings.STRIPE_IDEMPOTENCY_WINDOW_SECONDS)
    if line.submitted_at and timezone.now() - line.submitted_at > window:
        # The stored key may have expired at Stripe: resending could pay twice. Look first.
        found = _find_transfer(client, line)
        if found:
            return "sent", found
        with transaction.atomic():
            if not _line_transition(
                line,
                PayoutLineStatus.SUBMITTING,
                PayoutLineStatus.SUBMITTING,
                key_generation=line.key_generation + 1,
                submitted_at=timezone.now(),
            ):
                return "unknown", ""
        line.refresh_from_db()
    try:
        transfer = client.v1.transfers.create(
            params={
                "amount": line.total,
                "currency": line.run.currency,
                "destination": line.payout_account.stripe_account_id,
                "transfer_group": line.run.transfer_group,
                "metadata": {
                    "payout_run": str(line.run_id),
                    "payout_line": str(line.pk),
                    "generation": str(line.key_generation),
                },
            },
            options={"idempotency_key": line.idempotency_key},
        )
    except stripe.IdempotencyError as error:
        raise _Alert(f"idempotency_error on line {line.pk}: {error.user_message}") from error
    except stripe.InvalidRequestError as error:
        if error.code == "balance_insufficient":
            _undo_submission(line, PayoutLineStatus.PENDING, "balance_insufficient")
            return "paused", ""
        # A destination without active transfers, or any other definitive refusal: no
        # transfer exists, so the money goes back and the line waits for an admin.
        _undo_submission(line, PayoutLineStatus.BLOCKED, f"{error.code}: {error.user_message}")
        return "blocked", ""
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
        # The outcome is unknown (a 5xx, a timeout, a lost response): the line stays
        # `submitting` and the next execute retries with the same key.
        PayoutLine.objects.filter(pk=line.pk).update(
            last_error=f"{type(error).__name__}: {error}"[:2000]
        )
        return "unknown", ""
    return "sent", str(transfer.id)


class _Alert(Exception):
    pass


EXECUTE_CHUNK = 100


def _claim_chunk(chunk: list[PayoutLine], report: ExecuteReport) -> list[PayoutLine]:
    """Claim a chunk's pending lines in one database transaction (a savepoint each, so one
    blocked line does not undo the others); returns the lines this executor may send now.

    A `submitting` line another executor claimed less than PAYOUT_INFLIGHT_GRACE_SECONDS ago
    is left alone: it is probably being sent right now, and a concurrent request with the same
    key is refused by Stripe. Once the grace has passed (a crash), anyone may resume it.
    """
    grace = timedelta(seconds=settings.PAYOUT_INFLIGHT_GRACE_SECONDS)
    now = timezone.now()
    mine: list[int] = []
    with transaction.atomic():
        for line in chunk:
            if line.status == PayoutLineStatus.SUBMITTING:
                if line.submitted_at is None or now - line.submitted_at >= grace:
                    mine.append(line.pk)
                else:
                    report.pending += 1
                continue
            try:
                with transaction.atomic():
                    if _claim_line(line):
                        mine.append(line.pk)
            except InsufficientBalance as error:
                _line_transition(
                    line, PayoutLineStatus.PENDING, PayoutLineStatus.BLOCKED, last_error=str(error)
                )
                report.blocked += 1
    return list(
        PayoutLine.objects.filter(pk__in=mine, status=PayoutLineStatus.SUBMITTING)
        .select_related("run", "payout_account", "user")
        .order_by("pk")
    )


def _mark_sent_many(sent: list[tuple[PayoutLine, str]]) -> None:
    """Book a chunk's sent lines in one database transaction (one commit, not one per line)."""
    if not sent:
        return
    # All or nothing: if any booking fails, every line of the chunk stays `submitting` and the
    # next call replays them (Stripe returns the transfers it made).
    with transaction.atomic():
        for line, transfer_id in sent:
            _mark_sent(line, transfer_id)


def payout_run_execute(*, run: PayoutRun) -> ExecuteReport:
    """Send every line once. Safe to call again at any time and from two processes at once.

    Lines go in chunks: claim the chunk (one commit), call Stripe for each line (no database
    transaction open), then book the sent ones (one commit). A crash anywhere leaves lines
    `submitting` with their stored key; the next call replays them, and Stripe answers with
    the transfer it already made.
    """
    with transaction.atomic():
        locked = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if locked.status == PayoutRunStatus.DRAFT:
            raise Conflict("The run is not approved yet.", code="not_approved")
        if locked.status == PayoutRunStatus.COMPLETED:
            return ExecuteReport(status=locked.status)
        if locked.status in (PayoutRunStatus.APPROVED, PayoutRunStatus.PAUSED):
            locked.status = PayoutRunStatus.EXECUTING
            locked.started_at = locked.started_at or timezone.now()
            locked.alert = ""
            locked.save(update_fields=["status", "started_at", "alert"])
    client = stripe_client()
    report = ExecuteReport(status=PayoutRunStatus.EXECUTING)
    token = _platform_accounts.set({})
    try:
        return _execute_lines(run, client, report)
    finally:
        _platform_accounts.reset(token)


def _execute_lines(
    run: PayoutRun, client: stripe.StripeClient, report: ExecuteReport
) -> ExecuteReport:
    open_lines = (
        PayoutLine.objects.filter(
            run=run, status__in=[PayoutLineStatus.PENDING, PayoutLineStatus.SUBMITTING]
        )
        .select_related("run", "payout_account", "user")
        .order_by("pk")
    )
    last_pk = 0
    while True:
        chunk = list(open_lines.filter(pk__gt=last_pk)[:EXECUTE_CHUNK])
        if not chunk:
            break
        last_pk = chunk[-1].pk
        sent: list[tuple[PayoutLine, str]] = []
        try:
            for line in _claim_chunk(chunk, report):
                try:
                    outcome, transfer_id = _send(client, line)
                except _Alert as alert:
                    _stop(run, PayoutRunStatus.PAUSED, str(alert))
                    report.status, report.alert = PayoutRunStatus.PAUSED, str(alert)
                    return report
                if outcome == "sent":
                    sent.append((line, transfer_id))
                    report.sent += 1
                elif outcome == "blocked":
                    report.blocked += 1
                elif outcome == "paused":
                    message = (
                        "balance_insufficient: fund the platform's Stripe balance, "
                        "then execute again"
                    )
                    _stop(run, PayoutRunStatus.PAUSED, message)
                    report.status, report.alert = PayoutRunStatus.PAUSED, message
                    return report
                else:
                    report.pending += 1
        finally:
            # Also on the way out of a pause or an error: what Stripe confirmed gets booked.
            _mark_sent_many(sent)
    unfinished = PayoutLine.objects.filter(
        run=run, status__in=[PayoutLineStatus.PENDING, PayoutLineStatus.SUBMITTING]
    ).exists()
    if not unfinished:
        PayoutRun.objects.filter(pk=run.pk, status=PayoutRunStatus.EXECUTING).update(
            status=PayoutRunStatus.COMPLETED, completed_at=timezone.now()
        )
        report.status = PayoutRunStatus.COMPLETED
    return report


def _alert_staff(subject: str, message: str) -> None:
    """Email every active staff member (after commit, never inside a money transaction)."""
    from django.core.mail import send_mail

    recipients = list(
        User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True)
    )
    if recipients:
        transaction.on_commit(
            lambda: send_mail(
                subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{subject}",
                message=message,
                from_email=None,
                recipient_list=recipients,
                fail_silently=True,
            )
        )


def _stop(run: PayoutRun, status: str, alert: str) -> None:
    logger.warning("payout run %s stopped: %s", run.pk, alert)
    PayoutRun.objects.filter(pk=run.pk).update(status=status, alert=alert)
    _alert_staff(f"Payout run {run.pk} stopped", alert)


def payout_line_retry(*, line: PayoutLine) -> PayoutLine:
    """A failed or blocked line goes back to pending (with a fresh key) and the run resumes."""
    with transaction.atomic():
        locked = PayoutLine.objects.select_for_update().get(pk=line.pk)
        if locked.status not in (PayoutLineStatus.FAILED, PayoutLineStatus.BLOCKED):
            raise Conflict(f"A {locked.status} line cannot be retried.", code="not_retryable")
        locked.status = PayoutLineStatus.PENDING
        locked.save(update_fields=["status", "updated_at"])
        PayoutRun.objects.filter(pk=locked.run_id, status=PayoutRunStatus.COMPLETED).update(
            status=PayoutRunStatus.PAUSED, alert=f"line {locked.pk} queued for retry"
        )
    return locked


def payout_event_apply(*, event_type: str, obj: dict[str, Any]) -> tuple[str, str]:
    """Transfer webhooks: confirm sent lines, and undo reversed ones."""
    metadata = obj.get("metadata") or {}
    line_id = metadata.get("payout_line")
    if not line_id or not str(line_id).isdigit():
        return StripeEventStatus.IGNORED, "not a payout line transfer"
    line = PayoutLine.objects.select_related("run", "user").filter(pk=int(line_id)).first()
    if line is None:
        return StripeEventStatus.IGNORED, "unknown payout line"
    if str(line.key_generation) != str(metadata.get("generation")):
        return StripeEventStatus.IGNORED, "event for an earlier key generation"
    if event_type in ("transfer.created", "transfer.updated") and not obj.get("reversed"):
        if line.status == PayoutLineStatus.SUBMITTING:
            # The webhook beat our own response (for instance it was lost): it proves the
            # transfer exists, so the line is sent.
            _mark_sent(line, str(obj["id"]))
            line.refresh_from_db()
        if line.status == PayoutLineStatus.SENT:
            _line_transition(line, PayoutLineStatus.SENT, PayoutLineStatus.PAID)
        return StripeEventStatus.APPLIED, ""
    if event_type in ("transfer.reversed", "transfer.failed") or obj.get("reversed"):
        with transaction.atomic():
            current = PayoutLine.objects.select_for_update().get(pk=line.pk)
            if current.status == PayoutLineStatus.SUBMITTING:
                # Out of order: the reversal arrived before we learned the transfer was made
                # (its response was lost). The reversal proves it was made: book it, then undo.
                _mark_sent(current, str(obj["id"]))
                current.refresh_from_db()
            if current.status not in (PayoutLineStatus.SENT, PayoutLineStatus.PAID):
                return StripeEventStatus.IGNORED, f"line is {current.status}"
            PayoutLine.objects.filter(pk=line.pk).update(
                status=PayoutLineStatus.FAILED,
                last_error=f"{event_type} {obj.get('id')}",
                key_generation=current.key_generation + 1,
            )
            payable, _, clearing = _accounts(line)
            ledger_post(
                idempotency_key=f"payout-reversed:{line.pk}:g{current.key_generation}",
                currency=line.run.currency,
                postings=[(clearing, -line.total), (payable, line.total)],
                kind="payout_reversed",
                metadata={
                    "line_id": line.pk,
                    "transfer_id": obj.get("id"),
                    "user_id": line.user_id,
                },
            )
        return StripeEventStatus.APPLIED, ""
    return StripeEventStatus.IGNORED, "transfer event not used"


def payout_run_reconcile(*, run: PayoutRun) -> dict[str, Any]:
    """Compare the run with Stripe's view of its transfer group, and the ledger with itself."""
    from payouts.services.ledger import ledger_verify

    client = stripe_client()
    transfers: dict[str, list[Any]] = defaultdict(list)
    stray = []
    for transfer in client.v1.transfers.list(
        params={"transfer_group": run.transfer_group, "limit": 100}
    ).auto_paging_iter():
        line_id = _metadata(transfer).get("payout_line")
        if line_id:
            transfers[str(line_id)].append(transfer)
        else:
            stray.append(transfer.id)
    differences: list[dict[str, Any]] = []
    expected_total = 0
    for line in run.lines.select_related("payout_account").order_by("pk"):
        found = [t for t in transfers.pop(str(line.pk), []) if not t.reversed]
        if line.status in (PayoutLineStatus.SENT, PayoutLineStatus.PAID):
            expected_total += line.total
            if len(found) != 1:
                differences.append({"line": line.pk, "problem": f"{len(found)} live transfers"})
                continue
            transfer = found[0]
            if (
                transfer.amount != line.total
                or transfer.destination != line.payout_account.stripe_account_id
            ):
                differences.append({"line": line.pk, "problem": "amount or destination differs"})
        elif found:
            differences.append({"line": line.pk, "problem": f"{line.status} line has a transfer"})
    for line_id, extra in transfers.items():
        differences.append(
            {"line": line_id, "problem": f"{len(extra)} transfers for an unknown line"}
        )
    differences += [
        {"transfer": transfer_id, "problem": "transfer without a line"} for transfer_id in stray
    ]
    live_total = sum(
        t.amount - (t.amount_reversed or 0)
        for t in client.v1.transfers.list(
            params={"transfer_group": run.transfer_group, "limit": 100}
        ).auto_paging_iter()
    )
    if live_total != expected_total:
        differences.append(
            {"problem": f"transfer group sums to {live_total}, sent lines to {expected_total}"}
        )
    ledger = ledger_verify()
    report = {
        "checked_at": timezone.now().isoformat(),
        "differences": differences,
        "transfer_total": live_total,
        "sent_total": expected_total,
        "ledger": ledger.as_dict(),
        "clean": not differences and ledger.is_clean,
    }
    PayoutRun.objects.filter(pk=run.pk).update(reconciliation=report)
    if not report["clean"]:
        _alert_staff(
            f"Payout run {run.pk} does not reconcile",
            "Differences between the ledger and Stripe:\n"
            + "\n".join(str(difference) for difference in differences)
            + f"\nLedger clean: {ledger.is_clean}",
        )
    return report


def payout_lines_for(*, user: User) -> Any:
    return PayoutLine.objects.filter(user=user).select_related("run").order_by("-run_id")


def payable_summary(*, user: User) -> dict[str, Any]:
    """An expert's balances: payable, held and paid, overall and per project and run."""
    accounts = LedgerAccount.objects.filter(user=user)
    by_currency: dict[str, dict[str, int]] = defaultdict(
        lambda: {"payable": 0, "held": 0, "paid": 0}
    )
    for account in accounts:
        key = "payable" if account.kind == AccountKind.EXPERT_PAYABLE else "held"
        by_currency[account.currency][key] += account.balance
    paid_lines = PayoutLine.objects.filter(
        user=user, status__in=[PayoutLineStatus.SENT, PayoutLineStatus.PAID]
    ).values_list("run__currency", "total")
    for currency, total in paid_lines:
        by_currency[currency]["paid"] += total
    per_project = (
        LedgerEntry.objects.filter(account__user=user, account__kind=AccountKind.EXPERT_PAYABLE)
        .filter(
            Q(transaction__kind="earning")
            | Q(transaction__kind="tier_adjustment")
            | Q(transaction__kind="bonus")
        )
        .values_list("account__currency", "transaction__metadata__project_id")
        .annotate(total=Sum("amount"))
    )
    return {
        "balances": dict(by_currency),
        "per_project": [
            {"currency": currency, "project": int(project_id), "earned": int(total)}
            for currency, project_id, total in per_project
        ],
    }
