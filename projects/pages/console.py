"""The lab console: labs, projects, the project form with its rubric editor, imports with the
API's line-level error report, funding through Checkout, and the project dashboard.

Input is validated by the API's own serializers and written by the same services; reads come
from the same selectors (stats, contributors, runs). Exports link to the API's streaming export,
which accepts the browser session.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework import exceptions

from contributors.models import Skill
from marketplace import selectors as marketplace_selectors
from marketplace import services as marketplace_services
from marketplace.answer_forms import controls, rubric_dicts
from marketplace.charts import bar_chart, line_chart
from marketplace.models import MANAGING_ROLES, User
from marketplace.pages.common import (
    REFUSALS,
    error_messages,
    flash_errors,
    lab_for_page,
    page_user,
    refusal_text,
)
from marketplace.permissions import LAB_READ_ROLES
from marketplace.templatetags.marketplace_tags import ZERO_DECIMAL
from projects import evolution, exports, selectors, services
from projects.feed import feed_summary
from projects.models import (
    RESPONSE_COUNTS,
    DimensionKind,
    PayUnit,
    Project,
    ProjectStatus,
    TaskType,
)
from projects.pages.work import PER_RESPONSE_TASKS, response_rows
from projects.rate_cards import RATE_CARDS, per_task_cents
from projects.serializers import ProjectCreateSerializer, ProjectWriteSerializer

DASHBOARD_DAYS = 30
STATUS_ACTIONS = {
    "publish": ProjectStatus.OPEN,
    "pause": ProjectStatus.PAUSED,
    "close": ProjectStatus.CLOSED,
}


def _lab_project(request: HttpRequest, project_id: int, roles: Any = LAB_READ_ROLES) -> Any:
    """A project of one of the caller's labs (404 otherwise; 403 when the role is too weak)."""
    access = selectors.project_access(caller=request.user, project_id=project_id)
    if access is None or not access.is_lab:
        raise Http404
    if access.lab_role not in roles:
        raise PermissionDenied
    return access


