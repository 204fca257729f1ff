"""Payout runs: draft, approve (MFA, two approvers above the threshold), execute, and survive
every injected fault with exactly one transfer per line and a balanced ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.errors import Conflict
from marketplace.models import Lab, User
from payouts.models import AccountKind, PayoutLine, PayoutRun
from payouts.services import payout_runs
from payouts.services.ledger import balance_of, ledger_verify
from projects.models import Project
from tests.contributors.factories import enable_mfa
from tests.marketplace.factories import UserFactory
from tests.payouts.conftest import PERIOD, LocalStripe
from tests.payouts.factories import book_earning, fund_project, onboarded
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


@pytest.fixture
def world(lab: Lab, lab_owner: User, stripe_local: LocalStripe) -> dict[str, Any]:
    """A funded project, three onboarded experts with earnings, one without an account."""
    project = make_project(lab, lab_owner)
    fund_project(project, 1_000_000)
    experts = [UserFactory() for _ in range(3)]
    for index, expert in enumerate(experts):
        onboarded(stripe_local, expert)
        book_earning(project, expert, 1_000 * (index + 1), f"earning:w{index}")
    no_account = UserFactory()
    book_earning(project, no_account, 500, "earning:none")
    stripe_local.state.balance["usd"] = 10_000_000
    return {"project": project, "experts": experts, "no_account": no_account}


def make_run(staff: User, *, approve: bool = True) -> PayoutRun:
    run = payout_runs.payout_run_create(
        period_start=timezone.now().date() - timedelta(days=30),
        period_end=timezone.now().date(),
        currency="usd",
        created_by=staff,
    )
    if approve:
        run = payout_runs.payout_run_approve(run=run, approver=staff)
    return run


def assert_one_transfer_per_sent_line(stripe_local: LocalStripe, run: PayoutRun) -> None:
    transfers = stripe_local.transfers(run.transfer_group)
    lines = list(run.lines.all())
    sent = [line for line in lines if line.status in ("sent", "paid")]
    assert len(transfers) == len(sent)
    by_line = {t["metadata"]["payout_line"]: t for t in transfers}
    for line in sent:
        transfer = by_line[str(line.pk)]
        assert transfer["amount"] == line.total
        assert transfer["destination"] == line.payout_account.stripe_account_id
    report = ledger_verify()
    assert report.is_clean, report.as_dict()


def test_draft_has_one_line_per_payable_expert_with_an_account(
    world: dict[str, Any], staff: User
) -> None:
    run = make_run(staff, approve=False)
    lines = {line.user_id: line for line in run.lines.all()}
    assert set(lines) == {expert.pk for expert in world["experts"]}
    first = lines[world["experts"][0].pk]
    assert (first.base, first.tier_adjustment, first.total) == (1_000, 0, 1_000)
    assert first.breakdown["projects"][str(world["project"].pk)]["released"] == 1_000
    assert run.total == 6_000


def test_execute_sends_every_line_once_and_webhooks_mark_them_paid(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = make_run(staff)
    report = payout_runs.payout_run_execute(run=run)
    assert (report.status, report.sent) == ("completed", 3)
    assert set(run.lines.values_list("status", flat=True)) == {"sent"}
    stripe_local.deliver()
    assert set(run.lines.values_list("status", flat=True)) == {"paid"}
    again = payout_runs.payout_run_execute(run=run)
    assert again.status == "completed"
    assert_one_transfer_per_sent_line(stripe_local, run)
    for expert in world["experts"]:
        assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=expert) == 0
    assert payout_runs.payout_run_reconcile(run=run)["clean"] is True


def test_a_crash_before_the_stripe_call_resumes(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe, monkeypatch: Any
) -> None:
    run = make_run(staff)
    original = payout_runs.execute._send
    calls = {"n": 0}

    def crash_once(client: Any, line: PayoutLine) -> str:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed before calling Stripe")
        return original(client, line)

    monkeypatch.setattr(payout_runs.execute, "_send", crash_once)
    with pytest.raises(RuntimeError):
        payout_runs.payout_run_execute(run=run)
    # The first line was sent and booked on the way out; the others wait, claimed.
    assert sorted(run.lines.values_list("status", flat=True)) == [
        "sent",
        "submitting",
        "submitting",
    ]
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_a_lost_response_after_stripe_committed_is_replayed_not_resent(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = make_run(staff)
    stripe_local.state.faults.drop_next = 1
    report = payout_runs.payout_run_execute(run=run)
    assert report.status == "executing" and report.pending == 1
    assert len(stripe_local.transfers(run.transfer_group)) == 3  # Stripe did make the first
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_a_crash_before_our_commit_is_replayed(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe, monkeypatch: Any
) -> None:
    run = make_run(staff)
    original = payout_runs.execute._mark_sent

    def crash(line: PayoutLine, transfer_id: str) -> None:
        monkeypatch.setattr(payout_runs.execute, "_mark_sent", original)
        raise RuntimeError("database connection lost before commit")

    monkeypatch.setattr(payout_runs.execute, "_mark_sent", crash)
    with pytest.raises(RuntimeError):
        payout_runs.payout_run_execute(run=run)
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_a_500_then_the_idempotency_window_passes_lists_before_resending(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe, settings: Any
) -> None:
    run = make_run(staff)
    stripe_local.state.faults.fail_next = 1  # stored under the key: replays keep failing
    assert payout_runs.payout_run_execute(run=run).pending == 1
    assert payout_runs.payout_run_execute(run=run).pending == 1  # same key, same 500
    # A day later: the key has expired at Stripe; the group shows no transfer for the line.
    settings.STRIPE_IDEMPOTENCY_WINDOW_SECONDS = 60
    PayoutLine.objects.filter(run=run, status="submitting").update(
        submitted_at=timezone.now() - timedelta(minutes=5)
    )
    stripe_local.state.idempotency_window_seconds = 0
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    assert PayoutLine.objects.get(run=run, key_generation=1).status == "sent"
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_after_the_window_an_existing_transfer_is_found_not_resent(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe, settings: Any
) -> None:
    run = make_run(staff)
    stripe_local.state.faults.drop_next = 1
    payout_runs.payout_run_execute(run=run)
    settings.STRIPE_IDEMPOTENCY_WINDOW_SECONDS = 60
    PayoutLine.objects.filter(run=run, status="submitting").update(
        submitted_at=timezone.now() - timedelta(minutes=5)
    )
    stripe_local.state.idempotency_window_seconds = 0
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    assert not PayoutLine.objects.filter(run=run, key_generation__gt=0).exists()
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_balance_insufficient_pauses_and_resumes(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    stripe_local.state.balance["usd"] = 1_500
    run = make_run(staff)
    report = payout_runs.payout_run_execute(run=run)
    assert report.status == "paused" and "balance_insufficient" in report.alert
    assert PayoutRun.objects.get(pk=run.pk).status == "paused"
    assert ledger_verify().is_clean
    stripe_local.state.balance["usd"] += 100_000
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_a_destination_without_transfers_blocks_only_its_line(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = make_run(staff)
    blocked_user = world["experts"][1]
    account_id = blocked_user.payout_account.stripe_account_id
    stripe_local.state.objects[account_id]["capabilities"]["transfers"] = "inactive"
    report = payout_runs.payout_run_execute(run=run)
    line = PayoutLine.objects.get(run=run, user=blocked_user)
    assert line.status == "blocked" and "insufficient_capabilities" in line.last_error
    # Issue 15: a run with a blocked line is never reported completed.
    assert report.status == "paused" and f"line {line.pk}" in report.alert
    assert PayoutRun.objects.get(pk=run.pk).status == "paused"
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=blocked_user) == 2_000
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_an_idempotency_error_stops_and_alerts(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = make_run(staff)
    stripe_local.state.faults.drop_next = 1
    payout_runs.payout_run_execute(run=run)
    # Someone changed the amount of a line that Stripe already saw under its key.
    PayoutLine.objects.filter(run=run, status="submitting").update(total=999)
    report = payout_runs.payout_run_execute(run=run)
    assert report.status == "paused" and "idempotency_error" in report.alert
    assert PayoutRun.objects.get(pk=run.pk).alert


def test_a_reversed_transfer_reverses_the_booking_and_the_line_can_be_retried(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = make_run(staff)
    payout_runs.payout_run_execute(run=run)
    stripe_local.deliver()
    line = run.lines.order_by("pk").first()
    assert line is not None
    stripe_local.server.stripe.reversal_create(line.transfer_id, {})
    stripe_local.deliver()
    line.refresh_from_db()
    assert line.status == "failed"
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=line.user) == line.total
    assert ledger_verify().is_clean
    payout_runs.payout_line_retry(line=line)
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    line.refresh_from_db()
    assert line.status == "sent"
    live = [t for t in stripe_local.transfers(run.transfer_group) if not t["reversed"]]
    assert len(live) == 3
    assert payout_runs.payout_run_reconcile(run=run)["clean"] is True


@pytest.mark.django_db(transaction=True)
def test_two_executors_at_once_send_each_line_once(
    lab: Lab, lab_owner: User, stripe_local: LocalStripe, staff: User
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent executors need PostgreSQL")
    project = make_project(lab, lab_owner)
    fund_project(project, 1_000_000)
    for index in range(12):
        expert = UserFactory()
        onboarded(stripe_local, expert)
        book_earning(project, expert, 100 + index, f"earning:c{index}")
    stripe_local.state.balance["usd"] = 10_000_000
    run = make_run(staff)
    errors: list[BaseException] = []

    def execute() -> None:
        try:
            payout_runs.payout_run_execute(run=PayoutRun.objects.get(pk=run.pk))
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=execute) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    payout_runs.payout_run_execute(run=run)
    assert set(run.lines.values_list("status", flat=True)) == {"sent"}
    assert_one_transfer_per_sent_line(stripe_local, run)


def test_payout_run_api_needs_staff_with_mfa_and_two_approvers_above_threshold(
    client_for: Client,
    world: dict[str, Any],
    staff: User,
    stripe_local: LocalStripe,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.PAYOUT_DUAL_APPROVAL_THRESHOLD = 5_000
    assert (
        client_for(staff).post("/api/v1/admin/payout-runs/", PERIOD, format="json").status_code
        == 403
    )
    enable_mfa(staff)
    second = UserFactory(is_staff=True)
    enable_mfa(second)
    client = client_for(staff)
    created = client.post("/api/v1/admin/payout-runs/", PERIOD, format="json")
    assert created.status_code == 201, created.content
    run_id = created.json()["id"]
    assert created.json()["total"] == 6_000
    assert client.post(f"/api/v1/admin/payout-runs/{run_id}/execute/").status_code == 409
    assert client.post(f"/api/v1/admin/payout-runs/{run_id}/approve/").json()["status"] == "draft"
    assert client.post(f"/api/v1/admin/payout-runs/{run_id}/approve/").status_code == 409
    approved = client_for(second).post(f"/api/v1/admin/payout-runs/{run_id}/approve/").json()
    assert approved["status"] == "approved" and len(approved["approvals"]) == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/admin/payout-runs/{run_id}/execute/")
    assert response.status_code == 202
    detail = client.get(f"/api/v1/admin/payout-runs/{run_id}/").json()
    assert detail["status"] == "completed" and detail["line_counts"] == {"sent": 3}
    lines = client.get(f"/api/v1/admin/payout-runs/{run_id}/lines/").json()["results"]
    assert {line["status"] for line in lines} == {"sent"}
    assert client.post(f"/api/v1/admin/payout-runs/{run_id}/reconcile/").json()["clean"] is True


@pytest.mark.parametrize("persona", ["expert", "lab_owner", "anonymous"])
def test_only_staff_see_payout_runs(
    request: Any, client_for: Client, world: dict[str, Any], staff: User, persona: str
) -> None:
    run = make_run(staff)
    client = APIClient() if persona == "anonymous" else client_for(request.getfixturevalue(persona))
    assert client.get(f"/api/v1/admin/payout-runs/{run.pk}/").status_code in (401, 403)
    assert client.post(f"/api/v1/admin/payout-runs/{run.pk}/execute/").status_code in (401, 403)
    assert PayoutRun.objects.get(pk=run.pk).status == "approved"


def test_experts_see_only_their_own_earnings(
    client_for: Client, world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = make_run(staff)
    payout_runs.payout_run_execute(run=run)
    first, second = world["experts"][:2]
    body = client_for(first).get("/api/v1/me/earnings/").json()
    assert body["balances"]["usd"] == {"pending": 0, "payable": 0, "held": 0, "paid": 1_000}
    assert [line["total"] for line in body["payout_lines"]] == [1_000]
    assert body["projects"] == [] and body["quality_stops"] == []
    other = client_for(second).get("/api/v1/me/earnings/").json()
    assert [line["total"] for line in other["payout_lines"]] == [2_000]
    assert APIClient().get("/api/v1/me/earnings/").status_code == 401


def test_suspension_holds_payables_and_admins_release_or_forfeit(
    client_for: Client, world: dict[str, Any], staff: User, lab_owner: User
) -> None:
    enable_mfa(staff)
    client = client_for(staff)
    expert = world["experts"][2]
    project: Project = world["project"]
    client.post(f"/api/v1/admin/experts/{expert.pk}/suspend/", {"reason": "fraud"}, format="json")
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=expert) == 0
    assert balance_of(kind=AccountKind.EXPERT_HELD, currency="usd", user=expert) == 3_000
    run = make_run(staff, approve=False)
    assert not run.lines.filter(user=expert).exists()
    escrow_before = balance_of(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project)
    assert client.post(f"/api/v1/admin/experts/{expert.pk}/held/forfeit/").json() == {
        "moved": 3_000
    }
    assert (
        balance_of(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project)
        == escrow_before + 3_000
    )
    assert client.post(f"/api/v1/admin/experts/{expert.pk}/held/release/").json() == {"moved": 0}
    assert ledger_verify().is_clean


def test_held_money_released_by_an_admin_says_how_much_moved(
    client_for: Client, world: dict[str, Any], staff: User
) -> None:
    enable_mfa(staff)
    client = client_for(staff)
    expert = world["experts"][2]
    client.post(f"/api/v1/admin/experts/{expert.pk}/suspend/", {"reason": "check"}, format="json")
    assert balance_of(kind=AccountKind.EXPERT_HELD, currency="usd", user=expert) == 3_000
    assert client.post(f"/api/v1/admin/experts/{expert.pk}/held/release/").json() == {
        "moved": 3_000
    }
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=expert) == 3_000
    assert balance_of(kind=AccountKind.EXPERT_HELD, currency="usd", user=expert) == 0
    assert ledger_verify().is_clean


def test_stops_and_reconciliation_differences_are_emailed_to_staff(
    world: dict[str, Any],
    staff: User,
    stripe_local: LocalStripe,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core import mail

    stripe_local.state.balance["usd"] = 500
    run = make_run(staff)
    with django_capture_on_commit_callbacks(execute=True):
        payout_runs.payout_run_execute(run=run)
    assert any(
        "stopped" in message.subject and message.to == [staff.email] for message in mail.outbox
    )
    # A transfer Stripe made that no line knows about is a difference.
    stripe_local.state.balance["usd"] += 10
    stripe_local.server.stripe.transfer_create(
        {
            "amount": "5",
            "currency": "usd",
            "destination": world["experts"][0].payout_account.stripe_account_id,
            "transfer_group": run.transfer_group,
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = payout_runs.payout_run_reconcile(run=run)
    assert report["clean"] is False
    assert any("does not reconcile" in message.subject for message in mail.outbox)


def test_out_of_order_transfer_events_reverse_a_line_whose_response_was_lost(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = make_run(staff)
    stripe_local.state.faults.drop_next = 1  # Stripe makes the first transfer; we never hear
    payout_runs.payout_run_execute(run=run)
    line = run.lines.get(status="submitting")
    transfer = next(
        t
        for t in stripe_local.transfers(run.transfer_group)
        if t["metadata"]["payout_line"] == str(line.pk)
    )
    stripe_local.server.stripe.reversal_create(transfer["id"], {})
    # Deliver the newest event first: transfer.reversed before this line's transfer.created.
    stripe_local.queue.reverse()
    stripe_local.deliver()
    line.refresh_from_db()
    assert line.status == "failed"
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=line.user) == line.total
    assert ledger_verify().is_clean
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    assert len([t for t in stripe_local.transfers(run.transfer_group) if not t["reversed"]]) == 2


# --- Issue 17: partial transfer reversals, retries and reconciliation --------------------------


def _paid_run(staff: User, stripe_local: LocalStripe) -> PayoutRun:
    run = make_run(staff)
    payout_runs.payout_run_execute(run=run)
    stripe_local.deliver()
    assert set(run.lines.values_list("status", flat=True)) == {"paid"}
    return run


def payable(user: User) -> int:
    return balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=user)


def test_a_partial_reversal_books_its_amount_and_the_line_stays_paid(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = _paid_run(staff, stripe_local)
    line = run.lines.order_by("pk").first()
    assert line is not None
    stripe_local.server.stripe.reversal_create(line.transfer_id, {"amount": "1"})
    queued = list(stripe_local.queue)
    stripe_local.deliver()
    stripe_local.queue.extend(queued)  # a replayed event books nothing twice
    stripe_local.deliver()
    line.refresh_from_db()
    assert line.status == "paid" and "1" in line.last_error
    assert payable(line.user) == 1  # one cent came back, not the whole line
    assert ledger_verify().is_clean
    with pytest.raises(Conflict):
        payout_runs.payout_line_retry(line=line)
    assert payout_runs.payout_run_reconcile(run=run)["clean"] is True
    stripe_local.server.stripe.reversal_create(line.transfer_id, {"amount": "4"})
    stripe_local.deliver()
    assert payable(line.user) == 5
    assert PayoutLine.objects.get(pk=line.pk).status == "paid"
    assert payout_runs.payout_run_reconcile(run=run)["clean"] is True


def test_the_rest_of_a_partly_reversed_transfer_reversed_fails_the_line_once(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    run = _paid_run(staff, stripe_local)
    line = run.lines.order_by("pk").first()
    assert line is not None
    stripe_local.server.stripe.reversal_create(line.transfer_id, {"amount": "1"})
    stripe_local.server.stripe.reversal_create(line.transfer_id, {})  # the remaining 999
    stripe_local.deliver()
    line.refresh_from_db()
    assert line.status == "failed"
    assert payable(line.user) == line.total
    assert ledger_verify().is_clean
    payout_runs.payout_line_retry(line=line)
    assert payout_runs.payout_run_execute(run=run).status == "completed"
    live = [t for t in stripe_local.transfers(run.transfer_group) if not t["reversed"]]
    assert len(live) == 3
    assert payable(line.user) == 0
    assert payout_runs.payout_run_reconcile(run=run)["clean"] is True


def test_a_line_with_a_live_transfer_is_never_sent_again(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    """The issue's double payment: a partial reversal, then an admin retry. Even a line forced
    back to failed (or pending) is checked at Stripe before anything is sent."""
    run = _paid_run(staff, stripe_local)
    line = run.lines.order_by("pk").first()
    assert line is not None
    stripe_local.server.stripe.reversal_create(line.transfer_id, {"amount": "1"})
    stripe_local.deliver()
    PayoutLine.objects.filter(pk=line.pk).update(status="failed")
    with pytest.raises(Conflict) as refused:
        payout_runs.payout_line_retry(line=line)
    assert refused.value.code == "live_transfer_exists"
    # Someone bypasses the retry (and the expert's payable could cover the line again):
    # execute still looks at Stripe before sending.
    book_earning(world["project"], line.user, line.total, "earning:again")
    PayoutLine.objects.filter(pk=line.pk).update(status="pending", key_generation=1)
    PayoutRun.objects.filter(pk=run.pk).update(status="paused")
    payout_runs.payout_run_execute(run=run)
    line.refresh_from_db()
    assert line.status == "blocked" and "live transfer" in line.last_error
    assert len(stripe_local.transfers(run.transfer_group)) == 3
    assert payable(line.user) == line.total + 1  # nothing left the expert's payable
    assert ledger_verify().is_clean


def test_payouts_verify_fails_on_a_double_payment_the_ledger_cannot_see(
    world: dict[str, Any], staff: User, stripe_local: LocalStripe
) -> None:
    from django.core.management import call_command

    run = _paid_run(staff, stripe_local)
    call_command("payouts_verify")  # clean: exits normally
    line = run.lines.order_by("pk").first()
    assert line is not None
    # A second live transfer for the same line (what the old retry sent).
    stripe_local.server.stripe.transfer_create(
        {
            "amount": str(line.total),
            "currency": "usd",
            "destination": line.payout_account.stripe_account_id,
            "transfer_group": run.transfer_group,
            "metadata": {"payout_run": str(run.pk), "payout_line": str(line.pk), "generation": "1"},
        }
    )
    assert ledger_verify().is_clean  # the ledger alone cannot tell
    with pytest.raises(SystemExit) as exited:
        call_command("payouts_verify")
    assert exited.value.code == 1
    assert PayoutRun.objects.get(pk=run.pk).reconciliation["clean"] is False


# --- Issue 17: overlapping payout runs are refused by the database -----------------------------


def test_the_database_refuses_overlapping_runs_of_one_currency(staff: User) -> None:
    from datetime import date

    from django.db import IntegrityError, transaction

    PayoutRun.objects.create(period_start=date(2030, 1, 1), period_end=date(2030, 1, 31))
    for start, end in [
        (date(2030, 1, 31), date(2030, 2, 28)),  # shares the last day (bounds are inclusive)
        (date(2029, 12, 1), date(2030, 3, 1)),  # contains it
        (date(2030, 1, 10), date(2030, 1, 12)),  # inside it
    ]:
        with pytest.raises(IntegrityError), transaction.atomic():
            PayoutRun.objects.create(period_start=start, period_end=end)
    # The next day, or another currency, is fine; and moving a run onto another is refused.
    february = PayoutRun.objects.create(period_start=date(2030, 2, 1), period_end=date(2030, 2, 28))
    PayoutRun.objects.create(
        period_start=date(2030, 1, 1), period_end=date(2030, 1, 31), currency="eur"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        PayoutRun.objects.filter(pk=february.pk).update(period_start=date(2030, 1, 15))
    assert PayoutRun.objects.count() == 3


def test_an_overlapping_draft_is_a_409(client_for: Client, staff: User) -> None:
    from datetime import date

    PayoutRun.objects.create(period_start=date(2030, 1, 1), period_end=date(2030, 1, 31))
    with pytest.raises(Conflict) as refused:
        payout_runs.payout_run_create(
            period_start=date(2030, 1, 20),
            period_end=date(2030, 2, 20),
            currency="usd",
            created_by=staff,
        )
    assert refused.value.code == "overlapping_period"


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_drafts_sent_at_the_same_moment_make_one_run(
    lab: Lab, lab_owner: User, stripe_local: LocalStripe, staff: User
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent drafts need PostgreSQL (SQLite serialises writers)")
    from datetime import date

    from marketplace.errors import Conflict as ConflictError

    project = make_project(lab, lab_owner)
    fund_project(project, 1_000_000)
    for index in range(20):
        expert = UserFactory()
        onboarded(stripe_local, expert)
        book_earning(project, expert, 100 + index, f"earning:o{index}")
    outcomes: list[str] = []
    for round_index in range(4):
        barrier = threading.Barrier(2)
        year = 2031 + round_index
        periods = [
            (date(year, 1, 1), date(year, 1, 31)),
            (date(year, 1, 15), date(year, 2, 15)),
        ]

        def draft(start: date, end: date, barrier: threading.Barrier = barrier) -> None:
            try:
                barrier.wait(timeout=10)
                payout_runs.payout_run_create(
                    period_start=start, period_end=end, currency="usd", created_by=staff
                )
                outcomes.append("created")
            except ConflictError as error:
                outcomes.append(str(error.code))
            except BaseException as error:  # surfaced by the assertion below
                outcomes.append(repr(error))
            finally:
                connection.close()

        threads = [threading.Thread(target=draft, args=period) for period in periods]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(outcomes) == ["created"] * 4 + ["overlapping_period"] * 4, outcomes
    assert PayoutRun.objects.count() == 4


@pytest.mark.parametrize("bad", ["xyz", "USD", "eu", "", 978, "zzz"])
def test_a_payout_run_in_a_currency_stripe_does_not_support_is_a_400(
    client_for: Client, staff: User, stripe_local: LocalStripe, bad: Any
) -> None:
    enable_mfa(staff)
    response = client_for(staff).post(
        "/api/v1/admin/payout-runs/", {**PERIOD, "currency": bad}, format="json"
    )
    assert response.status_code == 400, response.content
    [problem] = response.json()["error"]["details"]
    assert problem["field"] == "currency" and problem["code"] == "unsupported_currency"
    assert not PayoutRun.objects.exists()
