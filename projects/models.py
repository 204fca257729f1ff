"""Projects, rubrics, items, hidden gold, assignments and submissions.

Past 400 lines on purpose: Django's one models module per app, so the schema, its constraints
and the comments on them read in one place.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q


class TaskType(models.TextChoices):
    PAIRWISE = "pairwise", "Pairwise preference"
    RANKING = "ranking", "Ranking"
    RATING = "rating", "Rating"
    DEMONSTRATION = "demonstration", "Demonstration"
    CORRECTION = "correction", "Correction"


# How many responses an item of each task type carries (inclusive range).
RESPONSE_COUNTS: dict[str, tuple[int, int]] = {
    TaskType.PAIRWISE: (2, 2),
    TaskType.RANKING: (2, 8),
    TaskType.RATING: (1, 1),
    TaskType.DEMONSTRATION: (0, 0),
    TaskType.CORRECTION: (1, 1),
}
# Task types whose answers can be compared with a hidden gold answer.
GOLD_TASK_TYPES = frozenset({TaskType.PAIRWISE, TaskType.RANKING, TaskType.RATING})


class ProjectStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    PAUSED = "paused", "Paused"
    CLOSED = "closed", "Closed"


# The one place the project status machine is written down: draft -> open <-> paused -> closed
# (a draft or an open project may also be closed directly).
PROJECT_TRANSITIONS: dict[str, frozenset[str]] = {
    ProjectStatus.DRAFT: frozenset({ProjectStatus.OPEN, ProjectStatus.CLOSED}),
    ProjectStatus.OPEN: frozenset({ProjectStatus.PAUSED, ProjectStatus.CLOSED}),
    ProjectStatus.PAUSED: frozenset({ProjectStatus.OPEN, ProjectStatus.CLOSED}),
    ProjectStatus.CLOSED: frozenset(),
}


class ProjectPriority(models.TextChoices):
    """Who gets work first when work is scarce (projects/priority.py)."""

    NONE = "none", "First come"
    HEAVIEST_DIMENSION = "heaviest_dimension", "Strongest on the heaviest dimension"
    REPUTATION = "reputation", "Invited and proven experts first"


class PayUnit(models.TextChoices):
    TASK = "task", "Per task"
    HOUR = "hour", "Per hour"


class Project(models.Model):
    lab = models.ForeignKey("marketplace.Lab", on_delete=models.PROTECT, related_name="projects")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    domain = models.CharField(max_length=100, blank=True)
    task_type = models.CharField(max_length=16, choices=TaskType.choices)
    status = models.CharField(
        max_length=8, choices=ProjectStatus.choices, default=ProjectStatus.DRAFT, db_index=True
    )
    pay_unit = models.CharField(max_length=4, choices=PayUnit.choices, default=PayUnit.TASK)
    base_rate = models.BigIntegerField(help_text="minor units per task or per hour")
    currency = models.CharField(max_length=3, default="usd")
    redundancy = models.PositiveSmallIntegerField(default=3)
    max_redundancy = models.PositiveSmallIntegerField(default=3)
    gold_rate = models.FloatField(default=0.1)
    lease_minutes = models.PositiveIntegerField(default=30)
    budget = models.BigIntegerField(null=True, blank=True, help_text="minor units; a spending cap")
    # Percent of each label's base pay set aside from escrow at submit as a bonus pool, split at
    # release among the experts whose impact is distinguishable from zero (docs/MONEY.md,
    # "Bonuses"). 0 = no bonus.
    bonus_pool_percent = models.PositiveSmallIntegerField(default=0)
    # Per-task pay is earned at the pace of the project's trusted experts: a label submitted
    # in less than their median active time earns base x (its time / that median), so speed
    # never pays more per hour than care (docs/MONEY.md, "Pace").
    pace_adjusted = models.BooleanField(default=True)
    # A floor on effective hourly pay for released work (minor units per hour; none if null).
    hourly_floor = models.BigIntegerField(null=True, blank=True)
    # What a reviewer earns per decided review (minor units; 0 = reviews are unpaid).
    review_pay = models.BigIntegerField(default=0)
    # Routing: a new expert's first tasks in the project hold this many gold items at random
    # positions, so quality is known early.
    onboarding_gold = models.PositiveSmallIntegerField(default=5)
    # Gold that stays hidden: an item retires after this many exposures (0 = never), and a
    # gold answer's weight halves every `gold_half_life_days` (0 = no decay).
    gold_max_exposures = models.PositiveIntegerField(default=50)
    gold_half_life_days = models.PositiveSmallIntegerField(default=180)
    # Tiers per rubric dimension as well as overall (shown to the lab and the expert).
    tiers_by_dimension = models.BooleanField(default=False)
    # Who gets work first when more qualified experts than open tasks are waiting
    # (projects/priority.py): nobody first, or the experts strongest on the rubric's heaviest
    # dimension (their gold there, in the latest scoring run).
    priority = models.CharField(
        max_length=20, choices=ProjectPriority.choices, default=ProjectPriority.NONE
    )
    max_active_leases = models.PositiveSmallIntegerField(
        default=3, help_text="concurrent leases one expert may hold in this project"
    )
    # An item whose majority agreement after `redundancy` labels is below this gets one more
    # label at a time, up to `max_redundancy` (low-agreement escalation).
    agreement_threshold = models.FloatField(default=0.6)
    # Share of submissions sent to a reviewer (an expert with a `reviewer` certification in
    # one of the project's required skills). 0 = no review.
    review_rate = models.FloatField(default=0.0)
    # Live feed (issue 10): events whose model confidence falls in [low, high] go to experts;
    # outside it they are auto-accepted, and `feed_audit_rate` of those are still sampled for
    # an audit. Structured outputs that fail their schema become correction items in
    # `feed_correction_project` (this project when it is itself a correction project).
    feed_gray_low = models.FloatField(default=0.4)
    feed_gray_high = models.FloatField(default=0.8)
    feed_audit_rate = models.FloatField(default=0.0)
    # Gray-zone calibration (projects/calibration.py): the share of auto-accepted events the
    # lab tolerates being wrong, judged on the audit sample.
    feed_target_error_rate = models.FloatField(default=0.05)
    feed_correction_project = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # An automatic judge (a name in settings.AI_JUDGES) labels the project's items as one more
    # contributor, scored against gold and the humans like anyone. Its labels count toward
    # consensus and exports only when `ai_judge_counts` is on; it is never paid.
    ai_judge = models.CharField(max_length=50, blank=True)
    ai_judge_counts = models.BooleanField(default=False)
    # The capability the project was built from (its rubric, terms, exam and shared gold).
    capability = models.ForeignKey(
        "Capability", on_delete=models.PROTECT, null=True, blank=True, related_name="projects"
    )
    # When the lab was last told (webhook `project.budget_low`) that escrow runs low.
    budget_low_notified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(base_rate__gt=0), name="project_base_rate_positive"),
            models.CheckConstraint(
                condition=Q(redundancy__gte=1) & Q(max_redundancy__gte=models.F("redundancy")),
                name="project_redundancy_valid",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=1), name="project_gold_rate_0_1"
            ),
            models.CheckConstraint(
                condition=Q(budget__isnull=True) | Q(budget__gt=0), name="project_budget_positive"
            ),
            models.CheckConstraint(
                condition=Q(bonus_pool_percent__lte=100), name="project_bonus_pool_percent_max"
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["lab", "status"])]

    def __str__(self) -> str:
        return self.title


class ProjectRequiredSkill(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="required_skills")
    skill = models.ForeignKey("contributors.Skill", on_delete=models.PROTECT, related_name="+")
    min_level = models.PositiveSmallIntegerField(default=1)
    include_child_skills = models.BooleanField(default=False)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["project", "skill"], name="project_skill_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.skill} >= {self.min_level}"


class ProjectRequiredCertification(models.Model):
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="required_certifications"
    )
    skill = models.ForeignKey("contributors.Skill", on_delete=models.PROTECT, related_name="+")
    include_child_skills = models.BooleanField(default=False)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "skill"], name="project_certification_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"certified in {self.skill}"


class ProjectStatusChange(models.Model):
    """Who moved a project from one status to another, and when."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=8, choices=ProjectStatus.choices)
    to_status = models.CharField(max_length=8, choices=ProjectStatus.choices)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.project_id}: {self.from_status} -> {self.to_status}"