def _minor_units(raw: str, currency: str) -> int | None:
    """'12.50' usd -> 1250; blank -> None. Pages take major units, the API minor units."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        return -1  # refused by the serializer's minimum, with the field named
    factor = 1 if currency.lower() in ZERO_DECIMAL else 100
    return int((amount * factor).to_integral_value())


def _major(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    if currency.lower() in ZERO_DECIMAL:
        return str(amount)
    return f"{Decimal(amount) / 100:.2f}"


def rubric_from_post(post: Any) -> dict[str, Any]:
    """The rubric editor's rows (parallel lists, in the order shown) as the API's rubric."""
    dimensions = []
    columns = ("key", "label", "kind", "min", "max", "options", "weight", "description")
    rows = zip(*(post.getlist(f"dim_{name}") for name in columns), strict=False)
    for key, label, kind, low, high, options, weight, description in rows:
        if not key.strip() and not label.strip():
            continue  # an empty row the editor left behind
        dimension: dict[str, Any] = {
            "key": key.strip(),
            "label": label.strip() or key.strip(),
            "kind": kind,
            "description": description,
        }
        if kind == DimensionKind.LIKERT:
            for name, raw in (("min", low), ("max", high)):
                if raw.strip().lstrip("-").isdigit():
                    dimension[name] = int(raw)
        if kind == DimensionKind.CHOICE:
            dimension["options"] = [o.strip() for o in options.split(",") if o.strip()]
        try:
            dimension["weight"] = float(weight) if weight.strip() else 1.0
        except ValueError:
            dimension["weight"] = -1.0  # refused by the serializer, with the dimension named
        dimensions.append(dimension)
    return {"instructions": post.get("instructions", ""), "dimensions": dimensions}


def _project_data(post: Any) -> dict[str, Any]:
    currency = post.get("currency", "usd").strip().lower() or "usd"

    def integer(name: str, default: int) -> Any:
        raw = post.get(name, "").strip()
        return int(raw) if raw.lstrip("-").isdigit() else default

    def fraction(name: str, default: float) -> Any:
        try:
            return float(post.get(name, default))
        except ValueError:
            return -1.0

    required = []
    for key in post.getlist("required_skill"):
        level = post.get(f"required_level.{key}", "1")
        required.append({"skill": key, "min_level": int(level) if level.isdigit() else 1})
    data: dict[str, Any] = {
        "title": post.get("title", ""),
        "description": post.get("description", ""),
        "domain": post.get("domain", ""),
        "task_type": post.get("task_type", ""),
        "rubric": rubric_from_post(post),
        "pay": {
            "unit": post.get("pay_unit", PayUnit.TASK),
            "base_rate": _minor_units(post.get("base_rate", ""), currency),
            "currency": currency,
        },
        "redundancy": integer("redundancy", 3),
        "max_redundancy": integer("max_redundancy", integer("redundancy", 3)),
        "gold_rate": fraction("gold_rate", 0.1),
        "lease_minutes": integer("lease_minutes", 30),
        "required_skills": required,
        "required_certifications": post.getlist("required_certification"),
        "budget": _minor_units(post.get("budget", ""), currency),
        "bonus_pool_percent": integer("bonus_pool_percent", 0),
        "review_rate": fraction("review_rate", 0.0),
        "review_pay": _minor_units(post.get("review_pay", ""), currency) or 0,
        "hourly_floor": _minor_units(post.get("hourly_floor", ""), currency),
        "pace_adjusted": post.get("pace_adjusted") == "on",
        "onboarding_gold": integer("onboarding_gold", 5),
        "gold_max_exposures": integer("gold_max_exposures", 50),
        "gold_half_life_days": integer("gold_half_life_days", 180),
        "tiers_by_dimension": post.get("tiers_by_dimension") == "on",
        "priority": post.get("priority", "none"),
    }
    return data


def _form_context(project: Project | None, post: Any, errors: list[str]) -> dict[str, Any]:
    """What the project form shows: the posted values after an error, else the project's."""
    if post is not None:
        rubric = rubric_from_post(post)
        values = {key: post.get(key, "") for key in post}
        required_skills = {
            key: post.get(f"required_level.{key}", "1") for key in post.getlist("required_skill")
        }
        required_certifications = set(post.getlist("required_certification"))
    elif project is not None:
        current = selectors.project_current_rubric(project=project)
        rubric = {
            "instructions": current.instructions if current else "",
            "dimensions": rubric_dicts(current.dimensions.order_by("position")) if current else [],
        }
        for dimension, row in zip(
            rubric["dimensions"],
            current.dimensions.order_by("position") if current else [],
            strict=False,
        ):
            dimension["weight"] = row.weight
        values = {
            "title": project.title,
            "description": project.description,
            "domain": project.domain,
            "task_type": project.task_type,
            "pay_unit": project.pay_unit,
            "base_rate": _major(project.base_rate, project.currency),
            "currency": project.currency,
            "redundancy": project.redundancy,
            "max_redundancy": project.max_redundancy,
            "gold_rate": project.gold_rate,
            "lease_minutes": project.lease_minutes,
            "budget": _major(project.budget, project.currency),
            "bonus_pool_percent": project.bonus_pool_percent,
            "review_rate": project.review_rate,
            "review_pay": _major(project.review_pay, project.currency),
            "hourly_floor": _major(project.hourly_floor, project.currency),
            "pace_adjusted": "on" if project.pace_adjusted else "",
            "onboarding_gold": project.onboarding_gold,
            "gold_max_exposures": project.gold_max_exposures,
            "gold_half_life_days": project.gold_half_life_days,
            "tiers_by_dimension": "on" if project.tiers_by_dimension else "",
            "priority": project.priority,
        }
        required_skills = {r.skill.key: str(r.min_level) for r in project.required_skills.all()}
        required_certifications = {r.skill.key for r in project.required_certifications.all()}
    else:
        rubric = {"instructions": "", "dimensions": []}
        values = {
            "currency": "usd",
            "pay_unit": PayUnit.TASK,
            "redundancy": 3,
            "max_redundancy": 3,
            "gold_rate": 0.1,
            "lease_minutes": 30,
            "bonus_pool_percent": 0,
            "review_rate": 0.0,
            "pace_adjusted": "on",
            "onboarding_gold": 5,
            "gold_max_exposures": 50,
            "gold_half_life_days": 180,
            "priority": "none",
            "task_type": TaskType.PAIRWISE,
        }
        required_skills, required_certifications = {}, set()
    for dimension in rubric["dimensions"]:
        options = dimension.get("options") or []
        dimension["options_text"] = ", ".join(options) if isinstance(options, list) else options
    return {
        "values": values,
        "rubric": rubric,
        "errors": errors,
        "skills": Skill.objects.order_by("key"),
        "required_skills": required_skills,
        "required_certifications": required_certifications,
        "task_types": TaskType.choices,
        "pay_units": PayUnit.choices,
        "kinds": DimensionKind.choices,
        "rate_cards": [
            {
                "card": card,
                "five_minutes": per_task_cents(card.typical, 5),
                "two_minutes": per_task_cents(card.typical, 2),
            }
            for card in RATE_CARDS
        ],
    }


