"""Pages: the expert's "My quality" and the appeal of a quality stop."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from marketplace.charts import line_chart
from marketplace.pages.common import REFUSALS, flash_errors, page_user
from projects.models import QualityStop
from scoring import selectors
from scoring.engine.tiers import next_tier_hint
from scoring.services import gate


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
                "impact_low": None
                if score.impact_value is None
                else score.impact_value - 1.96 * (score.impact_se or 0.0),
                "impact_high": None
                if score.impact_value is None
                else score.impact_value + 1.96 * (score.impact_se or 0.0),
                "chart": line_chart(
                    [f"run {s.run_id}" for s in snapshots],
                    [s.composite for s in snapshots],
                    title=f"Composite score over time, {score.run.project.title}",
                ),
            }
        )
    return render(request, "scoring/expert_quality.html", {"rows": rows})


@login_required
@require_POST
def expert_quality_stop_appeal(request: HttpRequest, stop_id: int) -> HttpResponse:
    expert = page_user(request)
    stop = get_object_or_404(QualityStop, pk=stop_id, expert=expert)
    try:
        gate.quality_stop_appeal(stop=stop, expert=expert, reason=request.POST.get("reason", ""))
        messages.success(request, "Your appeal was sent; an admin will decide it.")
    except REFUSALS as error:
        flash_errors(request, error)
    return redirect("expert-earnings")
