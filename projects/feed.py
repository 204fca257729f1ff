"""The live feed (issue 10): production model outputs in, routed to experts or auto-accepted.

The request path only validates (plain Python) and stores the events, one INSERT for a batch,
so it stays fast; routing (items, bad cases, schema checks, audit sampling) runs in a Celery
task. Idempotent by `external_id` per project: a unique constraint decides, so concurrent
duplicates never create two events or two items.

Past 400 lines on purpose: the live feed's validation, routing decision and audit share
one batch transaction.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from marketplace import safejson
from marketplace.errors import Conflict, DomainError
from projects.models import (
    RESPONSE_COUNTS,
    FeedDecision,
    FeedEvent,
    Item,
    ItemSource,
    Project,
    ProjectStatus,
    TaskType,
)

MAX_BATCH = 1000
MAX_TEXT = 100_000
FEEDBACK_RATINGS = ("up", "down")
EVENT_FIELDS = frozenset(
    {
        "external_id",
        "prompt",
        "response",
        "responses",
        "model_confidence",
        "model_version",
        "user_feedback",
        "schema",
        "context",
    }
)
_audit_random = random.SystemRandom()
logger = logging.getLogger(__name__)


class FeedOverloaded(DomainError):
    status_code = 429
    default_code = "feed_overloaded"


@dataclass(frozen=True)
class FeedReceipt:
    # Two requests racing with the same new external_id both count it as accepted; the
    # unique constraint stores it once and it is routed once.
    accepted: int
    duplicates: int


def _problem(index: int, path: str, message: str) -> dict[str, Any]:
    return {"index": index, "field": path, "message": message}


def _check_event(index: int, event: Any) -> list[dict[str, Any]]:
    if not isinstance(event, dict):
        return [_problem(index, "", "an event is a JSON object")]
    problems = [
        _problem(index, key, f"unknown field '{key}'") for key in event if key not in EVENT_FIELDS
    ]
    prompt = event.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_TEXT:
        problems.append(_problem(index, "prompt", "non-empty text up to 100,000 characters"))
    has_one, has_many = "response" in event, "responses" in event
    if has_one == has_many:
        problems.append(_problem(index, "response", "give either `response` or `responses`"))
    elif has_one and not isinstance(event["response"], str):
        problems.append(_problem(index, "response", "text"))
    elif has_many and (
        not isinstance(event["responses"], list)
        or not 1 <= len(event["responses"]) <= 8
        or not all(isinstance(text, str) for text in event["responses"])
    ):
        problems.append(_problem(index, "responses", "a list of 1 to 8 texts"))
    confidence = event.get("model_confidence")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not math.isfinite(confidence)
        or not 0.0 <= confidence <= 1.0
    ):
        problems.append(_problem(index, "model_confidence", "a number in [0, 1]"))
    external_id = event.get("external_id")
    if external_id is not None and (
        not isinstance(external_id, str) or not 0 < len(external_id) <= 255
    ):
        problems.append(_problem(index, "external_id", "text of 1 to 255 characters"))
    version = event.get("model_version", "")
    if not isinstance(version, str) or len(version) > 100:
        problems.append(_problem(index, "model_version", "text up to 100 characters"))
    feedback = event.get("user_feedback")
    if feedback is not None:
        if not isinstance(feedback, dict) or feedback.get("rating") not in FEEDBACK_RATINGS:
            problems.append(_problem(index, "user_feedback.rating", "'up' or 'down'"))
        elif not isinstance(feedback.get("comment", ""), str):
            problems.append(_problem(index, "user_feedback.comment", "text"))
    for name in ("schema", "context"):
        if name in event and not isinstance(event[name], dict):
            problems.append(_problem(index, name, "a JSON object"))
    return problems


def _backlog(project: Project) -> int:
    """Events waiting to be routed, counted at most once a second per project: counting a deep
    backlog on every request would cost more than storing the event."""

    key = f"feed-backlog:{project.pk}"
    backlog = cache.get(key)
    if backlog is None:
        backlog = FeedEvent.objects.filter(project=project, decision=FeedDecision.PENDING).count()
        cache.set(key, backlog, timeout=1)
    return int(backlog)


def _backlog_add(project_id: int, count: int) -> None:
    # Not cached (ValueError): the next request counts afresh.
    with contextlib.suppress(ValueError):
        cache.incr(f"feed-backlog:{project_id}", count)


def feed_accept(*, project: Project, events: list[Any]) -> FeedReceipt:
    """Validate a batch (all or nothing) and store it; routing is queued for after commit."""
    if project.status == ProjectStatus.CLOSED:
        raise Conflict("The project is closed.", code="project_closed")
    if not 1 <= len(events) <= MAX_BATCH:
        raise DomainError(f"Send 1 to {MAX_BATCH} events.", code="invalid_batch")
    problems = [
        problem for index, event in enumerate(events) for problem in _check_event(index, event)
    ]
    if problems:
        raise DomainError(
            f"{len(problems)} problem(s) in the events; nothing was accepted.",
            code="invalid_events",
            details=problems,
        )
    if _backlog(project) + len(events) > settings.FEED_MAX_BACKLOG:
        raise FeedOverloaded(
            "The feed is behind; retry shortly. Nothing from this request was accepted.",
            details={"retry_after": settings.FEED_RETRY_AFTER_SECONDS},
        )
    ids = [event.get("external_id") for event in events]
    with transaction.atomic():
        known = set(
            FeedEvent.objects.filter(
                project=project, external_id__in=[i for i in ids if i is not None]
            ).values_list("external_id", flat=True)
        )
        fresh, seen = [], set()
        for event, external_id in zip(events, ids, strict=True):
            if external_id is not None and (external_id in known or external_id in seen):
                continue
            seen.add(external_id)
            fresh.append(FeedEvent(project=project, external_id=external_id, payload=event))
        # A concurrent request with the same ids loses at the constraint, silently.
        created = FeedEvent.objects.bulk_create(fresh, ignore_conflicts=True)
        transaction.on_commit(lambda: _queue_routing(project.pk))
        transaction.on_commit(lambda: _backlog_add(project.pk, len(created)))
    return FeedReceipt(accepted=len(created), duplicates=len(events) - len(fresh))


def _queue_routing(project_id: int) -> None:
    """Route what this request accepted.

    With a broker, routing is queued at most once a second per project: at 1,000 events/s one
    task routes a second's worth in a chunk instead of a thousand tasks fighting over the same
    rows (the beat task `feed_route_pending_task` catches anything left behind). Without one
    (the embedded default) there is no worker and no beat to catch anything: every accepted
    batch is routed here, in-process, right after its commit.
    """

    # Cycle broken here: tasks.py wraps this module's services.
    from projects.tasks import feed_route_task  # noqa: PLC0415

    if feed_route_task.app.conf.task_always_eager:
        try:
            feed_route(project_id=project_id)
        except Exception:
            # The events are stored and acknowledged; a routing failure must not turn that
            # into a 500. They stay pending and the next accepted batch routes them.
            logger.exception("feed routing failed for project %s", project_id)
        return
    window = settings.FEED_ROUTE_QUEUE_SECONDS
    if cache.add(f"feed-route-queued:{project_id}", 1, timeout=window):
        feed_route_task.delay(project_id)


def feed_route_all_pending() -> int:
    project_ids = (
        FeedEvent.objects.filter(decision=FeedDecision.PENDING)
        .values_list("project_id", flat=True)
        .distinct()
    )
    return sum(feed_route(project_id=project_id) for project_id in list(project_ids))


def _responses(payload: dict[str, Any]) -> list[str]:
    return [payload["response"]] if "response" in payload else list(payload["responses"])


def _schema_errors(payload: dict[str, Any]) -> list[str]:
    """Problems of a structured output against its JSON Schema (empty when it conforms)."""

    schema = payload.get("schema")
    if not schema:
        return []
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        return [f"the schema itself is invalid: {error.message}"]
    text = _responses(payload)[0]
    try:
        # The output is model text: as deep or as odd as a client's body could be.
        document = safejson.loads(text)
    except ValueError as error:
        return [f"not JSON: {error}"]
    validator = Draft202012Validator(schema)
    try:
        found = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    except RecursionError:
        # A schema that refers to itself without consuming the instance ({"$ref": "#"})
        # recurses for ever; it must not stop routing for every event after it.
        return ["the schema could not be applied: it refers to itself without end"]
    return [
        f"{'/'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
        for error in found
    ][:50]


def _fits(project: Project, responses: list[str]) -> bool:
    low, high = RESPONSE_COUNTS[project.task_type]
    return low <= len(responses) <= high or project.task_type == TaskType.DEMONSTRATION


def _item(project: Project, payload: dict[str, Any], context: dict[str, Any]) -> Item:
    responses = [] if project.task_type == TaskType.DEMONSTRATION else _responses(payload)
    return Item(
        project=project,
        prompt=payload["prompt"],
        responses=responses,
        context={**(payload.get("context") or {}), **context},
        source=ItemSource.LIVE,
        model_version=payload.get("model_version", ""),
        target_labels=project.redundancy,
    )


def _decide(project: Project, event: FeedEvent) -> tuple[str, str, Project | None, dict[str, Any]]:
    """(decision, reason, project the item goes to or None, item context) for one event."""
    payload = event.payload
    feed_context: dict[str, Any] = {
        "feed_event": event.pk,
        "model_confidence": payload["model_confidence"],
    }
    if event.external_id:
        feed_context["feed_external_id"] = event.external_id
    feedback = payload.get("user_feedback") or {}
    responses = _responses(payload)
    if feedback.get("rating") == "down":
        context = {**feed_context, "bad_case": True, "user_comment": feedback.get("comment", "")}
        if not _fits(project, responses):
            return (
                FeedDecision.UNROUTABLE,
                "a bad case whose responses do not fit this project's task type",
                None,
                {},
            )
        return FeedDecision.BAD_CASE, "thumbs-down from a user", project, context
    errors = _schema_errors(payload)
    if errors:
        target = (
            project if project.task_type == TaskType.CORRECTION else project.feed_correction_project
        )
        if target is None or target.task_type != TaskType.CORRECTION:
            return (
                FeedDecision.UNROUTABLE,
                "failed its schema, but no correction project is set",
                None,
                {},
            )
        context = {**feed_context, "schema_errors": errors, "original_output": responses[0]}
        return (
            FeedDecision.CORRECTION,
            f"failed its schema ({len(errors)} problem(s))",
            target,
            context,
        )
    confidence = float(payload["model_confidence"])
    if project.feed_gray_low <= confidence <= project.feed_gray_high:
        if not _fits(project, responses):
            return (
                FeedDecision.UNROUTABLE,
                "responses do not fit this project's task type",
                None,
                {},
            )
        return FeedDecision.GRAY_ZONE, "confidence inside the gray zone", project, feed_context
    if (
        project.feed_audit_rate > 0
        and _audit_random.random() < project.feed_audit_rate
        and _fits(project, responses)
    ):
        return (
            FeedDecision.AUDIT,
            "auto-accepted, sampled for audit",
            project,
            {**feed_context, "audit": True},
        )
    return FeedDecision.AUTO_ACCEPTED, "confidence outside the gray zone", None, {}


def feed_route(*, project_id: int, limit: int = 2000) -> int:
    """Route pending events in arrival order (one transaction per chunk, rows locked so two
    workers never route the same event twice). Returns how many were routed."""
    routed = 0
    while True:
        with transaction.atomic():
            project = Project.objects.select_related("feed_correction_project").get(pk=project_id)
            pending = FeedEvent.objects.filter(
                project=project, decision=FeedDecision.PENDING
            ).order_by("id")
            if settings.IS_POSTGRESQL:
                pending = pending.select_for_update(skip_locked=True)
            events = list(pending[:limit])
            if not events:
                cache.delete(f"feed-backlog:{project_id}")
                return routed
            now = timezone.now()
            items: list[tuple[FeedEvent, Item]] = []
            for event in events:
                decision, reason, target, context = _decide(project, event)
                event.decision, event.reason, event.routed_at = decision, reason, now
                if target is not None:
                    items.append((event, _item(target, event.payload, context)))
            Item.objects.bulk_create([item for _, item in items])
            for event, item in items:
                event.item = item
            FeedEvent.objects.bulk_update(events, ["decision", "reason", "routed_at", "item"])
            routed += len(events)


def feed_summary(*, project: Project) -> dict[str, int]:
    """How many events took each route (the lab sees how many were auto-decided)."""

    counts = dict(
        FeedEvent.objects.filter(project=project)
        .values_list("decision")
        .annotate(n=Count("id"))
        .values_list("decision", "n")
    )
    return {decision: counts.get(decision, 0) for decision in FeedDecision.values}


def feed_events_for(*, project: Project, decisions: Iterable[str]) -> Any:
    return FeedEvent.objects.filter(project=project, decision__in=list(decisions)).order_by("-id")


def feed_configure(
    *,
    project: Project,
    gray_low: float,
    gray_high: float,
    audit_rate: float,
    correction_project: Project | None,
) -> Project:
    """Change the routing rules; allowed in any status (no term offered to experts changes)."""
    if not 0.0 <= gray_low <= gray_high <= 1.0:
        raise DomainError("The gray zone is [low, high] within [0, 1].", code="invalid_gray_zone")
    if not 0.0 <= audit_rate <= 1.0:
        raise DomainError("The audit rate is within [0, 1].", code="invalid_audit_rate")
    if correction_project is not None and (
        correction_project.lab_id != project.lab_id
        or correction_project.task_type != TaskType.CORRECTION
    ):
        raise DomainError(
            "The correction project must be a correction project of the same lab.",
            code="invalid_correction_project",
        )
    Project.objects.filter(pk=project.pk).update(
        feed_gray_low=gray_low,
        feed_gray_high=gray_high,
        feed_audit_rate=audit_rate,
        feed_correction_project=correction_project,
    )
    project.refresh_from_db()
    return project
