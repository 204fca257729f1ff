"""The simulated marketplace loop that `make demo` runs, on a small crowd."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from marketplace.simulation import simulate
from payouts.models import PayoutLine, PayoutRun
from payouts.services.ledger import ledger_verify
from projects.models import Submission
from scoring.models import ScoringRun

pytestmark = pytest.mark.django_db


def test_the_simulated_loop_runs_end_to_end(tmp_path: Path, settings: Any) -> None:
    settings.SCORING_SHAPLEY_MAX_SECONDS = 5
    report = simulate(seed=3, items=40, output=tmp_path)
    text = "\n".join(report.lines)
    assert Submission.objects.count() > 100
    assert ScoringRun.objects.get().status == "succeeded"
    run = PayoutRun.objects.get()
    assert run.status == "completed" and run.reconciliation["clean"] is True
    # Each expert with a line was paid exactly once.
    assert (
        PayoutLine.objects.filter(run=run, status__in=["sent", "paid"]).count() == run.lines.count()
    )
    assert ledger_verify().is_clean
    assert "| spammer |" in text and "Dawid-Skene" in text and "clean: True" in text
    assert (tmp_path / "report.md").exists() and (tmp_path / "dpo.jsonl").stat().st_size > 0
