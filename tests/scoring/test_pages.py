"""Scoring pages: an expert's own quality with uncertainty and the next tier; the desk's flags."""

from __future__ import annotations

from typing import Any

import pytest

from marketplace.models import Lab, User
from scoring.engine.tiers import next_tier_hint
from scoring.models import ContributorScore, ScoringRun
from tests.conftest import browser
from tests.contributors.factories import enable_mfa
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db


def test_next_tier_hint() -> None:
    assert next_tier_hint("provisional", None, 2).startswith("3 more hidden quality checks")
    assert next_tier_hint("silver", 0.7, 20) == "composite score 0.80 for gold (now 0.70)"
    assert next_tier_hint("platinum", 0.95, 20) == "top tier reached"
    assert next_tier_hint("probation", 0.2, 20) == "composite score 0.50 for bronze (now 0.20)"


def test_quality_page_shows_own_scores_history_and_next_tier(
    lab: Lab, lab_owner: User, expert: User
) -> None:
    project = make_project(lab, lab_owner)
    for composite in (0.6, 0.72):
        run = ScoringRun.objects.create(project=project, status="succeeded")
        ContributorScore.objects.create(
            run=run,
            expert=expert,
            tier="silver",
            composite=composite,
            gold_mean=0.81,
            gold_low=0.7,
            gold_high=0.9,
            gold_n=12,
            agreement_rate=0.77,
            agreement_low=0.7,
            agreement_high=0.83,
            agreement_n=50,
            impact_value=0.0123,
            impact_se=0.004,
            impact_per_label=0.0003,
            n_labels=40,
            dimensions={
                "safety": {
                    "gold": {"mean": 0.95, "low": 0.88, "high": 0.99, "n": 24},
                    "agreement": {"rate": 0.9, "low": 0.8, "high": 0.95, "n": 30},
                }
            },
        )
    html = browser(expert).get("/expert/quality/").content.decode()
    assert "81.0%" in html and "70%" in html and "90%" in html
    dash = "\N{EN DASH}"
    assert f"(70%{dash}83%, n=50)" in html  # agreement with its interval and n
    assert "0.0123" in html and "(0.0045 to 0.0201" in html  # impact with its 95% interval
    assert "safety" in html and f"(88%{dash}99%, n=24)" in html  # gold per part of the rubric
    assert "composite score 0.80 for gold (now 0.72)" in html
    assert html.count("<circle") == 2  # one point per run in the chart


def test_quality_page_never_shows_other_experts(lab: Lab, lab_owner: User, expert: User) -> None:
    from tests.marketplace.factories import UserFactory

    other = UserFactory()
    run = ScoringRun.objects.create(project=make_project(lab, lab_owner), status="succeeded")
    ContributorScore.objects.create(run=run, expert=other, tier="gold", composite=0.85)
    assert "0.850" not in browser(expert).get("/expert/quality/").content.decode()


def test_desk_lists_flags_with_evidence(
    lab: Lab, lab_owner: User, expert: User, staff: User
) -> None:
    enable_mfa(staff)
    run = ScoringRun.objects.create(project=make_project(lab, lab_owner), status="succeeded")
    ContributorScore.objects.create(
        run=run,
        expert=expert,
        flags=[{"flag": "fast", "median_seconds": 3, "project_median_seconds": 90}],
    )
    html = browser(staff).get("/desk/flags/").content.decode()
    # Readable, with the evidence (issue 18: no raw dictionaries).
    assert expert.email in html
    assert "fast: median 3 s per task, project median 90 s" in html
    assert "median_seconds" not in html


def test_the_django_admin_shows_scoring_runs_and_scores_read_only(
    client: Any, lab: Lab, lab_owner: User, expert: User, staff: User
) -> None:
    staff.is_superuser = True
    staff.save()
    project = make_project(lab, lab_owner)
    run = ScoringRun.objects.create(project=project, status="succeeded")
    score = ContributorScore.objects.create(run=run, expert=expert, tier="silver", composite=0.7)
    client.force_login(staff)
    runs = client.get("/admin/scoring/scoringrun/")
    assert runs.status_code == 200 and project.title in runs.content.decode()
    detail = client.get(f"/admin/scoring/scoringrun/{run.pk}/change/")
    assert detail.status_code == 200 and expert.email in detail.content.decode()
    assert client.get("/admin/scoring/contributorscore/add/").status_code == 403
    client.post(f"/admin/scoring/contributorscore/{score.pk}/delete/", {"post": "yes"})
    assert ContributorScore.objects.filter(pk=score.pk).exists()