class RubricVersion(models.Model):
    """One immutable version of a project's rubric. A change is a new row, never an edit."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rubric_versions")
    number = models.PositiveIntegerField()
    instructions = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["project", "number"], name="rubric_version_unique"),
        ]

    def __str__(self) -> str:
        return f"rubric v{self.number} of project {self.project_id}"


class DimensionKind(models.TextChoices):
    LIKERT = "likert", "Likert scale"
    BINARY = "binary", "Yes / no"
    CHOICE = "choice", "One of several options"


class Dimension(models.Model):
    rubric_version = models.ForeignKey(
        RubricVersion, on_delete=models.CASCADE, related_name="dimensions"
    )
    position = models.PositiveSmallIntegerField()
    key = models.SlugField(max_length=64)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=8, choices=DimensionKind.choices)
    min_value = models.IntegerField(null=True, blank=True)
    max_value = models.IntegerField(null=True, blank=True)
    options = models.JSONField(default=list, blank=True)
    weight = models.FloatField(default=1.0)
    # Likert answers within this many steps of the reference agree (docs/SCORING.md section 1).
    tolerance = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering: ClassVar = ["position"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["rubric_version", "key"], name="dimension_key_unique"),
            models.CheckConstraint(condition=Q(weight__gt=0), name="dimension_weight_positive"),
        ]

    def __str__(self) -> str:
        return self.key


class ItemSplit(models.TextChoices):
    TRAIN = "train", "Train"
    EVAL = "eval", "Eval"


class ItemSource(models.TextChoices):
    BULK = "bulk", "Bulk import"
    LIVE = "live", "Live feed"


class Item(models.Model):
    # Experts only ever see `public_id`: random, so ids say nothing about kind or order.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    # NULL, not "": items without an external id must not collide in the unique constraint.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    prompt = models.TextField(blank=True)
    responses = models.JSONField(default=list)
    context = models.JSONField(default=dict, blank=True)
    features = models.JSONField(null=True, blank=True)
    split = models.CharField(max_length=5, choices=ItemSplit.choices, default=ItemSplit.TRAIN)
    source = models.CharField(max_length=4, choices=ItemSource.choices, default=ItemSource.BULK)
    # The production model that wrote the responses (live feed or import), for trends per
    # model version.
    model_version = models.CharField(max_length=100, blank=True, default="", db_default="")
    # Never serialized for experts; the answer itself lives in GoldAnswer.
    is_gold = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Routing counters, written only by the routing services under the item's row lock (never
    # by signals); `routing_verify` recomputes them from assignments.
    target_labels = models.PositiveSmallIntegerField(default=3)
    assigned_count = models.PositiveIntegerField(default=0, db_default=0)
    labels_count = models.PositiveIntegerField(default=0, db_default=0)
    is_open = models.BooleanField(default=True, db_default=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="item_external_id_unique_per_project"
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["project", "is_gold", "id"]),
            # The claim query: open items of a project, closest to completion first, then
            # oldest. Partial, so finished items cost nothing however many there are.
            models.Index(
                "project",
                models.F("assigned_count").desc(),
                "id",
                condition=Q(is_open=True, is_gold=False),
                name="item_claim_order",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id or str(self.public_id)


class CapabilityGold(models.Model):
    """A gold item shared by every project built on a capability: each project serves its own
    copy (an Item with a GoldAnswer pointing here), and exposures are counted here, across all
    of them, so gold one project's experts have seen retires in every project."""

    lab = models.ForeignKey("marketplace.Lab", on_delete=models.PROTECT, related_name="+")
    prompt = models.TextField(blank=True)
    responses = models.JSONField(default=list)
    context = models.JSONField(default=dict, blank=True)
    features = models.JSONField(null=True, blank=True)
    split = models.CharField(max_length=5, choices=ItemSplit.choices, default=ItemSplit.TRAIN)
    model_version = models.CharField(max_length=100, blank=True, default="")
    answer = models.JSONField()
    exposures = models.PositiveIntegerField(default=0)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"shared gold {self.pk}"


