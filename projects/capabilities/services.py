"""Writes of capabilities: save a project as a capability, publish it, build a project on it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from contributors.models import Exam
from contributors.services import capability_exam_create
from marketplace.errors import Conflict, DomainError
from marketplace.models import Lab, User
from projects import services as project_services
from projects.models import (
    Capability,
    CapabilityGold,
    GoldAnswer,
    Item,
    Project,
    RubricVersion,
)

# The project fields a capability carries as its pay terms and routing terms.
PAY_FIELDS = ("review_pay", "hourly_floor", "bonus_pool_percent", "pace_adjusted")
TERM_FIELDS = (
    "description",
    "domain",
    "redundancy",
    "max_redundancy",
    "gold_rate",
    "lease_minutes",
    "review_rate",
    "onboarding_gold",
    "gold_max_exposures",
    "gold_half_life_days",
    "tiers_by_dimension",
    "priority",
)


def _rubric_snapshot(project: Project) -> list[dict[str, Any]]:
    versions = (
        RubricVersion.objects.filter(project=project)
        .prefetch_related("dimensions")
        .order_by("number")
    )
    return [
        {
            "number": version.number,
            "instructions": version.instructions,
            "dimensions": [
                {
                    "key": dimension.key,
                    "label": dimension.label,
                    "description": dimension.description,
                    "kind": dimension.kind,
                    **(
                        {"min": dimension.min_value, "max": dimension.max_value}
                        if dimension.min_value is not None
                        else {}
                    ),
                    **({"options": dimension.options} if dimension.options else {}),
                    "weight": dimension.weight,
                    "tolerance": dimension.tolerance,
                }
                for dimension in sorted(version.dimensions.all(), key=lambda d: d.position)
            ],
        }
        for version in versions
    ]


def _share_gold(project: Project) -> list[CapabilityGold]:
    """The project's gold as shared rows: gold already shared (the project was itself built on a
    capability, or saved before) keeps its row; other gold gets one, starting from the
    exposures it already had. The gold rows are locked in primary-key order, so a claim
    counting an exposure meanwhile waits and is counted on the shared row, not lost."""
    answers = list(
        GoldAnswer.objects.select_for_update(of=("self",))
        .filter(item__project=project)
        .select_related("item", "shared")
        .order_by("pk")
    )
    shared: list[CapabilityGold] = []
    for gold in answers:
        if gold.shared is not None:
            shared.append(gold.shared)
            continue
        item = gold.item
        row = CapabilityGold.objects.create(
            lab_id=project.lab_id,
            prompt=item.prompt,
            responses=item.responses,
            context=item.context,
            features=item.features,
            split=item.split,
            model_version=item.model_version,
            answer=gold.answer,
            exposures=gold.exposures,
            retired_at=gold.retired_at,
        )
        GoldAnswer.objects.filter(pk=gold.pk).update(shared=row)
        shared.append(row)
    return shared


def capability_create(
    *, lab: Lab, name: str, from_project: Project, created_by: User, description: str = ""
) -> Capability:
    """Save a project's rubric (every version), instructions, pay and routing terms,
    requirements, qualification exams and gold as the next version of a named capability."""
    if from_project.lab_id != lab.pk:
        raise Conflict("The project belongs to another lab.", code="project_of_other_lab")
    rubric = _rubric_snapshot(from_project)
    if not rubric:
        raise Conflict(
            "The project has no rubric yet: a capability starts from a rubric.",
            code="project_without_rubric",
        )
    with transaction.atomic():
        # Versions of one name are numbered under the lab's row lock, so two saves at once
        # get 1 and 2, not two 1s (the unique constraint would refuse the second anyway).
        Lab.objects.select_for_update().get(pk=lab.pk)
        latest = Capability.objects.filter(lab=lab, name=name).aggregate(latest=Max("version"))
        project = Project.objects.prefetch_related(
            "required_skills__skill", "required_certifications__skill"
        ).get(pk=from_project.pk)
        capability = Capability.objects.create(
            lab=lab,
            name=name,
            version=(latest["latest"] or 0) + 1,
            description=description,
            source_project=project,
            task_type=project.task_type,
            rubric_versions=rubric,
            instructions=rubric[-1]["instructions"],
            pay={
                "unit": project.pay_unit,
                "base_rate": project.base_rate,
                "currency": project.currency,
                **{field: getattr(project, field) for field in PAY_FIELDS},
            },
            terms={field: getattr(project, field) for field in TERM_FIELDS},
            required_skills=[
                {
                    "skill": row.skill.key,
                    "min_level": row.min_level,
                    "include_child_skills": row.include_child_skills,
                }
                for row in project.required_skills.all()
            ],
            required_certifications=[
                {"skill": row.skill.key, "include_child_skills": row.include_child_skills}
                for row in project.required_certifications.all()
            ],
            created_by=created_by,
        )
        certification_skills = [row.skill_id for row in project.required_certifications.all()]
        capability.exams.set(
            Exam.objects.filter(skill_id__in=certification_skills, is_published=True)
        )
        capability.gold.set(_share_gold(project))
    return capability


def capability_publish(*, capability: Capability) -> Capability:
    """Put a capability in the catalogue. Idempotent: publishing twice keeps the first date."""
    with transaction.atomic():
        locked = Capability.objects.select_for_update().get(pk=capability.pk)
        if not locked.is_published:
            locked.certification_exam = capability_exam_create(
                key=f"c{locked.pk}",
                name=f"{locked.name} v{locked.version}",
                source_exams=list(locked.exams.all()),
            )
            locked.is_published = True
            locked.published_at = timezone.now()
            locked.save(update_fields=["is_published", "published_at", "certification_exam"])
    return locked


def _from_capability(
    capability: Capability, data: dict[str, Any], given: set[str], lab_id: int
) -> dict[str, Any]:
    """The project create data with everything the body did not give taken from the
    capability."""
    merged = dict(data)
    if "task_type" not in given:
        merged["task_type"] = capability.task_type
    if "pay" not in given:
        merged.update(
            pay_unit=capability.pay["unit"],
            base_rate=capability.pay["base_rate"],
            currency=capability.pay["currency"],
        )
    for field in PAY_FIELDS:
        if field not in given and field in capability.pay:
            merged[field] = capability.pay[field]
    for field in TERM_FIELDS:
        if field not in given and field in capability.terms:
            merged[field] = capability.terms[field]
    if "max_redundancy" not in given:
        # A redundancy the body raises raises the ceiling with it (the database refuses less).
        merged["max_redundancy"] = max(
            int(capability.terms.get("max_redundancy", 0)), int(merged.get("redundancy", 1))
        )
    if "required_skills" not in given:
        merged["required_skills"] = capability.required_skills
    if "required_certifications" not in given:
        merged["required_certifications"] = capability.required_certifications
        if capability.lab_id != lab_id and capability.certification_exam is not None:
            # Another lab's project requires the capability's own certification.
            merged["required_certifications"] = [
                {"skill": capability.certification_exam.skill.key, "include_child_skills": False}
            ]
    return merged


def _copy_gold(project: Project, capability: Capability, rubric_version: RubricVersion) -> int:
    """Give the project its own copy of each shared gold item (served as any gold is), each
    pointing at its shared row, where exposures are counted across projects."""
    rows = list(capability.gold.order_by("pk"))
    items = Item.objects.bulk_create(
        Item(
            project=project,
            prompt=row.prompt,
            responses=row.responses,
            context=row.context,
            features=row.features,
            split=row.split,
            model_version=row.model_version,
            is_gold=True,
            target_labels=project.redundancy,
        )
        for row in rows
    )
    GoldAnswer.objects.bulk_create(
        GoldAnswer(
            item=item,
            answer=row.answer,
            rubric_version=rubric_version,
            shared=row,
            retired_at=row.retired_at,
        )
        for item, row in zip(items, rows, strict=True)
    )
    return len(rows)


def project_create_from_capability(
    *,
    lab: Lab,
    created_by: User,
    capability: Capability,
    data: dict[str, Any],
    given: set[str],
) -> Project:
    """A draft project built on a capability in one call: its rubric (every version, so
    version numbers match), instructions, pay and routing terms, requirements (so the same
    exams certify for it) and, for the capability's own lab, its gold, shared. Whatever the
    body gives wins. Another lab's project on a published capability gets no gold: gold
    answers never leave their lab."""
    merged = _from_capability(capability, data, given, lab.pk)
    if int(merged.get("max_redundancy", 0)) < int(merged.get("redundancy", 1)):
        # The body gave one of the two and the capability the other: refused, not a 500.
        raise DomainError("max_redundancy must be at least redundancy.", code="invalid_redundancy")
    takes_rubric = "rubric" not in given or data.get("rubric") is None
    if takes_rubric:
        merged.pop("rubric", None)
    with transaction.atomic():
        project = project_services.project_create(lab=lab, created_by=created_by, data=merged)
        Project.objects.filter(pk=project.pk).update(capability=capability)
        project.capability = capability
        if takes_rubric:
            for version in capability.rubric_versions:
                project_services.rubric_version_create(
                    project=project, rubric=version, created_by=created_by
                )
        current = RubricVersion.objects.filter(project=project).order_by("-number").first()
        shares_gold = (
            capability.lab_id == lab.pk
            and takes_rubric
            and project.task_type == capability.task_type
            and current is not None
        )
        if shares_gold and current is not None:
            _copy_gold(project, capability, current)
    return project
