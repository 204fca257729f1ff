"""The admin desk's quality work: fraud flags and appealed quality stops."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from marketplace.pages.common import REFUSALS, flash_errors, page_user, staff_desk
from projects.models import QualityStop, QualityStopStatus
from scoring import selectors
from scoring.engine.tiers import flag_text
from scoring.services import gate


@staff_desk
def desk_flags(request: HttpRequest) -> HttpResponse:
    rows = selectors.flagged_scores()
    for row in rows:
        row.flag_texts = [flag_text(flag) for flag in row.flags]  # type: ignore[attr-defined]
    return render(request, "scoring/desk_flags.html", {"rows": rows})


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
    except REFUSALS as error:
        flash_errors(request, error)
    return redirect("desk-quality-stops")