class Capability(models.Model):
    """A lab's reusable way of labelling: a project's rubric with its versions, instructions,
    pay terms and routing terms, requirements, the exams that certify for them (shared by
    reference), and its gold (shared, see CapabilityGold). Saved again under the same name, it
    becomes the next version; a version never changes once saved (publishing aside)."""

    lab = models.ForeignKey(
        "marketplace.Lab", on_delete=models.PROTECT, related_name="capabilities"
    )
    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField()
    description = models.TextField(blank=True)
    source_project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    task_type = models.CharField(max_length=16, choices=TaskType.choices)
    # Every version of the source project's rubric, oldest first, in the create body's shape
    # (`{"number", "instructions", "dimensions": [...]}`); the last one is current.
    rubric_versions = models.JSONField(default=list)
    instructions = models.TextField(blank=True)
    # `{"unit", "base_rate", "currency", "review_pay", "hourly_floor", "bonus_pool_percent",
    # "pace_adjusted"}` and the routing terms (redundancy, gold rate, leases, gold exposure).
    pay = models.JSONField(default=dict)
    terms = models.JSONField(default=dict)
    required_skills = models.JSONField(default=list)
    required_certifications = models.JSONField(default=list)
    exams = models.ManyToManyField("contributors.Exam", blank=True, related_name="+")
    gold = models.ManyToManyField(CapabilityGold, blank=True, related_name="capabilities")
    # In the marketplace's catalogue: other labs may build projects on it (without its gold).
    # Publishing gives it its own certification (a skill and an exam on it): other labs'
    # projects on it require that, so an expert certifies once for all of them.
    certification_exam = models.ForeignKey(
        "contributors.Exam", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    is_published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["lab", "name", "version"], name="capability_version_unique"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="capability_version_positive"),
            models.CheckConstraint(
                condition=Q(is_published=False) | Q(published_at__isnull=False),
                name="capability_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class GoldAnswer(models.Model):
    """The hidden answer of a gold item. Only scoring and lab-facing code read this table."""

    item = models.OneToOneField(
        Item, on_delete=models.CASCADE, primary_key=True, related_name="gold"
    )
    answer = models.JSONField()
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # How many times the item was served (a released or expired lease still showed it), and
    # when it stopped being served because that passed the project's `gold_max_exposures`.
    exposures = models.PositiveIntegerField(default=0)
    retired_at = models.DateTimeField(null=True, blank=True)
    # The capability gold this item is a copy of: exposures and retirement are counted there,
    # across every project sharing it.
    shared = models.ForeignKey(
        CapabilityGold, on_delete=models.PROTECT, null=True, blank=True, related_name="copies"
    )

    def __str__(self) -> str:
        return f"gold of item {self.item_id}"


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    EXPIRED = "expired", "Expired"
    RELEASED = "released", "Released"


class Assignment(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(
        max_length=9, choices=AssignmentStatus.choices, default=AssignmentStatus.ACTIVE
    )
    served_at = models.DateTimeField()
    leased_until = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # Escrow held back for this task at the highest tier multiplier while the lease runs.
    reserved_amount = models.BigIntegerField(default=0)
    # Hourly projects: the most active seconds this task can bill (the lease, and a multiple
    # of the project's median at claim time), what the reservation covered.
    billable_seconds_cap = models.PositiveIntegerField(default=0)

    class Meta:
        constraints: ClassVar = [
            # Blind redundancy: an expert is never given the same item twice.
            models.UniqueConstraint(fields=["item", "expert"], name="assignment_once_per_expert"),
        ]
        indexes: ClassVar = [models.Index(fields=["project", "status", "leased_until"])]

    def __str__(self) -> str:
        return f"assignment {self.public_id}"


class SubmissionStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Submission(models.Model):
    assignment = models.OneToOneField(
        Assignment, on_delete=models.PROTECT, related_name="submission"
    )
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="submissions")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="submissions")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="submissions"
    )
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="+")
    answer = models.JSONField()
    rationale = models.TextField(blank=True)
    seconds_spent = models.PositiveIntegerField()
    submitted_at = models.DateTimeField()
    status = models.CharField(
        max_length=8, choices=SubmissionStatus.choices, default=SubmissionStatus.ACCEPTED
    )
    # Fraud signals for scoring: the client's share of text pasted at once (optional), and the
    # server's own time between serving and submitting.
    pasted_share = models.FloatField(null=True, blank=True)
    # Optional on any label, asked for on bad cases: which rubric dimension the response
    # failed, and why (`{"dimension": key, "reason": text}`); the bad-case loop groups by it.
    blame = models.JSONField(null=True, blank=True)
    server_seconds = models.PositiveIntegerField(default=0)
    # The version of the AI judge that wrote an automatic label ("" for people).
    judge_version = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["project", "status", "id"]),
            models.Index(fields=["item", "status"]),
        ]

    def __str__(self) -> str:
        return f"submission {self.pk} of {self.assignment_id}"


