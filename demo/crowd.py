"""The crowd at work, in simulated time: each expert works a shift, one task after another,
through the real claim and submit services; the server measures each task's active time
(claim to submit) on a simulated clock, so hours, pay per hour and the early-stop gate see what
they would see in production.

The clock: `timezone.now()` is replaced by the simulation's clock while the crowd works, and
events (a claim, a submit) are processed in time order, so the clock never runs backwards. The
shift ends in the past, so everything the run books is dated before the payout run."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from django.utils import timezone

from demo.personas import seconds_for
from projects import routing
from projects.models import Item

# Seconds between one submit and the next claim (reading the next prompt is task time).
GAP_SECONDS = 3.0
# After "nothing available right now", try again this much later.
RETRY_SECONDS = 120.0


@dataclass
class SimClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, moment: datetime) -> None:
        self.now = max(self.now, moment)


@contextmanager
def simulated_time(clock: SimClock) -> Iterator[SimClock]:
    """Every `timezone.now()` (services, model defaults) reads the simulation's clock."""
    with mock.patch("django.utils.timezone.now", clock):
        yield clock


@dataclass
class WorkLog:
    """What each expert did on one project: tasks, server-measured seconds, whether stopped."""

    tasks: dict[int, int] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)
    stopped_after: dict[int, int] = field(default_factory=dict)
    submitted: int = 0


Answer = Callable[[Any, str, Any], dict[str, Any]]  # (user, persona, assignment) -> answer


def work_shift(
    *,
    project: Any,
    experts: list[tuple[Any, str]],
    answer: Answer,
    clock: SimClock,
    shift_seconds: float,
    rng: Any,
    max_tasks: int | None = None,
) -> WorkLog:
    """Everyone works `shift_seconds` (or `max_tasks` tasks) on the project from the clock's
    present; each expert arrives at a random moment in the first two minutes."""

    log = WorkLog()
    start = clock.now
    end = start + timedelta(seconds=shift_seconds)
    order = itertools.count()
    events: list[tuple[datetime, int, str, int, Any]] = []
    for index in range(len(experts)):
        arrival = start + timedelta(seconds=rng.uniform(0, 120))
        heapq.heappush(events, (arrival, next(order), "claim", index, None))
    while events:
        moment, _, kind, index, payload = heapq.heappop(events)
        user, persona = experts[index]
        clock.advance_to(moment)
        if kind == "submit":
            assignment, duration = payload
            routing.assignment_submit(
                assignment=assignment,
                answer=answer(user, persona, assignment),
                rationale="",
                seconds_spent=int(duration),
            )
            log.submitted += 1
            log.tasks[user.pk] = log.tasks.get(user.pk, 0) + 1
            log.seconds[user.pk] = log.seconds.get(user.pk, 0.0) + duration
            next_claim = moment + timedelta(seconds=GAP_SECONDS)
            heapq.heappush(events, (next_claim, next(order), "claim", index, None))
            continue
        if moment >= end or (max_tasks is not None and log.tasks.get(user.pk, 0) >= max_tasks):
            continue
        try:
            claim = routing.assignment_claim(expert=user, project=project)
        except routing.NotQualified:
            log.stopped_after.setdefault(user.pk, log.tasks.get(user.pk, 0))
            continue
        if claim is None:
            if Item.objects.filter(project=project, is_gold=False, is_open=True).exists():
                retry = moment + timedelta(seconds=RETRY_SECONDS)
                heapq.heappush(events, (retry, next(order), "claim", index, None))
            continue
        duration = seconds_for(persona, rng)
        done = moment + timedelta(seconds=duration)
        heapq.heappush(events, (done, next(order), "submit", index, (claim.assignment, duration)))
    return log


def shift_start(shift_seconds: float, phases: int) -> datetime:
    """A start early enough that every phase's shift ends an hour before the real present."""
    return timezone.localtime().replace(microsecond=0) - timedelta(
        seconds=shift_seconds * phases + 3600
    )
