"""Work routing services: claim a task, release it, expire leases, submit an answer.

Counters on Item (`assigned_count` = submitted labels + active leases, `labels_count`,
`target_labels`, `is_open`) are written only here, each under the item's row lock, in the same
transaction as the assignment change that moves them.

Concurrency: a claim locks one candidate item with `FOR UPDATE SKIP LOCKED LIMIT 1` over the
partial index `item_claim_order`, so many experts claiming at once get different items, never
exceed redundancy, and never wait on each other. SQLite (the embedded demo) has no row locks;
its writers are serialised by the database (IMMEDIATE transactions), which gives the same
guarantees more slowly.

Past 400 lines on purpose: claim, release, expiry and submit share one lock order and the
races commented here; one file keeps that order readable.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from contributors import eligibility
from contributors.models import ExpertProfile
from marketplace.errors import Conflict, DomainError, DomainValidationError, Gone
from marketplace.models import User
from marketplace.webhooks import webhook_emit
from payouts.services import earning_book
from payouts.services.earnings import billable_seconds_cap
from projects.answers import dimension_specs, validate_answer
from projects.models import (
    Assignment,
    AssignmentStatus,
    CapabilityGold,
    GoldAnswer,
    Item,
    ItemSplit,
    PayUnit,
    Project,
    ProjectStatus,
    RubricVersion,
    Submission,
    TaskType,
)
from projects.priority import yields_to_stronger
from projects.reviews import review_maybe_sample
from projects.selectors import project_list_for_expert
from projects.work_config import (
    funds_left,
    money_and_leases,
    project_funds_left,
    rubric_version,
    task_price_ceiling,
    work_config,
)
from scoring.services.gate import quality_gate_check

# Gold draws come from a CSPRNG: an expert must not be able to predict which task is gold.
_random = random.SystemRandom()
# Below this many task prices of headroom, claims on a project serialise on its row so the
# last funds are never over-reserved; above it, they run in parallel.
BUDGET_LOCK_HEADROOM_TASKS = 64
# Gold rate while an expert's gold evidence leans toward chance (see `_serves_gold`).
SUSPICIOUS_GOLD_RATE = 0.5


# Per process: when each project's expired leases were last swept at claim time.
_last_lease_sweep: dict[int, float] = {}


class NotQualified(DomainError):
    status_code = 403
    default_code = "not_qualified"


@dataclass(frozen=True)
class Claim:
    assignment: Assignment
    rubric: RubricVersion


def _sweep_expired_leases(project: Project) -> None:
    """The lazy half of lease expiry (the beat task is the other): at most once per
    ROUTING_LEASE_SWEEP_SECONDS per project and process, not one query on every claim."""
    now = time.monotonic()
    last = _last_lease_sweep.get(project.pk, float("-inf"))
    if now - last < settings.ROUTING_LEASE_SWEEP_SECONDS:
        return
    _last_lease_sweep[project.pk] = now
    leases_expire(project=project)


def leases_expire(*, project: Project | None = None, now: Any = None) -> int:
    """Return expired leases to the pool: free the item slot and the budget reservation."""
    now = now or timezone.now()
    expired = Assignment.objects.filter(status=AssignmentStatus.ACTIVE, leased_until__lt=now)
    if project is not None:
        expired = expired.filter(project=project)
    count = 0
    for assignment_id in expired.values_list("pk", flat=True)[:1000]:
        with transaction.atomic():
            if _end_assignment(assignment_id, AssignmentStatus.EXPIRED, now):
                count += 1
    return count


def _end_assignment(assignment_id: int, status: str, now: Any) -> bool:
    """active -> expired | released, giving the item slot back (compare-and-swap)."""
    assignment = Assignment.objects.filter(pk=assignment_id).only("item_id").first()
    if assignment is None:
        return False
    # Lock the item first (the claim path's order: item, then assignment), then swap.
    item = Item.objects.select_for_update().get(pk=assignment.item_id)
    changed = Assignment.objects.filter(pk=assignment_id, status=AssignmentStatus.ACTIVE).update(
        status=status, ended_at=now
    )
    if not changed:
        return False
    item.assigned_count = max(item.assigned_count - 1, 0)
    item.is_open = item.assigned_count < item.target_labels
    item.save(update_fields=["assigned_count", "is_open"])
    return True


def _candidate_item(project: Project, expert: User) -> Item | None:
    """Lock the best open non-gold item this expert has never been given (or None)."""
    never_given = ~Q(assignments__expert=expert)
    candidates = (
        Item.objects.filter(project=project, is_gold=False, is_open=True)
        .filter(never_given)
        .order_by("-assigned_count", "id")
    )
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    return candidates.first()


def _gold_item(project: Project, expert: User) -> Item | None:
    """A gold item this expert has not seen, the least exposed first (gold is not bounded by
    redundancy: everyone may answer it). Retired gold (past the project's exposure limit) and
    the lab's eval-only pairs (`split` eval) are never served."""
    # Gold shared with other projects through a capability: never one the expert saw in any
    # of them (a copy is the same question), and the least exposed across them first.
    return (
        Item.objects.filter(
            project=project, is_gold=True, split=ItemSplit.TRAIN, gold__retired_at__isnull=True
        )
        .filter(~Q(assignments__expert=expert))
        .exclude(gold__shared__copies__item__assignments__expert=expert)
        .annotate(shared_gold_id=F("gold__shared_id"))
        .order_by(Coalesce("gold__shared__exposures", "gold__exposures"), "id")
        .first()
    )


def _serves_gold(project: Project, served: int, gold_served: int, suspicious: bool) -> bool:
    """Whether this claim is a gold check. A new expert's first 2 x `onboarding_gold` tasks hold
    `onboarding_gold` gold items at uniformly random positions (each task is gold with
    probability gold still owed / tasks left in the window, so the count is exact and no
    position is predictable); after that, each task is gold with probability `gold_rate`, or
    SUSPICIOUS_GOLD_RATE while the expert's gold evidence leans toward chance (the gate then
    decides within a few tasks instead of waiting for the project's rate)."""
    window = 2 * project.onboarding_gold
    if served < window:
        owed = project.onboarding_gold - gold_served
        return owed > 0 and _random.random() < owed / (window - served)
    rate = max(project.gold_rate, SUSPICIOUS_GOLD_RATE) if suspicious else project.gold_rate
    return _random.random() < rate


def _expose_gold(project: Project, item: Item, now: Any) -> None:
    """Count an exposure; retire the item once it passes the project's limit (gold that
    everyone has seen is gold no more)."""
    GoldAnswer.objects.filter(pk=item.pk).update(exposures=F("exposures") + 1)
    if project.gold_max_exposures:
        GoldAnswer.objects.filter(
            pk=item.pk, exposures__gte=project.gold_max_exposures, retired_at__isnull=True
        ).update(retired_at=now)
    shared_gold_id = getattr(item, "shared_gold_id", None)
    if shared_gold_id is None:
        return
    # Shared gold counts every project's exposures on one row (a plain increment: two claims
    # in two projects both count, each holding that row's lock only until its commit). Once
    # the total passes this project's limit, every copy retires, in every project; a claim in
    # another project that read the copy as active just before still serves it once.
    shared = CapabilityGold.objects.filter(pk=shared_gold_id)
    shared.update(exposures=F("exposures") + 1)
    if project.gold_max_exposures:
        worn = shared.filter(exposures__gte=project.gold_max_exposures, retired_at__isnull=True)
        GoldAnswer.objects.filter(shared__in=worn.values("pk"), retired_at__isnull=True).update(
            retired_at=now
        )
        CapabilityGold.objects.filter(pk__in=worn.values("pk")).update(retired_at=now)


def assignment_claim(*, expert: User, project: Project) -> Claim | None:
    """Lease the next task of a project to an expert, or None when nothing is available.

    Raises NotQualified when the expert may not work on the project right now (skills,
    certifications, suspension, lease cap), checked at every claim.
    """
    if project.status != ProjectStatus.OPEN:
        raise NotQualified("This project is not open.")
    config = work_config(project)
    _sweep_expired_leases(project)
    cap_seconds = _billable_cap(project)
    price = task_price_ceiling(project, cap_seconds)
    now = timezone.now()
    with transaction.atomic():
        _lease_commit_without_flush()
        # One expert's claims run one at a time (lock order: expert profile, project, item).
        # Without it, two concurrent claims of the same expert could both pass the lease cap,
        # and both pick the same item: PostgreSQL re-checks a row locked after a concurrent
        # commit, but not the "never given to this expert" subquery's snapshot.
        profile = _locked_profile(expert)
        qualifications = eligibility.expert_qualifications(expert=expert, at=now, profile=profile)
        if not eligibility.requirements_met(
            qualifications, config.required_skills, config.required_certifications
        ):
            raise NotQualified("You do not meet this project's requirements right now.")
        rubric = config.rubric
        if rubric is None:
            return None
        mine = money_and_leases(project, expert)
        if mine["stopped"]:
            raise NotQualified(
                "You were stopped on this project by its hidden quality checks; your earnings "
                "page shows the evidence and how to appeal.",
                code="quality_stopped",
            )
        active = mine["active"]
        if active >= project.max_active_leases:
            raise NotQualified(
                f"You already hold {active} tasks in this project (the limit is "
                f"{project.max_active_leases}). Submit or release one first."
            )
        headroom = funds_left(project, mine)
        if headroom < price * BUDGET_LOCK_HEADROOM_TASKS:
            # Near the end of the money: serialise on the project row and look again.
            Project.objects.select_for_update().get(pk=project.pk)
            headroom = project_funds_left(project)
        if headroom < price:
            return None
        if yields_to_stronger(project=project, expert=expert, config=config):
            return None
        want_gold = _serves_gold(
            project, mine["served"], mine["gold_served"], bool(mine["suspicious"])
        )
        item = None
        if want_gold:
            item = _gold_item(project, expert)
            if item is not None and not _candidate_exists(project, expert):
                item = None  # the project is done: never serve gold alone
        if item is None:
            item = _candidate_item(project, expert)
        if item is None:
            return None
        assignment = Assignment.objects.create(
            project=project,
            item=item,
            expert=expert,
            rubric_version=rubric,
            served_at=now,
            leased_until=now + timedelta(minutes=project.lease_minutes),
            reserved_amount=price,
            billable_seconds_cap=cap_seconds,
        )
        if item.is_gold:
            # Gold is not bounded by redundancy and not row-locked: a plain increment.
            Item.objects.filter(pk=item.pk).update(assigned_count=F("assigned_count") + 1)
            _expose_gold(project, item, now)
        else:
            # `item` is locked (or the SQLite writer lock is held): its counters are current.
            Item.objects.filter(pk=item.pk).update(
                assigned_count=item.assigned_count + 1,
                is_open=item.assigned_count + 1 < item.target_labels,
            )
    return Claim(assignment=assignment, rubric=rubric)


def _billable_cap(project: Project) -> int:
    """Hourly projects: the most active seconds a task may bill (the lease, and a multiple of
    the project's median once known); per-task projects: the lease (for pay per hour shown)."""
    if project.pay_unit != PayUnit.HOUR:
        return int(project.lease_minutes) * 60

    return billable_seconds_cap(project)


def _lease_commit_without_flush() -> None:
    """A claim's commit does not wait for PostgreSQL to flush its WAL to disk (one fsync per
    claim was most of a claim's time here). Only a crash of PostgreSQL itself within a fraction
    of a second could forget the lease, which returns the item to the pool; the expert's submit
    then answers 404. Submits, which record labels and money, keep the durable commit (and
    flush any earlier lease with their own)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _locked_profile(expert: User) -> ExpertProfile:
    profile = ExpertProfile.objects.select_for_update().filter(user=expert).first()
    if profile is None:
        ExpertProfile.objects.get_or_create(user=expert)
        profile = ExpertProfile.objects.select_for_update().get(user=expert)
    return profile


def _candidate_exists(project: Project, expert: User) -> bool:
    return (
        Item.objects.filter(project=project, is_gold=False, is_open=True)
        .filter(~Q(assignments__expert=expert))
        .exists()
    )


def qualified_projects_ranked(*, expert: User) -> list[Project]:
    """Projects the expert may claim in, best fit and best paid first."""

    qualifications = eligibility.expert_qualifications(expert=expert)

    def fit(project: Project) -> tuple[int, int]:
        margin = sum(
            qualifications.skill_levels.get(requirement.skill.key, 0) - requirement.min_level
            for requirement in project.required_skills.all()
        )
        return (-margin, -int(project.base_rate))

    return sorted(project_list_for_expert(expert=expert), key=fit)


def assignment_claim_any(*, expert: User) -> Claim | None:
    for project in qualified_projects_ranked(expert=expert):
        try:
            claim = assignment_claim(expert=expert, project=project)
        except NotQualified:
            continue
        if claim is not None:
            return claim
    return None


def assignment_release(*, assignment: Assignment) -> None:
    with transaction.atomic():
        if not _end_assignment(assignment.pk, AssignmentStatus.RELEASED, timezone.now()):
            raise Conflict("This task is no longer yours to release.", code="not_active")


def _majority_share(answers: list[dict[str, Any]], task_type: str) -> float | None:
    if task_type == TaskType.PAIRWISE:
        values = [answer.get("preference") for answer in answers]
    elif task_type == TaskType.RANKING:
        values = [tuple(answer.get("ranking") or ()) for answer in answers]
    else:
        return None
    if not values:
        return None
    top = max(values.count(value) for value in set(values))
    return top / len(values)


def assignment_submit(
    *,
    assignment: Assignment,
    answer: dict[str, Any],
    rationale: str,
    seconds_spent: int,
    pasted_share: float | None = None,
    blame: dict[str, Any] | None = None,
) -> Submission:
    """Validate against the version served, record the label, book the base earning.

    A second submit is 409 (also when two arrive at once: the assignment row is locked and
    re-read); after the lease ended it is 410.
    """

    now = timezone.now()
    item = assignment.item
    project = assignment.project
    rubric = rubric_version(assignment.rubric_version_id)
    normalised, problems = validate_answer(
        task_type=project.task_type,
        dimensions=dimension_specs(rubric.dimensions.all()),
        response_count=len(item.responses),
        answer=answer,
        require_all_dimensions=True,
    )
    if blame is not None:
        keys = {dimension.key for dimension in rubric.dimensions.all()}
        if blame.get("dimension") not in keys:
            problems.append(("blame.dimension", f"must be one of {sorted(keys)}"))
        if not isinstance(blame.get("reason", ""), str) or len(blame.get("reason", "")) > 500:
            problems.append(("blame.reason", "text up to 500 characters"))
    if problems:
        raise DomainValidationError({path or "answer": message for path, message in problems})

    with transaction.atomic():
        locked_item = Item.objects.select_for_update().get(pk=item.pk)
        locked = Assignment.objects.select_for_update().get(pk=assignment.pk)
        if locked.status == AssignmentStatus.SUBMITTED:
            raise Conflict("This task was already submitted.", code="already_submitted")
        if locked.status != AssignmentStatus.ACTIVE or now > locked.leased_until:
            raise Gone("The lease on this task has ended.", code="lease_ended")
        Assignment.objects.filter(pk=locked.pk).update(
            status=AssignmentStatus.SUBMITTED, ended_at=now
        )
        submission = Submission.objects.create(
            assignment=locked,
            project=project,
            item=locked_item,
            expert=assignment.expert,  # the same row as locked's (loaded by the caller)
            rubric_version=rubric,
            answer=normalised,
            rationale=rationale,
            seconds_spent=seconds_spent,
            submitted_at=now,
            pasted_share=pasted_share,
            blame=None
            if blame is None
            else {"dimension": blame["dimension"], "reason": blame.get("reason", "")},
            server_seconds=max(int((now - locked.served_at).total_seconds()), 0),
        )
        locked_item.labels_count += 1
        if not locked_item.is_gold and locked_item.labels_count >= locked_item.target_labels:
            _maybe_escalate(project, locked_item)
        locked_item.is_open = locked_item.is_gold or (
            locked_item.assigned_count < locked_item.target_labels
        )
        locked_item.save(update_fields=["labels_count", "target_labels", "is_open"])
        if not locked_item.is_gold and locked_item.labels_count == locked_item.target_labels:
            webhook_emit(
                lab_id=project.lab_id,
                event_type="item.completed",
                data={
                    "project": project.pk,
                    "item": str(locked_item.public_id),
                    "external_id": locked_item.external_id,
                    "labels": locked_item.labels_count,
                },
            )
        earning_book(submission=submission, cap_seconds=locked.billable_seconds_cap)

        review_maybe_sample(submission=submission)
        if locked_item.is_gold:
            quality_gate_check(submission=submission)
    return submission


def _maybe_escalate(project: Project, item: Item) -> None:
    """Low agreement after the planned labels: ask for one more, up to max_redundancy."""
    if item.target_labels >= project.max_redundancy:
        return
    answers = list(
        Submission.objects.filter(item=item, status="accepted").values_list("answer", flat=True)
    )
    share = _majority_share(answers, project.task_type)
    if share is not None and share < project.agreement_threshold:
        item.target_labels += 1


def routing_verify(*, project: Project) -> list[dict[str, Any]]:
    """Recompute every item's counters from assignments and list any difference."""
    counts = (
        Assignment.objects.filter(project=project)
        .values("item_id")
        .annotate(
            active=Count("id", filter=Q(status=AssignmentStatus.ACTIVE)),
            # A label a reviewer rejected no longer counts: its slot went back to the pool.
            submitted=Count(
                "id",
                filter=Q(status=AssignmentStatus.SUBMITTED, submission__status="accepted"),
            ),
        )
    )
    by_item = {row["item_id"]: row for row in counts}
    differences = []
    for item in Item.objects.filter(project=project).only(
        "id", "assigned_count", "labels_count", "is_gold"
    ):
        row = by_item.get(item.pk, {"active": 0, "submitted": 0})
        if (
            item.assigned_count != row["active"] + row["submitted"]
            or item.labels_count != row["submitted"]
        ):
            differences.append(
                {
                    "item": item.pk,
                    "assigned_count": item.assigned_count,
                    "labels_count": item.labels_count,
                    "active": row["active"],
                    "submitted": row["submitted"],
                }
            )
    return differences
