"""The review workflow: a sample of submissions is checked by reviewers, who accept, reject
(the item is re-queued for a new label and the earning reversed) or fix the answer."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from contributors import eligibility
from contributors.models import Certification, CertificationRole
from marketplace.errors import Conflict, DomainError, DomainValidationError
from marketplace.models import User
from payouts.services.earnings import earning_reverse, review_pay_book, review_pay_reserve
from projects.answers import dimension_specs, validate_answer
from projects.models import Item, Project, ProjectStatus, Review, ReviewStatus, Submission

_random = random.SystemRandom()
# A claimed review not decided within this time goes back to the queue.
REVIEW_LEASE = timedelta(minutes=30)


class NotAReviewer(DomainError):
    status_code = 403
    default_code = "not_a_reviewer"


def review_maybe_sample(*, submission: Submission) -> Review | None:
    """Called in the submit transaction: sample non-gold labels at the project's review rate."""
    project = submission.project
    if project.review_rate <= 0 or submission.item.is_gold:
        return None
    if _random.random() >= project.review_rate:
        return None
    review = Review.objects.create(submission=submission, project=project)

    review_pay_reserve(review=review)
    return review


def _reviewable_skill_keys(project: Project) -> set[str]:
    keys = {row.skill.key for row in project.required_skills.all()}
    keys |= {row.skill.key for row in project.required_certifications.all()}
    return keys or ({project.domain} if project.domain else set())


def reviewer_is_qualified(*, reviewer: User, project: Project) -> bool:
    """An active `reviewer` certification in one of the project's skills (or a parent)."""
    qualifications = eligibility.expert_qualifications(expert=reviewer)
    if qualifications.is_suspended:
        return False
    keys = _reviewable_skill_keys(project)
    now = timezone.now()
    held = Certification.objects.filter(
        user=reviewer, role=CertificationRole.REVIEWER, revoked_at__isnull=True, expires_at__gt=now
    ).values_list("skill__key", flat=True)
    return any(
        required == skill or required.startswith(f"{skill}.") for skill in held for required in keys
    )


def review_claim(*, reviewer: User, project: Project) -> Review | None:
    if project.status != ProjectStatus.OPEN or not reviewer_is_qualified(
        reviewer=reviewer, project=project
    ):
        raise NotAReviewer("You need a reviewer certification for this project's skills.")
    stale = timezone.now() - REVIEW_LEASE
    with transaction.atomic():
        candidates = (
            Review.objects.filter(project=project, status=ReviewStatus.PENDING)
            .filter(Q(reviewer__isnull=True) | Q(claimed_at__lt=stale) | Q(reviewer=reviewer))
            .exclude(submission__expert=reviewer)
            .order_by("id")
        )
        for review in candidates[:20]:
            # Compare-and-swap: two reviewers never take the same review.
            taken = Review.objects.filter(
                Q(reviewer__isnull=True) | Q(claimed_at__lt=stale) | Q(reviewer=reviewer),
                pk=review.pk,
                status=ReviewStatus.PENDING,
            ).update(reviewer=reviewer, claimed_at=timezone.now())
            if taken:
                return Review.objects.select_related(
                    "submission__item", "submission__rubric_version", "project"
                ).get(pk=review.pk)
    return None


def review_decide(
    *,
    review: Review,
    reviewer: User,
    decision: str,
    reason: str,
    fixed_answer: dict[str, Any] | None = None,
) -> Review:
    submission = review.submission
    normalised = None
    if decision == ReviewStatus.FIXED:
        normalised, problems = validate_answer(
            task_type=review.project.task_type,
            dimensions=dimension_specs(submission.rubric_version.dimensions.all()),
            response_count=len(submission.item.responses),
            answer=fixed_answer,
            require_all_dimensions=True,
        )
        if problems:
            raise DomainValidationError(
                {f"answer.{path}" if path else "answer": m for path, m in problems}
            )
    if decision == ReviewStatus.REJECTED and not reason.strip():
        raise DomainValidationError({"reason": "A rejection needs a reason."})
    with transaction.atomic():
        locked = Review.objects.select_for_update().get(pk=review.pk)
        if locked.status != ReviewStatus.PENDING or locked.reviewer_id != reviewer.pk:
            raise Conflict("This review is not yours to decide (any more).", code="not_claimed")
        locked.status = decision
        locked.reason = reason
        locked.fixed_answer = normalised
        locked.decided_at = timezone.now()
        if decision == ReviewStatus.REJECTED:
            locked.note = _reject_submission(submission)
        locked.save()

        review_pay_book(review=locked)
    return locked


def _reject_submission(submission: Submission) -> str:
    """Re-queue the item for a new label and take the earning back (if still unpaid): the
    payouts app books the money (`earning_reverse`)."""

    item = Item.objects.select_for_update().get(pk=submission.item_id)
    Submission.objects.filter(pk=submission.pk).update(status="rejected")
    item.labels_count = max(item.labels_count - 1, 0)
    item.assigned_count = max(item.assigned_count - 1, 0)
    item.is_open = item.assigned_count < item.target_labels
    item.save(update_fields=["labels_count", "assigned_count", "is_open"])
    return earning_reverse(submission=submission)
