"""Pages: the expert's "My quality" and the admin desk's fraud flags."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from marketplace.charts import line_chart
from marketplace.pages import flash_errors, page_user, staff_desk
from projects.models import QualityStop, QualityStopStatus
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


@staff_desk
def desk_flags(request: HttpRequest) -> HttpResponse:
    from scoring.engine.tiers import flag_text

    rows = selectors.flagged_scores()
    for row in rows:
        row.flag_texts = [flag_text(flag) for flag in row.flags]  # type: ignore[attr-defined]
    return render(request, "scoring/desk_flags.html", {"rows": rows})


@login_required
@require_POST
def expert_quality_stop_appeal(request: HttpRequest, stop_id: int) -> HttpResponse:
    expert = page_user(request)
    stop = get_object_or_404(QualityStop, pk=stop_id, expert=expert)
    try:
        gate.quality_stop_appeal(stop=stop, expert=expert, reason=request.POST.get("reason", ""))
        messages.success(request, "Your appeal was sent; an admin will decide it.")
    except exceptions.APIException as error:
        flash_errors(request, error)
    return redirect("expert-earnings")


@staff_desk
def desk_quality_stops(request: HttpRequest) -> HttpResponse:
    stops = QualityStop.objects.select_related("project", "expert").order_by("-appealed_at", "-id")
    return render(
        request,
        "scoring/desk_quality_stops.html",
        {
            "appealed": [stop for stop in stops if stop.status == QualityStopStatus.APPEALED],
            "others": [stop for stop in stops if stop.status != QualityStopStatus.APPEALED][:200],
        },
    )


@staff_desk
@require_POST
def desk_quality_stop_decide(request: HttpRequest, stop_id: int) -> HttpResponse:
    stop = get_object_or_404(QualityStop, pk=stop_id)
    try:
        gate.quality_stop_decide(
            stop=stop,
            decided_by=page_user(request),
            reverse=request.POST.get("decision") == "reverse",
            note=request.POST.get("note", ""),
        )
        messages.success(request, "Decided.")
    except exceptions.APIException as error:
        flash_errors(request, error)
    return redirect("desk-quality-stops")


urlpatterns = [
    path("expert/quality/", expert_quality, name="expert-quality"),
    path(
        "expert/quality-stops/<id:stop_id>/appeal/",
        expert_quality_stop_appeal,
        name="expert-quality-stop-appeal",
    ),
    path("desk/flags/", desk_flags, name="desk-flags"),
    path("desk/quality-stops/", desk_quality_stops, name="desk-quality-stops"),
    path(
        "desk/quality-stops/<id:stop_id>/decide/",
        desk_quality_stop_decide,
        name="desk-quality-stop-decide",
    ),
]
