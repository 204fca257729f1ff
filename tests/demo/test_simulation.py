"""The simulated marketplace loop that `make demo` runs, and what its numbers must show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from demo.simulation import simulate
from payouts.models import PayoutLine, PayoutRun
from payouts.services.ledger import ledger_verify
from projects.models import Project, Submission
from scoring.models import ScoringRun

pytestmark = pytest.mark.django_db

LOW_TIERS = {"probation", "bronze"}
TOP_TIERS = {"silver", "gold", "platinum"}
# The simulation is deterministic for a seed; its 2,000-item eval set still measures accuracy
# only to about +-1 point (binomial noise), so within 2 points counts as "not lower".
EVAL_NOISE = 0.02


def test_the_simulated_loop_separates_the_personas_and_pays_once(
    tmp_path: Path, settings: Any
) -> None:
    settings.SCORING_SHAPLEY_MAX_SECONDS = 5
    report = simulate(seed=7, items=300, output=tmp_path)
    text = "\n".join(report.lines)
    assert Submission.objects.count() > 900
    # The pairwise project and the rating and ranking side projects were scored.
    assert list(ScoringRun.objects.values_list("status", flat=True)) == ["succeeded"] * 3
    assert set(Project.objects.values_list("task_type", flat=True)) == {
        "pairwise",
        "rating",
        "ranking",
        "demonstration",
        "correction",
    }

    tiers: dict[str, list[str]] = {}
    for persona, tier, _ in report.experts:
        tiers.setdefault(persona, []).append(tier)
    assert set(tiers["spammer"]) <= LOW_TIERS, tiers["spammer"]
    assert set(tiers["adversarial"]) <= LOW_TIERS, tiers["adversarial"]
    assert set(tiers["careful"]) <= TOP_TIERS, tiers["careful"]
    ranked = sorted(report.experts, key=lambda row: row[2] or 0.0)
    assert {persona for persona, _, _ in ranked[:7]} <= {"spammer", "adversarial", "fast_careless"}

    metrics = report.metrics
    assert metrics["dawid_skene_accuracy"] > metrics["majority_vote_accuracy"]
    assert metrics["reward_model_silver_or_better"] >= metrics["reward_model_all"] - EVAL_NOISE

    run = PayoutRun.objects.get()
    assert run.status == "completed" and run.reconciliation["clean"] is True
    # Each expert with a line was paid exactly once (one sent line, one transfer each).
    lines = PayoutLine.objects.filter(run=run)
    assert lines.filter(status__in=["sent", "paid"]).count() == lines.count()
    assert lines.values("user").distinct().count() == lines.count()
    assert ledger_verify().is_clean
    assert "| spammer |" in text and "clean: True" in text
    assert (tmp_path / "report.md").exists() and (tmp_path / "dpo.jsonl").stat().st_size > 0
    assert (tmp_path / "sft.jsonl").read_text().count("\n") >= 60  # demonstrations, corrections
    assert 0.0 <= metrics["side_ranking_accuracy"] <= 1.0
    for chart in ("composite-by-persona", "pay-by-persona", "consensus-accuracy"):
        svg = (tmp_path / f"{chart}.svg").read_text()
        assert svg.startswith("<svg") and svg.count("<rect") >= 2
        assert f"({chart}.svg)" in (tmp_path / "report.md").read_text()
