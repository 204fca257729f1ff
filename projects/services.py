"""Writes of projects: creation, rubric versions, status transitions and imports.

Past 400 lines on purpose: the project's writes share one status machine and its locks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from contributors.models import Skill
from marketplace.errors import Conflict, DomainError
from marketplace.models import Lab, User
from projects import selectors
from projects.answers import dimension_specs
from projects.importing import (
    BodyTooLarge,
    ImportLimits,
    LineError,
    ParsedItem,
    iter_raw_lines,
    parse_item_line,
)
from projects.models import (
    GOLD_TASK_TYPES,
    PROJECT_TRANSITIONS,
    Dimension,
    GoldAnswer,
    Item,
    ItemSource,
    Project,
    ProjectRequiredCertification,
    ProjectRequiredSkill,
    ProjectStatus,
    ProjectStatusChange,
    RubricVersion,
)

INSERT_BATCH = 5000
# Fields a lab may change while the project is a draft (everything but lab and status).
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "domain",
        "task_type",
        "pay_unit",
        "base_rate",
        "currency",
        "redundancy",
        "max_redundancy",
        "gold_rate",
        "lease_minutes",
        "budget",
        "bonus_pool_percent",
        "review_rate",
        "review_pay",
        "pace_adjusted",
        "hourly_floor",
        "onboarding_gold",
        "gold_max_exposures",
        "gold_half_life_days",
        "tiers_by_dimension",
        "priority",
    }
)


def _skills_by_key(keys: Iterable[str]) -> dict[str, Skill]:
    return {skill.key: skill for skill in Skill.objects.filter(key__in=set(keys))}


def _set_requirements(
    project: Project,
    required_skills: list[dict[str, Any]] | None,
    required_certifications: list[dict[str, Any]] | None,
) -> None:
    """Replace the project's requirements (skill keys were validated by the serializer)."""
    if required_skills is not None:
        skills = _skills_by_key(row["skill"] for row in required_skills)
        project.required_skills.all().delete()
        ProjectRequiredSkill.objects.bulk_create(
            ProjectRequiredSkill(
                project=project,
                skill=skills[row["skill"]],
                min_level=row.get("min_level", 1),
                include_child_skills=row.get("include_child_skills", False),
            )
            for row in required_skills
        )
    if required_certifications is not None:
        skills = _skills_by_key(row["skill"] for row in required_certifications)
        project.required_certifications.all().delete()
        ProjectRequiredCertification.objects.bulk_create(
            ProjectRequiredCertification(
                project=project,
                skill=skills[row["skill"]],
                include_child_skills=row.get("include_child_skills", False),
            )
            for row in required_certifications
        )


