"""Reads of projects: access, listing, publish checks, rubrics and stats."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, Max, Min, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from contributors import eligibility
from marketplace import selectors as marketplace_selectors
from marketplace.errors import NotFoundError
from marketplace.models import Membership
from payouts.selectors import project_can_pay_one_task, project_low_balance, project_money
from projects.models import (
    Dimension,
    DimensionKind,
    GoldAnswer,
    Item,
    Project,
    ProjectStatus,
    RubricVersion,
    Submission,
    SubmissionStatus,
    TaskType,
)
from scoring.selectors import latest_succeeded_run


@dataclass(frozen=True)
class ProjectAccess:
    """How the caller sees a project: as a member of its lab (with a role), or as an expert."""

    project: Project
    lab_role: str | None

    @property
    def is_lab(self) -> bool:
        return self.lab_role is not None


def _with_requirements(projects: QuerySet[Project]) -> QuerySet[Project]:
    return projects.select_related("lab").prefetch_related(
        "required_skills__skill", "required_certifications__skill"
    )


def project_access(*, caller: Any, project_id: int) -> ProjectAccess | None:
    """The caller's view of a project, or None when the project is outside its reach.

    Lab members and the lab's API keys see their lab's projects in any status; anyone else
    sees an open project only if qualified for it right now.
    """
    project = _with_requirements(Project.objects.filter(pk=project_id)).first()
    if project is None:
        return None
    role = marketplace_selectors.lab_role_for_caller(caller=caller, lab_id=project.lab_id)
    if role is not None:
        return ProjectAccess(project=project, lab_role=role)
    if getattr(caller, "api_key", None) is not None or project.status != ProjectStatus.OPEN:
        return None
    if eligibility.expert_is_qualified(expert=caller, project=project):
        return ProjectAccess(project=project, lab_role=None)
    return None


def correction_projects(*, project: Project) -> QuerySet[Project]:
    """The lab's other correction projects: where the live feed may send failing responses."""
    return Project.objects.filter(lab_id=project.lab_id, task_type=TaskType.CORRECTION).exclude(
        pk=project.pk
    )


def project_for_work(*, project_id: int) -> Project:
    """An open project to claim in; anything else is 404 (its existence is not revealed)."""
    # No prefetch: a claim reads requirements and rubric from projects.work_config's cache.
    project = Project.objects.filter(pk=project_id, status=ProjectStatus.OPEN).first()
    if project is None:
        raise NotFoundError()
    return project


def project_get(*, project_id: int) -> Project:
    return _with_requirements(Project.objects.filter(pk=project_id)).get()


def project_list_for_lab_caller(*, caller: Any) -> QuerySet[Project]:
    api_key = getattr(caller, "api_key", None)
    if api_key is not None:
        projects = Project.objects.filter(lab_id=api_key.lab_id)
    else:
        lab_ids = Membership.objects.filter(user=caller).values("lab_id")
        projects = Project.objects.filter(lab_id__in=lab_ids)
    return _with_requirements(projects).order_by("-id")


def project_list_for_expert(*, expert: Any) -> list[Project]:
    """Open projects the expert qualifies for now (requirements prefetched, checked in memory)."""
    qualifications = eligibility.expert_qualifications(expert=expert)
    if qualifications.is_suspended:
        return []
    open_projects = _with_requirements(
        Project.objects.filter(status=ProjectStatus.OPEN).exclude(
            lab_id__in=Membership.objects.filter(user=expert).values("lab_id")
        )
    ).order_by("-id")
    return [
        project
        for project in open_projects
        if eligibility.qualifications_meet(qualifications, project)
    ]


def project_current_rubric(*, project: Project) -> RubricVersion | None:
    return (
        RubricVersion.objects.filter(project=project)
        .prefetch_related(Prefetch("dimensions", queryset=Dimension.objects.order_by("position")))
        .order_by("-number")
        .first()
    )


def rubric_versions(*, project: Project) -> QuerySet[RubricVersion]:
    return (
        RubricVersion.objects.filter(project=project)
        .prefetch_related(Prefetch("dimensions", queryset=Dimension.objects.order_by("position")))
        .order_by("number")
    )


def project_external_ids(*, project: Project) -> set[str]:
    external_ids = Item.objects.filter(project=project, external_id__isnull=False).values_list(
        "external_id", flat=True
    )
    return {external_id for external_id in external_ids if external_id is not None}


def project_publish_problems(*, project: Project) -> list[dict[str, str]]:
    """What stops a project from opening (empty when it may)."""
    problems = []
    rubric = project_current_rubric(project=project)
    if rubric is None:
        problems.append({"field": "rubric", "message": "the project needs a rubric"})
    elif project.task_type == TaskType.RATING and not rubric.dimensions.all():
        problems.append(
            {"field": "rubric", "message": "a rating project needs at least one dimension"}
        )
    if not Item.objects.filter(project=project, is_gold=False).exists():
        problems.append({"field": "items", "message": "the project needs at least one item"})

    if not project_can_pay_one_task(project=project):
        problems.append(
            {
                "field": "escrow",
                "message": "fund the project: escrow must cover at least one task at the "
                "highest tier multiplier",
            }
        )
    return problems


def _distribution(dimension: Dimension, values: list[Any]) -> dict[str, Any]:
    counts = Counter(values)
    if dimension.kind == DimensionKind.LIKERT:
        assert dimension.min_value is not None and dimension.max_value is not None
        keys: list[Any] = list(range(dimension.min_value, dimension.max_value + 1))
    elif dimension.kind == DimensionKind.BINARY:
        keys = [0, 1]
    else:
        keys = list(dimension.options)
    numeric = [value for value in values if isinstance(value, int | float)]
    return {
        "key": dimension.key,
        "kind": dimension.kind,
        "n": len(values),
        "counts": {str(key): counts.get(key, 0) for key in keys},
        "mean": (sum(numeric) / len(numeric)) if numeric else None,
    }


