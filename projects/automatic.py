"""Labels written by automatic judges (AI reviewers): stored as submissions like a human's,
so scoring treats them the same, but outside routing: no lease, no budget reservation, no
earning, and the item's label counters (human slots) are untouched."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.models import User
from projects.models import Assignment, AssignmentStatus, Item, Project, RubricVersion, Submission


def submission_record_automatic(
    *,
    project: Project,
    item: Item,
    judge: User,
    rubric: RubricVersion,
    answer: dict[str, Any],
    judge_version: str = "",
) -> Submission:
    """Record a judge's already validated answer for one item."""
    now = timezone.now()
    with transaction.atomic():
        assignment = Assignment.objects.create(
            project=project,
            item=item,
            expert=judge,
            rubric_version=rubric,
            status=AssignmentStatus.SUBMITTED,
            served_at=now,
            leased_until=now,
            ended_at=now,
        )
        return Submission.objects.create(
            assignment=assignment,
            project=project,
            item=item,
            expert=judge,
            rubric_version=rubric,
            answer=answer,
            seconds_spent=0,
            submitted_at=now,
            judge_version=judge_version[:100],
        )