class QualityStopStatus(models.TextChoices):
    STOPPED = "stopped", "Stopped: no more tasks, pending pay forfeited"
    APPEALED = "appealed", "Appealed: waiting for an admin"
    UPHELD = "upheld", "Upheld on appeal"
    REVERSED = "reversed", "Reversed on appeal: pay released, tasks again"


QUALITY_STOP_TRANSITIONS: dict[str, frozenset[str]] = {
    QualityStopStatus.STOPPED: frozenset({QualityStopStatus.APPEALED}),
    QualityStopStatus.APPEALED: frozenset({QualityStopStatus.UPHELD, QualityStopStatus.REVERSED}),
    QualityStopStatus.UPHELD: frozenset(),
    QualityStopStatus.REVERSED: frozenset(),
}


class QualityStop(models.Model):
    """An expert stopped on one project because their hidden gold answers showed, with stated
    confidence, work near chance or inverted (docs/SCORING.md, "Early stop"). While it stands
    the expert gets no task of the project; their pending pay there was forfeited to the
    project's escrow and their labels there no longer count. The expert may appeal once; an
    admin upholds or reverses it."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quality_stops")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quality_stops"
    )
    status = models.CharField(
        max_length=8, choices=QualityStopStatus.choices, default=QualityStopStatus.STOPPED
    )
    reason = models.CharField(max_length=500)
    # The test's evidence: which component, its counts, the likelihood ratio and threshold.
    evidence = models.JSONField(default=dict)
    tasks_done = models.PositiveIntegerField(default=0)
    forfeited = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    appeal = models.TextField(blank=True)
    appealed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision_note = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            # One stop per expert and project: a second detection adds nothing to the first.
            models.UniqueConstraint(fields=["project", "expert"], name="quality_stop_once"),
        ]

    def __str__(self) -> str:
        return f"{self.expert_id} stopped on project {self.project_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status != QualityStopStatus.REVERSED


class QualityEvidence(models.Model):
    """Where the early-stop gate's test stands for an expert on a project, after their latest
    gold answer: routing serves more gold to someone whose evidence leans toward chance (a
    positive log likelihood ratio), so the gate decides quickly, one way or the other."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    log_likelihood_ratio = models.FloatField(default=0.0)
    gold_answers = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["project", "expert"], name="quality_evidence_once"),
        ]

    def __str__(self) -> str:
        return f"{self.expert_id} on {self.project_id}: {self.log_likelihood_ratio:.2f}"


class ReviewStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a reviewer"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    FIXED = "fixed", "Fixed by the reviewer"


class Review(models.Model):
    """A sampled submission checked by a reviewer: accepted, rejected (re-queued, earning
    reversed) or fixed (the reviewer's answer kept beside the original)."""

    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="review")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=8, choices=ReviewStatus.choices, default=ReviewStatus.PENDING
    )
    reason = models.TextField(blank=True)
    fixed_answer = models.JSONField(null=True, blank=True)
    # Set when a rejected label's earning could not be taken back (it was already paid out).
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["project", "status", "id"])]

    def __str__(self) -> str:
        return f"review of submission {self.submission_id} ({self.status})"


class FeedDecision(models.TextChoices):
    PENDING = "pending", "Waiting to be routed"
    GRAY_ZONE = "gray_zone", "Gray zone: queued for experts"
    AUTO_ACCEPTED = "auto", "Auto-accepted"
    AUDIT = "audit", "Auto-accepted, sampled for audit"
    BAD_CASE = "bad_case", "Thumbs-down: bad case for experts"
    CORRECTION = "correction", "Failed its schema: correction item"
    UNROUTABLE = "unroutable", "Could not become an item here"


class FeedEvent(models.Model):
    """One production model output received on the live feed, stored before the request is
    answered (nothing accepted is lost) and routed by a Celery task."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="feed_events")
    # NULL, not "": events without an id never collide in the idempotency constraint.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    payload = models.JSONField()
    decision = models.CharField(
        max_length=10, choices=FeedDecision.choices, default=FeedDecision.PENDING
    )
    reason = models.CharField(max_length=500, blank=True)
    item = models.ForeignKey(
        Item, on_delete=models.SET_NULL, null=True, blank=True, related_name="feed_events"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    routed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="feed_event_idempotent_per_project"
            ),
        ]
        indexes: ClassVar = [
            models.Index(
                fields=["project", "id"],
                condition=Q(decision="pending"),
                name="feed_event_pending",
            ),
            models.Index(fields=["project", "decision"]),
        ]

    def __str__(self) -> str:
        return f"feed event {self.pk} ({self.decision})"


class ExportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    READY = "ready", "Ready to download"
    FAILED = "failed", "Failed"


class ExportJob(models.Model):
    """An export written to a file by a worker; `export.ready` tells the lab's webhooks."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    filters = models.JSONField()
    status = models.CharField(
        max_length=6, choices=ExportJobStatus.choices, default=ExportJobStatus.QUEUED
    )
    manifest = models.JSONField(null=True, blank=True)
    path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    # Progress: items scanned of the items to scan, written by the worker after each batch.
    items_total = models.PositiveIntegerField(null=True, blank=True)
    items_done = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"export {self.pk} of project {self.project_id} ({self.status})"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the expert"
    ACCEPTED = "accepted", "Accepted"