def gold_freshness(*, project: Project) -> dict[str, Any]:
    """The gold pool as the lab should watch it: served gold (active, retired after
    `gold_max_exposures`), the lab's eval-only pairs, how often gold was exposed, its age."""

    served = GoldAnswer.objects.filter(item__project=project, item__split="train")
    # Gold shared through a capability counts its exposures in every project sharing it.
    exposures = Coalesce("shared__exposures", "exposures")
    summary = served.aggregate(
        items=Count("pk"),
        retired=Count("pk", filter=Q(retired_at__isnull=False)),
        shared_items=Count("pk", filter=Q(shared__isnull=False)),
        mean_exposures=Avg(exposures),
        max_exposures=Max(exposures),
        oldest=Min(Coalesce("shared__created_at", "created_at")),
    )
    active = summary["items"] - summary["retired"]
    oldest = summary["oldest"]
    return {
        "items": summary["items"],
        "active": active,
        "retired": summary["retired"],
        "shared": summary["shared_items"],
        "eval_pairs": GoldAnswer.objects.filter(item__project=project, item__split="eval").count(),
        "mean_exposures": round(float(summary["mean_exposures"] or 0.0), 2),
        "max_exposures": summary["max_exposures"] or 0,
        "retire_after_exposures": project.gold_max_exposures,
        "oldest_days": (timezone.now() - oldest).days if oldest else None,
        "half_life_days": project.gold_half_life_days,
        # The lab's cue to add gold: fewer than 10 active items left.
        "needs_more": active < 10,
    }


def project_stats(*, project: Project) -> dict[str, Any]:
    """Progress, per-dimension distributions, budget and cost per accepted label."""
    items = Item.objects.filter(project=project).aggregate(
        total=Count("id", filter=Q(is_gold=False)),
        gold=Count("id", filter=Q(is_gold=True)),
        eval_items=Count("id", filter=Q(split="eval", is_gold=False)),
    )
    accepted = Submission.objects.filter(project=project, status=SubmissionStatus.ACCEPTED)
    label_counts = accepted.aggregate(
        labels=Count("id"), gold_labels=Count("id", filter=Q(item__is_gold=True))
    )
    per_item = (
        accepted.filter(item__is_gold=False)
        .values("item_id")
        .annotate(n=Count("id"))
        .filter(n__gte=project.redundancy)
    )
    completed = per_item.count()

    rubric = project_current_rubric(project=project)
    dimensions = list(rubric.dimensions.all()) if rubric else []
    values: dict[str, list[Any]] = defaultdict(list)
    preferences: Counter[str] = Counter()
    if dimensions or project.task_type == TaskType.PAIRWISE:
        for answer in accepted.filter(rubric_version=rubric).values_list("answer", flat=True):
            if "preference" in answer:
                preferences[answer["preference"]] += 1
            for key, value in (answer.get("answers") or {}).items():
                values[key].extend(value if isinstance(value, list) else [value])

    money = project_money(project=project)
    spent = money["spent"]
    labels = label_counts["labels"]

    run = latest_succeeded_run(project=project)
    alphas = (run.summary.get("alpha") or {}) if run else {}
    return {
        "status": project.status,
        "progress": {
            "items": items["total"],
            "gold_items": items["gold"],
            "eval_items": items["eval_items"],
            "labels": labels,
            "gold_labels": label_counts["gold_labels"],
            "completed_items": completed,
            "completion": (completed / items["total"]) if items["total"] else 0.0,
        },
        "rubric_version": rubric.number if rubric else None,
        "preference": dict(preferences) if project.task_type == TaskType.PAIRWISE else None,
        "dimensions": [
            {
                **_distribution(dimension, values[dimension.key]),
                # Krippendorff's alpha from the latest scoring run: a badly defined dimension
                # shows up here as an alpha near zero.
                "alpha": alphas.get(f"dim:{dimension.key}"),
            }
            for dimension in dimensions
        ],
        "agreement": None
        if run is None
        else {
            "scoring_run": run.pk,
            "alpha": alphas,
            "dawid_skene": run.summary.get("dawid_skene"),
        },
        "budget": {
            "currency": project.currency,
            "cap": project.budget,
            # What the cap counts: pending, reserve and paid (docs/MONEY.md, "What one task costs").
            "spent": spent,
            "left": (project.budget - spent - money["leases"])
            if project.budget is not None
            else None,
            "escrow": money["escrow"],
            "reserved": money["reserved"],
            # The part of `reserved` held by open leases (the rest: submitted labels' reserve).
            "leases": money["leases"],
            "pending": money["pending"],
            "paid": money["paid"],
            "fees": money["fees"],
            # False once escrow minus reservations cannot pay one more task: claims stop.
            "can_serve": project_can_pay_one_task(project=project),
            # The page's warning, on the same threshold as the `project.budget_low` webhook.
            "low_balance": project_low_balance(project=project, escrow=money["escrow"]),
        },
        # Base pay booked per accepted label (pending and paid), what labels cost so far.
        "gold": gold_freshness(project=project),
        "cost_per_accepted_label": ((money["paid"] + money["pending"]) / labels)
        if labels
        else None,
    }


def project_labels_by_day(*, project: Project, since: Any) -> dict[Any, int]:
    """Accepted labels per calendar day (UTC) since a moment: the dashboard's throughput."""

    rows = (
        Submission.objects.filter(
            project=project, status=SubmissionStatus.ACCEPTED, submitted_at__gte=since
        )
        .annotate(day=TruncDate("submitted_at"))
        .values("day")
        .annotate(n=Count("id"))
    )
    return {row["day"]: row["n"] for row in rows}