@login_required
def console_home(request: HttpRequest) -> HttpResponse:
    user = page_user(request)
    errors: list[str] = []
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name or len(name) > 200:
            errors = ["A lab needs a name (at most 200 characters)."]
        else:
            lab = marketplace_services.lab_create(name=name, created_by=user)
            return redirect("console-lab", lab_id=lab.pk)
    labs = marketplace_selectors.lab_list_for_caller(caller=user)
    return render(request, "projects/console_home.html", {"labs": labs, "errors": errors})


@login_required
def console_lab(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, role = lab_for_page(request, lab_id, LAB_READ_ROLES)
    projects = Project.objects.filter(lab=lab).order_by("-created_at")
    return render(
        request,
        "projects/console_lab.html",
        {"lab": lab, "role": role, "projects": projects, "can_manage": role in MANAGING_ROLES},
    )


@login_required
def project_new(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, _ = lab_for_page(request, lab_id, MANAGING_ROLES)
    errors: list[str] = []
    if request.method == "POST":
        payload = ProjectCreateSerializer(data={**_project_data(request.POST), "lab": lab.pk})
        if payload.is_valid():
            data = dict(payload.validated_data)
            data.pop("lab")
            project = services.project_create(lab=lab, created_by=page_user(request), data=data)
            messages.success(request, "Project created as a draft. Import items, fund it, publish.")
            return redirect("console-project", project_id=project.pk)
        errors = error_messages(exceptions.ValidationError(payload.errors))
    context = _form_context(None, request.POST if request.method == "POST" else None, errors)
    return render(request, "projects/project_form.html", {**context, "lab": lab, "project": None})


@login_required
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _lab_project(request, project_id, MANAGING_ROLES).project
    errors: list[str] = []
    if request.method == "POST":
        payload = ProjectWriteSerializer(data=_project_data(request.POST))
        if payload.is_valid():
            data = dict(payload.validated_data)
            rubric = data.pop("rubric", None)
            try:
                if project.status == ProjectStatus.DRAFT:
                    services.project_update(
                        project=project, data=data, updated_by=page_user(request)
                    )
                if rubric is not None and _rubric_changed(project, rubric):
                    services.rubric_version_create(
                        project=project, rubric=rubric, created_by=page_user(request)
                    )
            except REFUSALS as error:
                errors = error_messages(error)
            else:
                messages.success(request, "Saved.")
                return redirect("console-project", project_id=project.pk)
        else:
            errors = error_messages(exceptions.ValidationError(payload.errors))
    context = _form_context(project, request.POST if request.method == "POST" else None, errors)
    return render(
        request,
        "projects/project_form.html",
        {**context, "lab": project.lab, "project": project},
    )


def _rubric_changed(project: Project, rubric: dict[str, Any]) -> bool:
    """Saving the form must not mint a rubric version when nobody touched the rubric."""
    current = selectors.project_current_rubric(project=project)
    if current is None:
        return bool(rubric.get("dimensions") or rubric.get("instructions"))
    shown = [
        (d.key, d.label, d.description, d.kind, d.min_value, d.max_value, list(d.options), d.weight)
        for d in current.dimensions.order_by("position")
    ]
    posted = [
        (
            d["key"],
            d["label"],
            d.get("description", ""),
            d["kind"],
            d.get("min"),
            d.get("max"),
            list(d.get("options", [])),
            d.get("weight", 1.0),
        )
        for d in rubric.get("dimensions", [])
    ]
    return shown != posted or current.instructions != rubric.get("instructions", "")


@login_required
def project_preview(request: HttpRequest, project_id: int) -> HttpResponse:
    """The expert's view of the current rubric on a real item (or a placeholder), inert."""
    project = _lab_project(request, project_id).project
    rubric = selectors.project_current_rubric(project=project)
    item = project.items.filter(is_gold=False).order_by("id").first()
    low, _ = RESPONSE_COUNTS[project.task_type]
    placeholders = [f"(response {chr(65 + index)} shows here)" for index in range(low)]
    responses = item.responses if item else placeholders
    task_type = project.task_type
    count = len(responses)
    dimensions = rubric_dicts(rubric.dimensions.order_by("position")) if rubric else []
    return render(
        request,
        "projects/project_preview.html",
        {
            "project": project,
            "rubric": rubric,
            "prompt": item.prompt if item else "(an item's prompt shows here)",
            "item": {"responses": responses},
            "task_type": task_type,
            "controls": controls(
                dimensions, response_count=count if task_type in PER_RESPONSE_TASKS else None
            ),
            "places": range(1, count + 1),
            "responses": response_rows(responses, {}),
            "selected": {},
        },
    )


@login_required
def project_import(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _lab_project(request, project_id, MANAGING_ROLES).project
    report: dict[str, Any] | None = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        is_gold = request.POST.get("kind") == "gold"
        if upload is None:
            report = {"message": "Choose a JSON Lines file.", "errors": [], "error_count": 0}
        else:
            try:
                created = services.items_import(
                    project=project, stream=upload, content_length=upload.size, is_gold=is_gold
                )
            except services.ImportFailed as failure:
                report = {
                    "message": failure.message,
                    "errors": [error.as_dict() for error in failure.errors],
                    "error_count": failure.error_count,
                }
            except REFUSALS as error:
                report = {
                    "message": "; ".join(error_messages(error)),
                    "errors": [],
                    "error_count": 0,
                }
            else:
                noun = "gold items" if is_gold else "items"
                messages.success(request, f"Imported {created} {noun}.")
                return redirect("console-project", project_id=project.pk)
    return render(
        request,
        "projects/project_import.html",
        {"project": project, "report": report},
        status=400 if report else 200,
    )


@login_required
@require_POST
def project_fund(request: HttpRequest, project_id: int) -> HttpResponse:
    from payouts.api import FundSerializer
    from payouts.services import funding

    project = _lab_project(request, project_id, MANAGING_ROLES).project
    payload = FundSerializer(
        data={"amount": _minor_units(request.POST.get("amount", ""), project.currency)}
    )
    if not payload.is_valid():
        messages.error(request, "Give an amount to fund, e.g. 500.00.")
        return redirect("console-project", project_id=project.pk)
    try:
        _, url = funding.funding_checkout_create(
            project=project, amount=payload.validated_data["amount"], created_by=page_user(request)
        )
    except REFUSALS as error:
        messages.error(request, refusal_text(error))
        return redirect("console-project", project_id=project.pk)
    return redirect(url)


@login_required
@require_POST
def project_status(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _lab_project(request, project_id, MANAGING_ROLES).project
    target = STATUS_ACTIONS.get(request.POST.get("action", ""))
    if target is None:
        raise Http404
    try:
        services.project_transition(
            project=project,
            to_status=target,
            changed_by=page_user(request),
            reason=request.POST.get("reason", ""),
        )
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(request, f"The project is now {target}.")
    return redirect("console-project", project_id=project.pk)


@login_required
@require_POST
def project_scoring_run(request: HttpRequest, project_id: int) -> HttpResponse:
    from scoring.services import scoring_run_create

    project = _lab_project(request, project_id, MANAGING_ROLES).project
    run = scoring_run_create(project=project, created_by=page_user(request))
    messages.success(request, f"Scoring run #{run.pk}: {run.status}.")
    return redirect("console-project", project_id=project.pk)


def _daily_series(project: Project) -> dict[str, Any]:
    from payouts.selectors import project_spent_by_day

    today = timezone.now().date()
    since = timezone.now() - timedelta(days=DASHBOARD_DAYS)
    labels = selectors.project_labels_by_day(project=project, since=since)
    spent = project_spent_by_day(project=project, since=since)
    days = [today - timedelta(days=offset) for offset in range(DASHBOARD_DAYS - 1, -1, -1)]
    first = next(
        (i for i, day in enumerate(days) if labels.get(day) or spent.get(day)), len(days) - 1
    )
    days = days[first:]
    names = [day.isoformat() for day in days]
    cost = [
        (spent.get(day, 0) / labels[day] / (1 if project.currency in ZERO_DECIMAL else 100))
        if labels.get(day)
        else None
        for day in days
    ]
    return {
        "throughput": line_chart(
            names,
            [float(labels.get(day, 0)) for day in days],
            title="Accepted labels per day",
            fmt=".0f",
        ),
        "cost": line_chart(
            names, cost, title=f"Cost per accepted label ({project.currency.upper()})"
        ),
    }


@login_required
def project_dashboard(request: HttpRequest, project_id: int) -> HttpResponse:
    from scoring import selectors as scoring_selectors
    from scoring.models import ScoringRun

    access = _lab_project(request, project_id)
    project = access.project
    stats = selectors.project_stats(project=project)
    for dimension in stats["dimensions"]:
        counts = dimension["counts"]
        dimension["chart"] = bar_chart(
            list(counts),
            [float(v) for v in counts.values()],
            title=f"Answers for {dimension['key']}",
        )
    run = scoring_selectors.latest_succeeded_run(project=project)
    rows = scoring_selectors.contributor_rows(run=run)
    from contributors.selectors import expert_pseudonym
    from payouts.selectors import effective_hourly_by_expert
    from scoring.engine.tiers import flag_text

    pay = effective_hourly_by_expert(project=project)
    contributors = [
        {
            "pseudonym": expert_pseudonym(expert=row.expert, lab_id=project.lab_id),
            "row": row,
            "flags": [flag_text(flag) for flag in row.flags],
            "impact_low": None
            if row.impact_value is None
            else row.impact_value - 1.96 * (row.impact_se or 0.0),
            "impact_high": None
            if row.impact_value is None
            else row.impact_value + 1.96 * (row.impact_se or 0.0),
            "pay": pay.get(row.expert_id),
        }
        for row in rows
    ]
    by_tier = scoring_selectors.hourly_by_tier(run=run, pay=pay)
    reviewed = (run.summary.get("reviewers") or {}) if run is not None else {}
    reviewers = [
        {
            "pseudonym": expert_pseudonym(expert=user, lab_id=project.lab_id),
            **reviewed[str(user.pk)],
        }
        for user in User.objects.filter(pk__in=[int(pk) for pk in reviewed])
    ]
    return render(
        request,
        "projects/project_dashboard.html",
        {
            "project": project,
            "role": access.lab_role,
            "can_manage": access.lab_role in MANAGING_ROLES,
            "stats": stats,
            "preference_chart": bar_chart(
                list(stats["preference"]),
                [float(v) for v in stats["preference"].values()],
                title="Preferences",
            )
            if stats["preference"]
            else None,
            "series": _daily_series(project),
            "contributors": contributors,
            "hourly_by_tier": by_tier,
            "reviewers": reviewers,
            "runs": ScoringRun.objects.filter(project=project).order_by("-id")[:10],
            "problems": selectors.project_publish_problems(project=project)
            if project.status == ProjectStatus.DRAFT
            else [],
            "formats": sorted(exports.FORMATS_BY_TASK_TYPE[project.task_type]),
            "bad_cases": evolution.bad_cases_by_dimension(project=project),
            "feed_summary": feed_summary(project=project),
            "correction_projects": Project.objects.filter(
                lab_id=project.lab_id, task_type=TaskType.CORRECTION
            ).exclude(pk=project.pk),
            "ai_judges": sorted(settings.AI_JUDGES),
            "trends": evolution.dimension_trends(project=project),
            "tiers": ["platinum", "gold", "silver", "bronze", "probation"],
        },
    )


@login_required
@require_POST
def project_ai_judge(request: HttpRequest, project_id: int) -> HttpResponse:
    """The dashboard's AI reviewer form: the same configure-and-run as the API."""
    from django.db import transaction

    from scoring.ai import ai_judge_configure
    from scoring.tasks import ai_judge_run_task

    project = _lab_project(request, project_id, MANAGING_ROLES).project
    judge = request.POST.get("judge", "")
    if judge and judge not in settings.AI_JUDGES:
        raise Http404
    ai_judge_configure(project=project, judge=judge, counts=request.POST.get("counts") == "on")
    if judge:
        transaction.on_commit(lambda: ai_judge_run_task.delay(project.pk))
        messages.success(request, f"AI judge '{judge}' set; it is labeling the items.")
    else:
        messages.success(request, "AI judge removed.")
    return redirect("console-project", project_id=project.pk)


@login_required
@require_POST
def project_feed_rules(request: HttpRequest, project_id: int) -> HttpResponse:
    from projects import feed

    project = _lab_project(request, project_id, MANAGING_ROLES).project
    correction = None
    raw = request.POST.get("correction_project", "")
    if raw.isdigit():
        correction = _lab_project(request, int(raw), MANAGING_ROLES).project
    try:
        feed.feed_configure(
            project=project,
            gray_low=float(request.POST.get("gray_low", "0.4")),
            gray_high=float(request.POST.get("gray_high", "0.8")),
            audit_rate=float(request.POST.get("audit_rate", "0")),
            correction_project=correction,
        )
    except ValueError:
        messages.error(request, "The gray zone and audit rate are numbers between 0 and 1.")
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        messages.success(request, "Feed rules saved.")
    return redirect("console-project", project_id=project.pk)
