"""What a claim reads besides the expert: a project's requirements and current rubric (kept
per process, see WorkConfig), rubric versions by id (immutable), the task price ceiling, and
the project's money and one expert's leases in one query. Reads only; routing.py writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from marketplace.models import User
from payouts.selectors import escrow_balance_subquery, project_spent_subquery
from payouts.services.earnings import task_cost_ceiling
from projects.models import (
    Assignment,
    AssignmentStatus,
    Project,
    ProjectRequiredCertification,
    ProjectRequiredSkill,
    QualityEvidence,
    QualityStop,
    QualityStopStatus,
    RubricVersion,
)


@dataclass(frozen=True)
class WorkConfig:
    """What a claim reads about a project besides its row. It cannot change while the row's
    `updated_at` stays the same: requirements change only on drafts (saving the row), and a
    new rubric version touches the row (`_create_rubric_version`). So each process keeps it,
    keyed by (id, updated_at), and a claim reads only the project row to know it is current."""

    required_skills: tuple[ProjectRequiredSkill, ...]
    required_certifications: tuple[ProjectRequiredCertification, ...]
    rubric: RubricVersion | None


_work_configs: dict[tuple[int, Any], WorkConfig] = {}
# Rubric versions (with their dimensions) never change once written: kept by id.
_rubric_versions: dict[int, RubricVersion] = {}
WORK_CONFIG_CACHE_SIZE = 1024


def _current_rubric(project: Project) -> RubricVersion | None:
    return (
        RubricVersion.objects.filter(project=project)
        .prefetch_related("dimensions")
        .order_by("-number")
        .first()
    )


def rubric_version(rubric_version_id: int) -> RubricVersion:
    """A rubric version with its dimensions, from this process's memory after the first read."""
    rubric = _rubric_versions.get(rubric_version_id)
    if rubric is None:
        rubric = RubricVersion.objects.prefetch_related("dimensions").get(pk=rubric_version_id)
        if len(_rubric_versions) >= WORK_CONFIG_CACHE_SIZE:
            _rubric_versions.clear()
        _rubric_versions[rubric_version_id] = rubric
    return rubric


def work_config(project: Project) -> WorkConfig:
    key = (project.pk, project.updated_at)
    config = _work_configs.get(key)
    if config is None:
        config = WorkConfig(
            required_skills=tuple(project.required_skills.select_related("skill")),
            required_certifications=tuple(project.required_certifications.select_related("skill")),
            rubric=_current_rubric(project),
        )
        if len(_work_configs) >= WORK_CONFIG_CACHE_SIZE:
            _work_configs.clear()
        _work_configs[key] = config
    return config


def task_price_ceiling(project: Project, cap_seconds: int | None = None) -> int:
    """What one task may cost at most (reserved by its lease, booked at submit): base at the
    highest tier's uplift, the bonus share and review pay; an hourly task billed at its cap
    (by default the lease)."""

    if cap_seconds is None:
        cap_seconds = int(project.lease_minutes) * 60
    return task_cost_ceiling(project=project, cap_seconds=cap_seconds)


def money_and_leases(project: Project, expert: User | None = None) -> dict[str, int]:
    """One query: escrow balance, reservations of active leases, spending (with a budget),
    and with `expert` that expert's assignments in the project (all, and active)."""

    def total(rows: Any, column: Any) -> Coalesce:
        summed = rows.order_by().values("project").annotate(total=column).values("total")
        return Coalesce(Subquery(summed, output_field=IntegerField()), Value(0))

    ours = Assignment.objects.filter(project=OuterRef("pk"))
    active = ours.filter(status=AssignmentStatus.ACTIVE)
    columns: dict[str, Any] = {
        "escrow": Coalesce(escrow_balance_subquery(), Value(0)),
        "reserved": total(active, Sum("reserved_amount")),
    }
    if project.budget is not None:
        columns["spent"] = Coalesce(project_spent_subquery(), Value(0))
    if expert is not None:
        columns["served"] = total(ours.filter(expert=expert), Count("id"))
        columns["gold_served"] = total(ours.filter(expert=expert, item__is_gold=True), Count("id"))
        columns["active"] = total(active.filter(expert=expert), Count("id"))
        stops = QualityStop.objects.filter(project=OuterRef("pk"), expert=expert).exclude(
            status=QualityStopStatus.REVERSED
        )
        columns["stopped"] = Exists(stops)
        leaning = QualityEvidence.objects.filter(
            project=OuterRef("pk"), expert=expert, log_likelihood_ratio__gt=0
        )
        columns["suspicious"] = Exists(leaning)
    row = cast("dict[str, Any]", Project.objects.filter(pk=project.pk).values(**columns).get())
    return {name: int(value) for name, value in row.items()}


def funds_left(project: Project, row: dict[str, int]) -> int:
    left = row["escrow"] - row["reserved"]
    if project.budget is not None:
        left = min(left, project.budget - row["spent"] - row["reserved"])
    return left


def project_funds_left(project: Project) -> int:
    """Escrow minus what active leases have reserved (and within the budget cap, if any)."""
    return funds_left(project, money_and_leases(project))
