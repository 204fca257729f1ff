"""Payout runs, stage 2: execute, crash-safe and idempotent.

Bookings of one line (keys name their cause, so a retried step can never book twice):
- `payout:<line>:g<generation>`: the total leaves the payable for "payout in flight", in the same
  database transaction that moves the line `pending -> submitting`;
- `payout-sent:<line>`: Stripe made the transfer: in flight -> Stripe clearing;
- `payout-undo:<line>:g<generation>`: Stripe refused for certain (no transfer): back to payable.

The Stripe call is never made inside a database transaction. Which executor sends a line is
decided by a compare-and-swap on its status, so two executors (or a retry after a crash) never
both create a transfer; the idempotency key is stored with the line and changes only once
Stripe has proved that no transfer exists for the old one. A run with a blocked line is never
reported completed: it pauses with an alert until an admin retries or settles the line.

Past 400 lines on purpose: send, retry and reconcile share one per-line state machine
and its compare-and-swap; splitting them would hide the crash-safety argument above.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.errors import Conflict
from payouts.models import (
    AccountKind,
    LedgerAccount,
    PayoutLine,
    PayoutLineStatus,
    PayoutRun,
    PayoutRunStatus,
    TransactionKind,
)
from payouts.services.funding import PaymentProviderUnavailable
from payouts.services.ledger import InsufficientBalance, account_for, ledger_post
from payouts.services.notify import staff_alert
from payouts.stripe_gateway import stripe_client

logger = logging.getLogger(__name__)


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
    """pending -> submitting, with payable -> in flight in the same database transaction."""
    currency = line.run.currency
    with transaction.atomic(savepoint=False):
        if not _line_transition(
            line, PayoutLineStatus.PENDING, PayoutLineStatus.SUBMITTING, submitted_at=timezone.now()
        ):
            return False
        payable, in_flight, _ = _accounts(line)
        ledger_post(
            idempotency_key=f"payout:{line.pk}:g{line.key_generation}",
            currency=currency,
            postings=[(payable, -line.total), (in_flight, line.total)],
            kind=TransactionKind.PAYOUT,
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
            kind=TransactionKind.PAYOUT_SENT,
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
            kind=TransactionKind.PAYOUT_UNDO,
            metadata={"line_id": line.pk, "user_id": line.user_id, "error": error[:200]},
        )


def _metadata(stripe_object: Any) -> dict[str, str]:
    if isinstance(stripe_object, stripe.StripeObject):
        stripe_object = stripe_object.to_dict()
    return {str(key): str(value) for key, value in (stripe_object.get("metadata") or {}).items()}


def _line_transfers(client: stripe.StripeClient, line: PayoutLine) -> list[dict[str, Any]]:
    """Every transfer Stripe made for this line, of any key generation (by listing the run's
    transfer group: the only way to know after an idempotency key has expired)."""
    transfers = client.v1.transfers.list(
        params={"transfer_group": line.run.transfer_group, "limit": 100}
    )
    found = []
    for transfer in transfers.auto_paging_iter():
        row = transfer.to_dict()
        if _metadata(row).get("payout_line") == str(line.pk):
            found.append(row)
    return found


def _is_live(transfer: dict[str, Any]) -> bool:
    """Not reversed in full: some of its money is still with the expert."""
    return int(transfer.get("amount_reversed") or 0) < int(transfer.get("amount") or 0)


def _find_transfer(client: stripe.StripeClient, line: PayoutLine) -> str | None:
    """The transfer Stripe made for this line and key generation, if any."""
    for transfer in _line_transfers(client, line):
        if _metadata(transfer).get("generation") == str(line.key_generation):
            return str(transfer["id"])
    return None


def _live_earlier_transfer(client: stripe.StripeClient, line: PayoutLine) -> str | None:
    """A transfer of an earlier key generation of this line that still holds money at the
    expert: sending again would pay twice (the issue 17 double payment)."""
    for transfer in _line_transfers(client, line):
        generation = _metadata(transfer).get("generation")
        if generation != str(line.key_generation) and _is_live(transfer):
            return str(transfer["id"])
    return None


def _send(client: stripe.StripeClient, line: PayoutLine) -> tuple[str, str]:
    """Create (or replay) the line's transfer, without booking it.

    Returns ('sent', transfer id), or ('unknown' | 'paused' | 'blocked', '').
    """
    if line.key_generation or line.transfer_id:
        # A line sent before (and reversed, or refused, or retried by hand): look at Stripe
        # before sending, so a transfer that still pays the expert is never doubled.
        try:
            live = _live_earlier_transfer(client, line)
        except stripe.StripeError as error:
            PayoutLine.objects.filter(pk=line.pk).update(
                last_error=f"{type(error).__name__}: {error}"[:2000]
            )
            return "unknown", ""
        if live:
            _undo_submission(
                line,
                PayoutLineStatus.BLOCKED,
                f"live transfer {live} still pays this line at Stripe: not sent again",
            )
            return "blocked", ""
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
    if unfinished:
        return report
    blocked = list(
        PayoutLine.objects.filter(run=run, status=PayoutLineStatus.BLOCKED).values_list(
            "pk", "last_error"
        )
    )
    if blocked:
        # Never "completed" while someone was not paid: the run waits for an admin.
        message = f"{len(blocked)} line(s) blocked: " + "; ".join(
            f"line {pk}: {error}" for pk, error in blocked[:5]
        )
        _stop(run, PayoutRunStatus.PAUSED, message)
        report.status, report.alert = PayoutRunStatus.PAUSED, message
        return report
    PayoutRun.objects.filter(pk=run.pk, status=PayoutRunStatus.EXECUTING).update(
        status=PayoutRunStatus.COMPLETED, completed_at=timezone.now()
    )
    report.status = PayoutRunStatus.COMPLETED
    return report


def _stop(run: PayoutRun, status: str, alert: str) -> None:
    logger.warning("payout run %s stopped: %s", run.pk, alert)
    PayoutRun.objects.filter(pk=run.pk).update(status=status, alert=alert)
    staff_alert(f"Payout run {run.pk} stopped", alert)


def payout_line_retry(*, line: PayoutLine) -> PayoutLine:
    """A failed or blocked line goes back to pending (with a fresh key) and the run resumes.

    Stripe is asked first (outside any transaction) whether a transfer for this line still
    pays the expert (not reversed in full): then the line must not be sent again, whatever
    its status says (409 `live_transfer_exists`). Execute checks again before sending.
    """
    line = PayoutLine.objects.select_related("run").get(pk=line.pk)
    if line.status not in (PayoutLineStatus.FAILED, PayoutLineStatus.BLOCKED):
        raise Conflict(f"A {line.status} line cannot be retried.", code="not_retryable")
    try:
        live = [t for t in _line_transfers(stripe_client(), line) if _is_live(t)]
    except stripe.StripeError as error:
        raise PaymentProviderUnavailable(
            "The payment provider did not answer; nothing was retried. Try again."
        ) from error
    if live:
        raise Conflict(
            f"Transfer {live[0]['id']} for this line still pays the expert "
            f"({live[0]['amount'] - (live[0].get('amount_reversed') or 0)} not reversed): "
            "it cannot be sent again.",
            code="live_transfer_exists",
        )
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