# The invitation status machine, in one place: an expert accepts once; nothing else moves it.
INVITATION_TRANSITIONS: dict[str, frozenset[str]] = {
    InvitationStatus.PENDING: frozenset({InvitationStatus.ACCEPTED}),
    InvitationStatus.ACCEPTED: frozenset(),
}


class ProjectInvitation(models.Model):
    """A lab asks one of the best experts of a past project to work on a new one. The lab sees
    the expert's pseudonym and the evidence it was chosen on, never who they are; the expert
    sees the project and accepts. Accepted invitees get the project's scarce work first when
    its priority is `reputation` (projects/priority.py)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_invitations"
    )
    from_project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rank = models.PositiveIntegerField(help_text="1 = the best of the past project")
    # What the choice rested on, from the past project's latest scoring run (composite, gold,
    # agreement, labels, tier): shown to the lab beside the pseudonym.
    evidence = models.JSONField(default=dict)
    status = models.CharField(
        max_length=8, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["project", "expert"], name="invitation_once"),
            models.CheckConstraint(
                condition=Q(status="pending", accepted_at__isnull=True)
                | Q(status="accepted", accepted_at__isnull=False),
                name="invitation_accepted_has_date",
            ),
        ]
        indexes: ClassVar = [models.Index(fields=["expert", "status"])]

    def __str__(self) -> str:
        return f"invitation of {self.expert_id} to {self.project_id} ({self.status})"


class RelabelReason(models.TextChoices):
    AFFECTED = "affected", "Produced the bad case"
    SIMILAR = "similar", "Similar to an affected item"


class RelabelBatchStatus(models.TextChoices):
    RELABELLING = "relabelling", "Waiting for new labels"
    SCORING = "scoring", "Re-labelled; a scoring run was started"


# relabelling -> scoring, once (projects/relabel.py); "done" is read from the scoring run.
RELABEL_BATCH_TRANSITIONS: dict[str, frozenset[str]] = {
    RelabelBatchStatus.RELABELLING: frozenset({RelabelBatchStatus.SCORING}),
    RelabelBatchStatus.SCORING: frozenset(),
}


class RelabelBatch(models.Model):
    """The bad-case loop closed: after a promotion (a new rubric dimension or new gold), the
    items that produced the bad cases and a sample of similar ones are labelled again under
    the rubric version in force, then scored, so the lab sees whether the fix worked."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="relabel_batches")
    promotion = models.CharField(
        max_length=9, choices=[("dimension", "New dimension"), ("gold", "New gold")]
    )
    # The promoted dimension's key ("" for gold).
    dimension = models.CharField(max_length=64, blank=True)
    rubric_version = models.ForeignKey(RubricVersion, on_delete=models.PROTECT, related_name="+")
    # New counted labels each item needs under `rubric_version`.
    labels_per_item = models.PositiveSmallIntegerField()
    status = models.CharField(
        max_length=11, choices=RelabelBatchStatus.choices, default=RelabelBatchStatus.RELABELLING
    )
    # The scoring run started when every item had its new labels; an id, not a foreign key,
    # because scoring sits above projects in the app order.
    scoring_run_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    relabelled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"relabel batch {self.pk} of project {self.project_id} ({self.status})"


class RelabelBatchItem(models.Model):
    batch = models.ForeignKey(RelabelBatch, on_delete=models.CASCADE, related_name="entries")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=8, choices=RelabelReason.choices)
    # Cosine similarity to the nearest affected item (1.0 for the affected ones).
    similarity = models.FloatField(default=1.0)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["batch", "item"], name="relabel_batch_item_once"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} in batch {self.batch_id} ({self.reason})"
