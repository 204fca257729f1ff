"""AI reviewers (issue 10): run a project's automatic judge over its items. The judge is one
more contributor: its labels are scored exactly like a human's (gold, agreement, impact) and
shown marked as AI; it is never paid; its labels count toward consensus and exports only where
the lab allows (`Project.ai_judge_counts`)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from contributors.models import ExpertProfile
from marketplace.answer_forms import rubric_dicts
from marketplace.errors import DomainError
from marketplace.models import User
from projects.answers import dimension_specs, validate_answer
from projects.automatic import submission_record_automatic
from projects.models import Project, TaskType
from projects.selectors import project_current_rubric

JUDGED_TASK_TYPES = frozenset({TaskType.PAIRWISE, TaskType.RANKING, TaskType.RATING})


@dataclass(frozen=True)
class JudgeReport:
    labeled: int
    invalid: int


def ai_judge_user(*, name: str) -> User:
    """The judge's own account: no usable password, no email that reaches anyone."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        email=f"ai-judge+{name}@ai.invalid", defaults={"name": f"AI judge: {name}"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    ExpertProfile.objects.update_or_create(user=user, defaults={"ai_judge": name})
    return user


def ai_contributor_ids(*, expert_ids: list[int]) -> set[int]:
    return set(
        ExpertProfile.objects.filter(user_id__in=expert_ids)
        .exclude(ai_judge="")
        .values_list("user_id", flat=True)
    )


def ai_judge_run(*, project: Project) -> JudgeReport:
    """Label every item of the project (gold included: that is how the judge is measured)
    that its judge has not labeled yet, with the current rubric version."""

    name = project.ai_judge
    if not name or name not in settings.AI_JUDGES:
        raise DomainError("The project has no known AI judge configured.", code="no_ai_judge")
    if project.task_type not in JUDGED_TASK_TYPES:
        raise DomainError(
            f"AI judges label pairwise, ranking and rating items, not {project.task_type}.",
            code="ai_judge_not_supported",
        )
    rubric = project_current_rubric(project=project)
    if rubric is None:
        raise DomainError("The project has no rubric yet.", code="no_rubric")
    judge = import_string(settings.AI_JUDGES[name])
    # A judge callable may name its version (a model and prompt revision); quality is reported
    # per version, so a lab sees whether an upgrade helped.
    version = getattr(judge, "version", "") or name
    version = str(version() if callable(version) else version)
    user = ai_judge_user(name=name)
    dimensions = rubric_dicts(rubric.dimensions.order_by("position"))
    specs = dimension_specs(rubric.dimensions.all())
    labeled = invalid = 0
    for item in project.items.exclude(submissions__expert=user).order_by("id").iterator():
        answer = judge(
            task_type=project.task_type,
            prompt=item.prompt,
            responses=list(item.responses),
            dimensions=dimensions,
        )
        normalised, problems = validate_answer(
            task_type=project.task_type,
            dimensions=specs,
            response_count=len(item.responses),
            answer=answer,
            require_all_dimensions=True,
        )
        if problems:
            invalid += 1
            continue
        submission_record_automatic(
            project=project,
            item=item,
            judge=user,
            rubric=rubric,
            answer=normalised,
            judge_version=version,
        )
        labeled += 1
    return JudgeReport(labeled=labeled, invalid=invalid)


def ai_judge_configure(*, project: Project, judge: str, counts: bool) -> None:
    """Choose the project's judge (or none) and whether its labels count. Allowed in any
    status: it changes no term offered to experts."""
    Project.objects.filter(pk=project.pk).update(ai_judge=judge, ai_judge_counts=counts)
    project.ai_judge, project.ai_judge_counts = judge, counts
