"""Reads of capabilities: what a caller may see, and what a project is built from."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from marketplace.models import Membership
from projects.models import Capability, Project


def caller_lab_ids(*, caller: Any) -> list[int]:
    api_key = getattr(caller, "api_key", None)
    if api_key is not None:
        return [api_key.lab_id]
    if not getattr(caller, "is_authenticated", False):
        return []
    return list(Membership.objects.filter(user=caller).values_list("lab_id", flat=True))


def capability_list_for_caller(*, caller: Any, scope: str = "all") -> QuerySet[Capability]:
    """The caller's labs' capabilities (every version) and the catalogue's published ones;
    `scope` `own` or `catalogue` keeps one of the two."""
    lab_ids = caller_lab_ids(caller=caller)
    own = Q(lab_id__in=lab_ids)
    published = Q(is_published=True)
    condition = {"own": own, "catalogue": published}.get(scope, own | published)
    return (
        Capability.objects.filter(condition)
        .select_related("lab", "certification_exam__skill")
        .prefetch_related("exams__skill")
        .annotate(
            gold_items=Count("gold", distinct=True), project_count=Count("projects", distinct=True)
        )
        .order_by("name", "-version", "pk")
    )


def capability_for_caller(*, caller: Any, capability_id: int) -> Capability | None:
    """A capability of the caller's labs, or a published one; None otherwise (answered 404)."""
    return capability_list_for_caller(caller=caller).filter(pk=capability_id).first()


def capability_is_own(*, caller: Any, capability: Capability) -> bool:
    return capability.lab_id in caller_lab_ids(caller=caller)


def capability_projects(*, capability: Capability) -> QuerySet[Project]:
    """Every project built on any version of the capability's name in its lab, and the projects
    its versions were saved from: the experts' track record on it."""
    versions = Capability.objects.filter(lab_id=capability.lab_id, name=capability.name)
    return Project.objects.filter(
        Q(capability__in=versions) | Q(pk__in=versions.values("source_project"))
    ).order_by("pk")
