"""The ledger: balanced, append-only, idempotent, never negative outside platform accounts,
enforced in the service and in the database; and a state machine against a simple model."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from marketplace.models import Lab, User
from payouts.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from payouts.services import holds
from payouts.services.ledger import (
    InsufficientBalance,
    LedgerError,
    account_for,
    ledger_post,
    ledger_verify,
)
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import book_earning, fund_project
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(lab: Lab, lab_owner: User, expert: User) -> dict[str, LedgerAccount]:
    project = make_project(lab, lab_owner)
    return {
        "escrow": account_for(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project),
        "payable": account_for(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=expert),
        "clearing": account_for(kind=AccountKind.STRIPE_CLEARING, currency="usd"),
        "eur_clearing": account_for(kind=AccountKind.STRIPE_CLEARING, currency="eur"),
    }


def test_a_balanced_transaction_moves_balances(accounts: dict[str, LedgerAccount]) -> None:
    _, created = ledger_post(
        idempotency_key="funding:cs_1",
        currency="usd",
        postings=[(accounts["clearing"], -500), (accounts["escrow"], 500)],
        kind="funding",
    )
    assert created
    assert LedgerAccount.objects.get(pk=accounts["escrow"].pk).balance == 500
    assert LedgerAccount.objects.get(pk=accounts["clearing"].pk).balance == -500
    assert ledger_verify().is_clean


def test_the_same_cause_is_booked_once(accounts: dict[str, LedgerAccount]) -> None:
    postings = [(accounts["clearing"], -500), (accounts["escrow"], 500)]
    first, _ = ledger_post(
        idempotency_key="funding:cs_2", currency="usd", postings=postings, kind="funding"
    )
    again, created = ledger_post(
        idempotency_key="funding:cs_2", currency="usd", postings=postings, kind="funding"
    )
    assert (again.pk, created) == (first.pk, False)
    assert LedgerAccount.objects.get(pk=accounts["escrow"].pk).balance == 500


@pytest.mark.parametrize(
    "postings",
    [
        [("clearing", -500), ("escrow", 400)],  # does not sum to zero
        [("clearing", -1.5), ("escrow", 1.5)],  # not integers
        [("clearing", True), ("escrow", -1)],  # booleans are not amounts
        [("clearing", 0), ("escrow", 0)],  # nothing moves
        [("eur_clearing", -5), ("escrow", 5)],  # two currencies
    ],
)
def test_bad_transactions_are_refused_and_nothing_written(
    accounts: dict[str, LedgerAccount], postings: list[tuple[str, Any]]
) -> None:
    with pytest.raises(LedgerError):
        ledger_post(
            idempotency_key="bad",
            currency="usd",
            postings=[(accounts[name], amount) for name, amount in postings],
            kind="test",
        )
    assert not LedgerTransaction.objects.exists()
    assert not LedgerEntry.objects.exists()


def test_only_platform_accounts_may_go_negative(accounts: dict[str, LedgerAccount]) -> None:
    with pytest.raises(InsufficientBalance):
        ledger_post(
            idempotency_key="overspend",
            currency="usd",
            postings=[(accounts["escrow"], -1), (accounts["payable"], 1)],
            kind="earning",
        )
    assert LedgerAccount.objects.get(pk=accounts["escrow"].pk).balance == 0
    assert not LedgerTransaction.objects.exists()


def test_the_database_refuses_updates_and_deletes_of_entries(
    accounts: dict[str, LedgerAccount],
) -> None:
    ledger_post(
        idempotency_key="k",
        currency="usd",
        postings=[(accounts["clearing"], -5), (accounts["escrow"], 5)],
        kind="t",
    )
    entry = LedgerEntry.objects.first()
    assert entry is not None
    for statement in (
        f"UPDATE payouts_ledgerentry SET amount = 7 WHERE id = {entry.pk}",
        f"DELETE FROM payouts_ledgerentry WHERE id = {entry.pk}",
        "UPDATE payouts_ledgertransaction SET kind = 'x'",
    ):
        with (
            pytest.raises((DatabaseError, IntegrityError)),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert LedgerEntry.objects.get(pk=entry.pk).amount in (5, -5)


def test_postgresql_refuses_to_commit_an_unbalanced_transaction(
    accounts: dict[str, LedgerAccount],
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the deferred constraint trigger is PostgreSQL's; SQLite relies on the service")
    with (
        pytest.raises(DatabaseError, match="does not balance"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO payouts_ledgertransaction"
            " (idempotency_key, currency, kind, memo, metadata, created_at)"
            " VALUES ('raw', 'usd', 'raw', '', '{}', now()) RETURNING id"
        )
        transaction_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO payouts_ledgerentry (transaction_id, account_id, amount)"
            " VALUES (%s, %s, 100)",
            [transaction_id, accounts["escrow"].pk],
        )
        # The trigger is deferred to commit; force the check now, inside the test's transaction.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not LedgerTransaction.objects.filter(idempotency_key="raw").exists()


def test_ledger_verify_reports_drift(accounts: dict[str, LedgerAccount], capsys: Any) -> None:
    ledger_post(
        idempotency_key="k",
        currency="usd",
        postings=[(accounts["clearing"], -5), (accounts["escrow"], 5)],
        kind="t",
    )
    call_command("ledger_verify")
    assert "clean" in capsys.readouterr().out
    LedgerAccount.objects.filter(pk=accounts["escrow"].pk).update(balance=50)
    report = ledger_verify()
    assert not report.is_clean
    assert report.drift == [{"account": accounts["escrow"].pk, "cached": 50, "entries": 5}]
    with pytest.raises(SystemExit):
        call_command("ledger_verify")


class LedgerMachine(RuleBasedStateMachine):
    """Random sequences of money events against a model of what every balance should be."""

    def __init__(self) -> None:
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.counter = itertools.count()
        owner = UserFactory()
        lab = Lab.objects.create(name="machine lab", created_by=owner)
        self.projects = [make_project(lab, owner, title=f"p{i}") for i in range(2)]
        self.experts = [UserFactory() for _ in range(2)]
        self.model: dict[tuple[str, int], int] = {}
        self.sessions: list[tuple[Any, int, str]] = []
        self.sent: list[tuple[int, int, str]] = []

    def teardown(self) -> None:
        transaction.savepoint_rollback(self.savepoint)

    def _add(self, kind: str, owner: int, amount: int) -> None:
        self.model[(kind, owner)] = self.model.get((kind, owner), 0) + amount

    @rule(project=st.integers(0, 1), gross=st.integers(1, 100_000))
    def fund(self, project: int, gross: int) -> None:
        session = f"cs_machine_{next(self.counter)}"
        fund_project(self.projects[project], gross, session_id=session)
        fee = earnings_fee(gross)
        self._add("escrow", project, gross - fee)
        self.sessions.append((self.projects[project], gross, session))

    @rule()
    def replay_funding_webhook(self) -> None:
        if self.sessions:
            _, gross, session = self.sessions[-1]
            from payouts.services.funding import CheckoutEvidence, funding_credit

            booked, _ = funding_credit(
                evidence=CheckoutEvidence(
                    session_id=session, payment_status="paid", amount_total=gross, currency="usd"
                )
            )
            assert not booked

    @rule(project=st.integers(0, 1), expert=st.integers(0, 1), amount=st.integers(1, 5_000))
    def earn(self, project: int, expert: int, amount: int) -> None:
        if self.model.get(("escrow", project), 0) < amount:
            with pytest.raises(InsufficientBalance):
                book_earning(
                    self.projects[project], self.experts[expert], amount, f"e{next(self.counter)}"
                )
            return
        book_earning(self.projects[project], self.experts[expert], amount, f"e{next(self.counter)}")
        self._add("escrow", project, -amount)
        self._add("payable", expert, amount)

    @rule(expert=st.integers(0, 1))
    def hold(self, expert: int) -> None:
        moved = holds.payable_hold(user=self.experts[expert])
        assert moved == self.model.get(("payable", expert), 0)
        self._add("payable", expert, -moved)
        self._add("held", expert, moved)

    @rule(expert=st.integers(0, 1))
    def release(self, expert: int) -> None:
        moved = holds.held_release(user=self.experts[expert])
        self._add("held", expert, -moved)
        self._add("payable", expert, moved)

    @rule(expert=st.integers(0, 1))
    def forfeit(self, expert: int) -> None:
        before = {p: self.balance("escrow", p) for p in range(2)}
        moved = holds.held_forfeit(user=self.experts[expert])
        self._add("held", expert, -moved)
        for project in range(2):
            self._add("escrow", project, self.balance("escrow", project) - before[project])
        assert sum(self.balance("escrow", p) - before[p] for p in range(2)) == moved

    @rule(expert=st.integers(0, 1))
    def payout(self, expert: int) -> None:
        amount = self.model.get(("payable", expert), 0)
        if amount <= 0:
            return
        user = self.experts[expert]
        key = f"line{next(self.counter)}"
        payable = account_for(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=user)
        in_flight = account_for(kind=AccountKind.PAYOUT_IN_FLIGHT, currency="usd")
        clearing = account_for(kind=AccountKind.STRIPE_CLEARING, currency="usd")
        ledger_post(
            idempotency_key=f"payout:{key}",
            currency="usd",
            postings=[(payable, -amount), (in_flight, amount)],
            kind="payout",
        )
        ledger_post(
            idempotency_key=f"sent:{key}",
            currency="usd",
            postings=[(in_flight, -amount), (clearing, amount)],
            kind="payout_sent",
        )
        self._add("payable", expert, -amount)
        self.sent.append((expert, amount, key))

    @rule()
    def transfer_fails_and_reverses(self) -> None:
        if not self.sent:
            return
        expert, amount, key = self.sent.pop()
        payable = account_for(
            kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=self.experts[expert]
        )
        clearing = account_for(kind=AccountKind.STRIPE_CLEARING, currency="usd")
        ledger_post(
            idempotency_key=f"reversed:{key}",
            currency="usd",
            postings=[(clearing, -amount), (payable, amount)],
            kind="payout_reversed",
        )
        self._add("payable", expert, amount)

    def balance(self, kind: str, owner: int) -> int:
        if kind == "escrow":
            account = LedgerAccount.objects.filter(
                kind=AccountKind.PROJECT_ESCROW, project=self.projects[owner]
            ).first()
        else:
            account_kind = (
                AccountKind.EXPERT_PAYABLE if kind == "payable" else AccountKind.EXPERT_HELD
            )
            account = LedgerAccount.objects.filter(
                kind=account_kind, user=self.experts[owner]
            ).first()
        return account.balance if account else 0

    @invariant()
    def ledger_matches_the_model(self) -> None:
        report = ledger_verify()
        assert report.is_clean, report.as_dict()
        for (kind, owner), expected in self.model.items():
            assert self.balance(kind, owner) == expected, (kind, owner)


def earnings_fee(gross: int) -> int:
    from payouts.services.funding import platform_fee

    return platform_fee(gross)


def test_ledger_state_machine(db: Any) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        LedgerMachine,
        settings=hypothesis_settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
