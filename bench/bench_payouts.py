"""A payout run for 10,000 experts against the local Stripe-compatible server.

Stages timed: draft, approve, execute, ledger verification; plus transfers created and
duplicate transfers (must be 0). Baseline, in the same invocation: the bare minimum any payout
system pays, one SDK `transfers.create` call per expert with no ledger and no state machine,
so the ratio is our bookkeeping's overhead over Stripe round-trips alone.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from datetime import date
from typing import Any

from bench.harness import Measurement, print_table

EXPERTS = int(os.environ.get("BENCH_PAYOUT_EXPERTS", "10000"))
REPEATS = 3
# The benchmark database outlives a run: fresh emails and periods each invocation.
TOKEN = int(time.time())


def _setup(server: Any, repetition: int) -> tuple[Any, list[Any]]:
    from django.conf import settings

    from marketplace import services as lab_services
    from marketplace.models import User
    from payouts.models import AccountKind, PayoutAccount
    from payouts.services.ledger import account_for, ledger_post
    from projects import services

    settings.STRIPE_API_BASE = server.url
    owner, _ = User.objects.get_or_create(email="bench-owner@example.org")
    lab = lab_services.lab_create(name=f"payout bench {repetition}", created_by=owner)
    project = services.project_create(
        lab=lab,
        created_by=owner,
        data={"title": "bench", "task_type": "pairwise", "base_rate": 100},
    )
    users = User.objects.bulk_create(
        User(email=f"bench-{TOKEN}-{repetition}-{index}@example.org") for index in range(EXPERTS)
    )
    accounts = []
    for user in users:
        account = server.stripe.account_create(
            {"capabilities": {"transfers": {"requested": "true"}}}
        )
        account["capabilities"]["transfers"] = "active"
        accounts.append(
            PayoutAccount(user=user, stripe_account_id=account["id"], transfers_active=True)
        )
    PayoutAccount.objects.bulk_create(accounts, batch_size=2000)
    clearing = account_for(kind=AccountKind.STRIPE_CLEARING, currency="usd")
    escrow = account_for(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project)
    ledger_post(
        idempotency_key=f"bench-funding-{TOKEN}-{repetition}",
        currency="usd",
        postings=[(clearing, -EXPERTS * 1000), (escrow, EXPERTS * 1000)],
        kind="funding",
    )
    for user in users:
        ledger_post(
            idempotency_key=f"bench-earning-{user.pk}",
            currency="usd",
            postings=[
                (escrow, -500),
                (account_for(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=user), 500),
            ],
            kind="earning",
            metadata={"project_id": project.pk, "user_id": user.pk},
        )
    server.stripe.state.balance["usd"] = server.stripe.state.balance.get("usd", 0) + EXPERTS * 1000
    return owner, accounts


def run() -> None:
    from django.db import connection

    from payouts.services import payout_runs
    from payouts.services.ledger import ledger_verify
    from payouts.stripe_gateway import stripe_client
    from payouts.stripe_local.server import start_in_thread

    server = start_in_thread()
    stages: dict[str, list[float]] = {"draft": [], "approve": [], "execute": [], "verify": []}
    baseline: list[float] = []
    transfers = duplicates = 0
    try:
        for repetition in range(REPEATS):
            owner, accounts = _setup(server, repetition)
            year = 2100 + (TOKEN // 60) % 7000 + repetition
            started = time.perf_counter()
            run = payout_runs.payout_run_create(
                period_start=date(year, 1, 1),
                period_end=date(year, 12, 31),
                currency="usd",
                created_by=owner,
            )
            stages["draft"].append(time.perf_counter() - started)
            # Earnings are booked "now", outside those periods: tiers x1.0, lines = payables.
            started = time.perf_counter()
            run = payout_runs.payout_run_approve(run=run, approver=owner)
            stages["approve"].append(time.perf_counter() - started)
            started = time.perf_counter()
            report = payout_runs.payout_run_execute(run=run)
            stages["execute"].append(time.perf_counter() - started)
            assert report.status == "completed", report
            started = time.perf_counter()
            assert ledger_verify().is_clean
            stages["verify"].append(time.perf_counter() - started)
            group = [
                obj
                for obj in server.stripe.state.objects.values()
                if obj["object"] == "transfer" and obj["transfer_group"] == run.transfer_group
            ]
            transfers = len(group)
            per_line = Counter(obj["metadata"]["payout_line"] for obj in group)
            duplicates += sum(count - 1 for count in per_line.values())

            client = stripe_client()
            started = time.perf_counter()
            for account in accounts:
                client.v1.transfers.create(
                    params={
                        "amount": 1,
                        "currency": "usd",
                        "destination": account.stripe_account_id,
                    }
                )
            baseline.append(time.perf_counter() - started)
    finally:
        server.stop()
    rows = [
        Measurement(f"ours: {stage}", statistics.median(times), REPEATS)
        for stage, times in stages.items()
    ]
    execute = rows[2]
    print_table(
        f"Payout run of {EXPERTS:,} experts on {connection.vendor} (local Stripe server)",
        Measurement(
            "bare SDK loop: transfers.create per expert", statistics.median(baseline), REPEATS
        ),
        rows,
    )
    total = sum(statistics.median(times) for times in stages.values())
    print(
        f"transfers created per run: {transfers:,}; duplicate transfers over {REPEATS} runs: "
        f"{duplicates}; end to end (draft+approve+execute+verify): {total:.1f} s; execute is "
        f"{execute.median_seconds / statistics.median(baseline):.1f}x the bare Stripe loop"
    )
