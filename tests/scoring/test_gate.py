"""The early-stop gate (issue 15): its error rates by simulation, and a spammer and an
adversary stopped within a few gold answers through the real submit path while careful
experts never are."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from marketplace.models import Lab, User
from projects import routing
from projects.models import GoldAnswer, Item, QualityStop
from scoring.engine.gate import ALPHA, KAPPA, ComponentEvidence, gate_decision
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import fund_project
from tests.projects.factories import make_items, make_project

# Components of one pairwise gold answer on the demo's rubric: the preference (1 trial), a
# 7-point likert (2 trials, chance 19/49), a binary dimension (2 trials, chance 1/2) and two
# 5-point likert ones (2 trials each, chance 13/25). More components, more evidence per answer.
COMPONENTS = {
    "preference": 0.5,
    "correctness": 19 / 49,
    "safety": 0.5,
    "clarity": 13 / 25,
    "actionability": 13 / 25,
}
KEYS = ["preference"] + [key for key in list(COMPONENTS)[1:] for _ in range(2)]
CHANCES = [COMPONENTS[key] for key in KEYS]


def _answers_until_stop(accuracy: list[float], rng: np.random.Generator, limit: int) -> int | None:
    """Gold answers until the gate stops someone right with these per-trial probabilities."""
    totals = {key: [0.0, 0] for key in KEYS}
    for answer in range(1, limit + 1):
        for key, probability in zip(KEYS, accuracy, strict=True):
            totals[key][0] += float(rng.random() < probability)
            totals[key][1] += 1
        evidence = [
            ComponentEvidence(key, chance, *totals[key]) for key, chance in COMPONENTS.items()
        ]
        if gate_decision(evidence, answer).stop:
            return answer
    return None


def test_the_gates_error_rates_by_simulation() -> None:
    rng = np.random.default_rng(0)
    # Someone doing real work at the test's own H0 level (halfway from chance to perfect) is
    # stopped at most about ALPHA of the time over 60 gold answers; careful experts never.
    halfway = [c + KAPPA * (1 - c) for c in CHANCES]
    stopped = sum(_answers_until_stop(halfway, rng, 60) is not None for _ in range(1000))
    assert stopped / 1000 <= 3 * ALPHA
    careful = [0.9] * len(KEYS)
    assert all(_answers_until_stop(careful, rng, 60) is None for _ in range(300))
    # Random answers stop within a handful of gold answers; a flipped preference too.
    chance = [_answers_until_stop(CHANCES, rng, 60) for _ in range(300)]
    assert all(answer is not None for answer in chance)
    assert np.median([a for a in chance if a]) <= 6
    flipped_preference = [0.03] + [0.9] * (len(KEYS) - 1)
    flipped = [_answers_until_stop(flipped_preference, rng, 60) for _ in range(200)]
    assert all(answer is not None for answer in flipped)
    assert np.median([a for a in flipped if a]) <= 8


def test_no_stop_before_three_gold_answers() -> None:
    evidence = [ComponentEvidence("preference", 0.5, 0.0, 2)]
    assert not gate_decision(evidence, 2).stop


RUBRIC = {
    "dimensions": [
        {
            "key": "correctness",
            "label": "Correct",
            "kind": "likert",
            "min": 1,
            "max": 7,
            "weight": 2.0,
        },
        {"key": "safety", "label": "Safe", "kind": "binary", "weight": 2.0},
        {"key": "clarity", "label": "Clear", "kind": "likert", "min": 1, "max": 5},
        {"key": "actionability", "label": "Actionable", "kind": "likert", "min": 1, "max": 5},
    ],
    "instructions": "Prefer safe, correct, clear answers.",
}
RIGHT = {
    "preference": "a",
    "answers": {
        "correctness": [6, 2],
        "safety": [1, 0],
        "clarity": [4, 2],
        "actionability": [5, 1],
    },
}


@pytest.fixture
def gold_project(lab: Lab, lab_owner: User):
    project = make_project(lab, lab_owner, redundancy=3, rubric=RUBRIC)
    rubric = project.rubric_versions.get()
    make_items(project, 40, target_labels=3)
    for item in make_items(project, 40, prefix="gold", is_gold=True):
        GoldAnswer.objects.create(item=item, answer=RIGHT, rubric_version=rubric)
    fund_project(project, 2_000_000)
    project.status = "open"
    project.onboarding_gold = 8
    project.gold_rate = 0.1
    project.max_active_leases = 100
    project.save()
    return project


def _work(project, user: User, answer_for, tasks: int) -> int:
    """Claim and submit until stopped or `tasks` done; returns the tasks done."""
    gold = set(Item.objects.filter(project=project, is_gold=True).values_list("pk", flat=True))
    done = 0
    for _ in range(tasks):
        try:
            claim = routing.assignment_claim(expert=user, project=project)
        except routing.NotQualified:
            break
        if claim is None:
            break
        answer = answer_for(claim.assignment.item_id in gold)
        routing.assignment_submit(
            assignment=claim.assignment, answer=answer, rationale="", seconds_spent=30
        )
        done += 1
    return done


@pytest.mark.django_db
def test_spammers_and_adversaries_are_stopped_within_fifteen_tasks_careful_never(
    gold_project, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    import random

    # Gold draws come from a CSPRNG in production; seeded here so the test is repeatable.
    monkeypatch.setattr(routing, "_random", random.Random(5))
    rng = np.random.default_rng(3)

    def spam(_: bool) -> dict:
        return {
            "preference": str(rng.choice(["a", "b"])),
            "answers": {
                "correctness": [int(v) for v in rng.integers(1, 8, 2)],
                "safety": [int(v) for v in rng.integers(0, 2, 2)],
                "clarity": [int(v) for v in rng.integers(1, 6, 2)],
                "actionability": [int(v) for v in rng.integers(1, 6, 2)],
            },
        }

    def adversary(_: bool) -> dict:
        return {"preference": "b", "answers": {**RIGHT["answers"], "safety": [0, 1]}}

    def careful(_: bool) -> dict:
        return RIGHT

    done: dict[str, list[tuple[User, int]]] = {"spammer": [], "adversary": [], "careful": []}
    for name, policy, count in (
        ("spammer", spam, 5),
        ("adversary", adversary, 3),
        ("careful", careful, 3),
    ):
        for _ in range(count):
            user = UserFactory()
            qualify_for_cardiology(user)
            # A stop's labels go back to the pool after its commit (the discount task).
            with django_capture_on_commit_callbacks(execute=True):
                done[name].append((user, _work(gold_project, user, policy, 40)))
    tasks = {name: [count for _, count in rows] for name, rows in done.items()}
    assert np.median(tasks["spammer"]) <= 15 and max(tasks["spammer"]) < 40, tasks
    assert max(tasks["adversary"]) <= 15, tasks
    assert tasks["careful"] == [40, 40, 40]
    stops = {stop.expert_id: stop for stop in QualityStop.objects.all()}
    stopped = {user.pk for name in ("spammer", "adversary") for user, _ in done[name]}
    assert set(stops) == stopped
    for user, _ in done["adversary"]:
        assert stops[user.pk].evidence["test"] == "inverted"
        assert "safety" in stops[user.pk].evidence["inverted"]
    for user, _ in done["spammer"]:
        assert stops[user.pk].evidence["components"]["preference"]["trials"] >= 3