def _create_rubric_version(
    project: Project, rubric: dict[str, Any], created_by: User | None
) -> RubricVersion:
    latest = (
        RubricVersion.objects.select_for_update()
        .filter(project=project)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    version = RubricVersion.objects.create(
        project=project,
        number=(latest or 0) + 1,
        instructions=rubric.get("instructions", ""),
        created_by=created_by,
    )
    Dimension.objects.bulk_create(
        Dimension(
            rubric_version=version,
            position=position,
            key=dimension["key"],
            label=dimension["label"],
            description=dimension.get("description", ""),
            kind=dimension["kind"],
            min_value=dimension.get("min"),
            max_value=dimension.get("max"),
            options=dimension.get("options", []),
            weight=dimension.get("weight", 1.0),
            tolerance=dimension.get("tolerance", 1),
        )
        for position, dimension in enumerate(rubric.get("dimensions", []))
    )
    # Claims cache a project's current rubric by the row's updated_at (projects.work_config).
    Project.objects.filter(pk=project.pk).update(updated_at=timezone.now())
    return version


def project_create(*, lab: Lab, created_by: User, data: dict[str, Any]) -> Project:
    """Create a draft project with its first rubric version and requirements."""
    fields = {key: value for key, value in data.items() if key in EDITABLE_FIELDS}
    fields.setdefault("max_redundancy", fields.get("redundancy", 3))
    with transaction.atomic():
        project = Project.objects.create(lab=lab, created_by=created_by, **fields)
        _set_requirements(
            project, data.get("required_skills", []), data.get("required_certifications", [])
        )
        if data.get("rubric") is not None:
            _create_rubric_version(project, data["rubric"], created_by)
        ProjectStatusChange.objects.create(
            project=project,
            from_status=ProjectStatus.DRAFT,
            to_status=ProjectStatus.DRAFT,
            changed_by=created_by,
            reason="created",
        )
    return project


def project_update(*, project: Project, data: dict[str, Any], updated_by: User) -> Project:
    """Edit a draft. Once published, the terms experts were offered no longer change."""
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.status != ProjectStatus.DRAFT:
            raise Conflict(
                f"The project is {locked.status}; only a draft can be edited.",
                code="project_not_draft",
            )
        fields = {key: value for key, value in data.items() if key in EDITABLE_FIELDS}
        if "redundancy" in fields and "max_redundancy" not in fields:
            fields["max_redundancy"] = max(fields["redundancy"], locked.max_redundancy)
        changes_task_type = "task_type" in fields and fields["task_type"] != locked.task_type
        if changes_task_type and locked.items.exists():
            raise Conflict(
                "The task type cannot change once items are imported.",
                code="task_type_locked",
            )
        for key, value in fields.items():
            setattr(locked, key, value)
        if "redundancy" in fields:
            # Nothing was served yet (a draft): every item simply plans the new redundancy.
            locked.items.filter(is_gold=False).update(target_labels=fields["redundancy"])
        if locked.max_redundancy < locked.redundancy:
            raise DomainError(
                "max_redundancy must be at least redundancy.", code="invalid_redundancy"
            )
        locked.save()
        _set_requirements(locked, data.get("required_skills"), data.get("required_certifications"))
        if data.get("rubric") is not None:
            _create_rubric_version(locked, data["rubric"], updated_by)
    return locked


def rubric_version_create(
    *, project: Project, rubric: dict[str, Any], created_by: User
) -> RubricVersion:
    """A new version; earlier versions stay exactly as assignments were served with them."""
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.status == ProjectStatus.CLOSED:
            raise Conflict("The project is closed.", code="project_closed")
        return _create_rubric_version(locked, rubric, created_by)


def project_transition(
    *, project: Project, to_status: str, changed_by: User | None, reason: str = ""
) -> Project:
    """Move a project along PROJECT_TRANSITIONS, recording who and when (`changed_by` None:
    the platform itself, e.g. pausing a project whose payment was refunded)."""
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if to_status not in PROJECT_TRANSITIONS[locked.status]:
            raise Conflict(
                f"A {locked.status} project cannot become {to_status}.",
                code="invalid_transition",
            )
        if to_status == ProjectStatus.OPEN:
            problems = selectors.project_publish_problems(project=locked)
            if problems:
                raise DomainError(
                    "The project cannot be published yet.",
                    code="not_publishable",
                    details=problems,
                )
        ProjectStatusChange.objects.create(
            project=locked,
            from_status=locked.status,
            to_status=to_status,
            changed_by=changed_by,
            reason=reason,
        )
        locked.status = to_status
        locked.save(update_fields=["status", "updated_at"])
        if to_status == ProjectStatus.CLOSED:
            # A deliberate cycle (projects -> payouts): closing settles the pending pay.
            from payouts.tasks import earnings_settle_task  # noqa: PLC0415

            transaction.on_commit(lambda: earnings_settle_task.delay(locked.pk))
    return locked


@dataclass
class ImportFailed(Exception):
    """The import was refused as a whole; nothing was written."""

    status_code: int
    code: str
    message: str
    errors: list[LineError]
    error_count: int


_encoder = json.JSONEncoder(ensure_ascii=False, check_circular=False, separators=(",", ":"))
_json = _encoder.encode


def _insert_items(project: Project, batch: list[ParsedItem], *, is_gold: bool) -> list[int]:
    """Insert a batch of items; returns their ids when gold answers must point at them."""
    now = timezone.now()
    if connection.vendor == "postgresql" and not is_gold:
        # COPY is several times faster than multi-row INSERTs for 100k-item imports.
        columns = (
            "public_id, project_id, external_id, prompt, responses, context, features, "
            "split, source, is_gold, created_at, target_labels, model_version"
        )
        copy_sql = f"COPY projects_item ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
            for parsed in batch:
                copy.write_row(
                    (
                        parsed.public_id,
                        project.pk,
                        parsed.external_id,
                        parsed.prompt,
                        _json(parsed.responses),
                        _json(parsed.context),
                        None if parsed.features is None else _json(parsed.features),
                        parsed.split,
                        ItemSource.BULK,
                        False,
                        now,
                        project.redundancy,
                        parsed.model_version,
                    )
                )
        return []
    created = Item.objects.bulk_create(
        [
            Item(
                public_id=parsed.public_id,
                project=project,
                external_id=parsed.external_id,
                prompt=parsed.prompt,
                responses=parsed.responses,
                context=parsed.context,
                features=parsed.features,
                split=parsed.split,
                model_version=parsed.model_version,
                source=ItemSource.BULK,
                is_gold=is_gold,
                target_labels=project.redundancy,
            )
            for parsed in batch
        ]
    )
    return [item.pk for item in created]


def items_import(
    *,
    project: Project,
    stream: IO[bytes],
    content_length: int | None,
    is_gold: bool,
    limits: ImportLimits | None = None,
) -> int:
    """Import a JSON Lines body all-or-nothing; returns how many items were created.

    Valid lines are inserted as they stream in, inside one transaction, so memory stays bounded
    by a batch; the first bad line stops the inserting, the rest is still validated so the
    error report lists every bad line, and the transaction is rolled back.
    """
    limits = limits or ImportLimits.from_settings()
    if content_length is not None and content_length > limits.max_body_bytes:
        raise ImportFailed(
            413,
            "payload_too_large",
            f"The body is larger than {limits.max_body_bytes} bytes.",
            [],
            0,
        )
    if project.status == ProjectStatus.CLOSED:
        raise Conflict("The project is closed.", code="project_closed")
    dimensions = None
    rubric_version = None
    if is_gold:
        if project.task_type not in GOLD_TASK_TYPES:
            raise DomainError(
                f"Gold answers are not supported for {project.task_type} projects.",
                code="gold_not_supported",
            )
        rubric_version = selectors.project_current_rubric(project=project)
        if rubric_version is None:
            raise DomainError(
                "Gold answers are checked against the rubric: create one first.",
                code="rubric_missing",
            )
        dimensions = dimension_specs(rubric_version.dimensions.all())

    errors: list[LineError] = []
    error_count = 0
    created = 0
    seen_external_ids: dict[str, int] = {}
    existing_external_ids = selectors.project_external_ids(project=project)
    batch: list[ParsedItem] = []

    def record(line_errors: list[LineError]) -> None:
        nonlocal error_count
        error_count += len(line_errors)
        room = _max_listed() - len(errors)
        if room > 0:
            errors.extend(line_errors[:room])

    def flush() -> None:
        nonlocal created
        if not batch or error_count:
            batch.clear()
            return
        item_ids = _insert_items(project, batch, is_gold=is_gold)
        if is_gold:
            assert rubric_version is not None
            GoldAnswer.objects.bulk_create(
                GoldAnswer(item_id=item_id, answer=parsed.gold, rubric_version=rubric_version)
                for item_id, parsed in zip(item_ids, batch, strict=True)
            )
        created += len(batch)
        batch.clear()

    with transaction.atomic():
        try:
            for line_number, raw in iter_raw_lines(stream, limits):
                parsed, line_errors = parse_item_line(
                    line_number,
                    raw,
                    task_type=project.task_type,
                    limits=limits,
                    dimensions=dimensions,
                )
                external_id = parsed.external_id if parsed is not None else None
                if external_id is not None:
                    first_line = seen_external_ids.get(external_id)
                    if first_line is not None:
                        line_errors = [
                            LineError(
                                line_number,
                                "external_id",
                                f"duplicate external_id (first seen on line {first_line})",
                            )
                        ]
                        parsed = None
                    elif external_id in existing_external_ids:
                        line_errors = [
                            LineError(
                                line_number,
                                "external_id",
                                "an item with this external_id already exists in the project",
                            )
                        ]
                        parsed = None
                    else:
                        seen_external_ids[external_id] = line_number
                if line_errors:
                    record(line_errors)
                elif parsed is not None and not error_count:
                    batch.append(parsed)
                    if len(batch) >= INSERT_BATCH:
                        flush()
        except BodyTooLarge as error:
            transaction.set_rollback(True)
            raise ImportFailed(413, "payload_too_large", str(error), [], 0) from None
        flush()
        if error_count:
            transaction.set_rollback(True)
            raise ImportFailed(
                400,
                "invalid_lines",
                f"{error_count} problem(s) found; nothing was imported.",
                errors,
                error_count,
            )
        if created == 0:
            transaction.set_rollback(True)
            raise ImportFailed(400, "empty_body", "The body has no JSON lines.", [], 0)
        if created >= ANALYZE_AFTER_ITEMS and connection.vendor == "postgresql":
            transaction.on_commit(_analyze_items)
    return created


# After a bulk import this large, PostgreSQL's statistics are refreshed at once instead of
# whenever autovacuum comes by: with the old counts (a few rows) the planner sorts every open
# item for a claim (22 ms on 100k items) instead of walking the claim index (0.5 ms).
ANALYZE_AFTER_ITEMS = 1000


def _analyze_items() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE projects_item")


def _max_listed() -> int:
    return int(settings.IMPORT_MAX_LISTED_ERRORS)
