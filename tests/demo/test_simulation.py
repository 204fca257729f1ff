"""The simulated marketplace loop that `make demo` runs: every step works end to end (a small
run, in the test database). What its numbers must show is checked over five seeds at demo
scale in test_simulation_seeds.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from demo.simulation import simulate
from payouts.models import Earning, PayoutLine, PayoutRun
from payouts.services.ledger import ledger_verify
from projects.models import Project, QualityStop, Review, Submission
from scoring.models import ScoringRun

pytestmark = pytest.mark.django_db


def test_the_simulated_loop_runs_end_to_end_and_pays_once(tmp_path: Path, settings: Any) -> None:
    settings.SCORING_SHAPLEY_MAX_PAIRS = 40
    report = simulate(seed=7, items=160, output=tmp_path, shift_minutes=20)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data == json.loads(json.dumps(report.data, default=str))
    assert Submission.objects.count() > 500
    # Every project was scored; pending pay was released by the snapshots or forfeited.
    assert set(ScoringRun.objects.values_list("status", flat=True)) == {"succeeded"}
    assert ScoringRun.objects.count() == 5
    assert set(Project.objects.values_list("task_type", flat=True)) == {
        "pairwise",
        "rating",
        "ranking",
        "demonstration",
        "correction",
    }
    assert Earning.objects.filter(status="released").count() > 300
    # The gate stopped the spammers and the adversaries, and only them.
    stopped = set(QualityStop.objects.values_list("expert__email", flat=True))
    assert stopped and all(email.split("-")[1] in ("spammer", "adversarial") for email in stopped)
    assert data["personas"]["careful"]["suspended"] == 0
    assert data["personas"]["spammer"]["pay_cents"] == 0
    # Reviews happened, were paid, and the rubber stamp among the reviewers was flagged.
    assert Review.objects.filter(status__in=["accepted", "rejected"]).count() > 20
    flags = [
        row["flag"]
        for run in ScoringRun.objects.filter(project__task_type__in=["demonstration", "correction"])
        for row in run.summary["reviewers"].values()
    ]
    assert "accepts_everything" in flags

    run = PayoutRun.objects.get()
    assert run.status == "completed" and run.reconciliation["clean"] is True
    # Each expert with a line was paid exactly once (one sent line, one transfer each).
    lines = PayoutLine.objects.filter(run=run)
    assert lines.filter(status__in=["sent", "paid"]).count() == lines.count()
    assert lines.values("user").distinct().count() == lines.count()
    assert ledger_verify().is_clean and data["ledger"]["clean"] is True
    text = (tmp_path / "report.md").read_text()
    assert "| spammer |" in text and "USD/h" in text
    assert (tmp_path / "dpo.jsonl").stat().st_size > 0
    assert (tmp_path / "sft.jsonl").read_text().count("\n") >= 60  # demonstrations, corrections
    for chart in ("hourly-pay-by-persona", "consensus-accuracy", "reward-model-accuracy"):
        svg = (tmp_path / f"{chart}.svg").read_text()
        assert svg.startswith("<svg") and svg.count("<rect") >= 2
        assert f"({chart}.svg)" in text
    for name in ("personas", "experts", "reward_model_accuracy", "consensus_accuracy"):
        assert name in data
    assert {"all", "filtered"} <= set(data["reward_model_accuracy"])
    expert = data["experts"][0]
    assert set(expert) >= {
        "persona",
        "true_accuracy",
        "gold_mean",
        "agreement",
        "impact",
        "impact_low",
        "impact_high",
        "composite",
        "tier",
        "suspended",
        "hours",
        "pay_cents",
    }
    careful = data["personas"]["careful"]
    assert set(careful) >= {
        "n",
        "tasks",
        "hours",
        "pay_cents",
        "hourly_cents",
        "forfeited_cents",
        "suspended",
        "tasks_until_stopped",
    }
    assert careful["hours"] > 0 and careful["hourly_cents"] > 0
