"""Pages: the expert's "My quality" and the admin desk's fraud flags."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from marketplace.charts import line_chart
from marketplace.pages import page_user, staff_desk
from scoring import selectors
from scoring.engine.tiers import next_tier_hint


@login_required
def expert_quality(request: HttpRequest) -> HttpResponse:
    expert = page_user(request)
    history = selectors.expert_score_history(expert=expert)
    rows = []
    for score in selectors.expert_scores(expert=expert):
        snapshots = history.get(score.run.project_id, [])
        rows.append(
            {
                "score": score,
                "project": score.run.project,
                "next": next_tier_hint(score.tier, score.composite, score.gold_n),
                "chart": line_chart(
                    [f"run {s.run_id}" for s in snapshots],
                    [s.composite for s in snapshots],
                    title=f"Composite score over time, {score.run.project.title}",
                ),
            }
        )
    return render(request, "scoring/expert_quality.html", {"rows": rows})


@staff_desk
def desk_flags(request: HttpRequest) -> HttpResponse:
    return render(request, "scoring/desk_flags.html", {"rows": selectors.flagged_scores()})


urlpatterns = [
    path("expert/quality/", expert_quality, name="expert-quality"),
    path("desk/flags/", desk_flags, name="desk-flags"),
]
