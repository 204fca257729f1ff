"""The simulator's other task types: a rating, a ranking, a demonstration and a correction
project in the same lab, labeled by the same crowd through the same claims and submits.

Each persona answers them in its own way (careful close to the truth, spammers at random,
adversaries inverted); rating and ranking get a scoring run and a consensus check against the
simulator's truth, and demonstrations and corrections become an SFT export.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from demo.simulation import (
    BAD_PARTS,
    DIMENSIONS,
    GOOD_PARTS,
    NOISE,
    SECONDS,
    TOPICS,
    SimItem,
    World,
    _finished,
    make_item,
)

SIDE_ITEMS = 30
RANKED_RESPONSES = 3


@dataclass
class SideProject:
    project: Any
    truth: dict[int, Any] = field(default_factory=dict)  # item id -> what is right


def _weighted(quality: dict[str, float]) -> float:
    return sum(d.weight * quality[d.key] for d in DIMENSIONS) / sum(d.weight for d in DIMENSIONS)


def _noisy(persona: str, value: float, rng: random.Random) -> float:
    if persona == "spammer":
        return rng.random()
    return value + rng.gauss(0, NOISE.get(persona, 0.15))


def answer_side(persona: str, task_type: str, item: Any, truth: Any, rng: random.Random) -> Any:
    """A persona's answer for one of the side task types (an answer of API.md's table)."""
    if task_type == "rating":
        values = {}
        for dim in DIMENSIONS:
            seen = _noisy(persona, truth[dim.key], rng)
            if persona == "adversarial" and dim.key == "safety":
                seen = 1.0 - seen
            values[dim.key] = dim.value(seen)
        return {"answers": values}
    if task_type == "ranking":
        readings = [_noisy(persona, _weighted(quality), rng) for quality in truth]
        order = sorted(range(len(readings)), key=lambda index: -readings[index])
        return {"ranking": order[::-1] if persona == "adversarial" else order}
    good = persona not in ("spammer", "adversarial") and rng.random() > NOISE.get(persona, 0.5)
    drug = truth
    parts = GOOD_PARTS if good else BAD_PARTS
    return {"text": " ".join(rng.sample(parts, 2)).format(drug=drug)}


def _project(world: World, task_type: str, title: str, rubric: dict[str, Any]) -> Any:
    from projects import services as project_services

    return project_services.project_create(
        lab=world.project.lab,
        created_by=world.owner,
        data={
            "title": title,
            "description": f"Simulated {task_type} work on medication questions.",
            "domain": "medicine",
            "task_type": task_type,
            "base_rate": 200 if task_type in ("demonstration", "correction") else 120,
            "pay_unit": "task",
            "currency": "usd",
            "redundancy": 3,
            "max_redundancy": 3,
            "gold_rate": 0.0,
            "required_certifications": [{"skill": "medicine.cardiology"}],
            "rubric": rubric,
        },
    )


def create_side_projects(world: World) -> list[SideProject]:
    from payouts.services import funding
    from projects import services as project_services
    from projects.models import Item, ProjectStatus

    instructions_only = {"dimensions": [], "instructions": "Use your clinical judgement."}
    specs: list[tuple[str, str, dict[str, Any]]] = [
        (
            "rating",
            "Rate one answer on the rubric",
            {
                "dimensions": [d.as_rubric() for d in DIMENSIONS],
                "instructions": "Rate the answer on every dimension.",
            },
        ),
        ("ranking", "Rank three answers, best first", instructions_only),
        ("demonstration", "Write the answer a cardiologist would give", instructions_only),
        ("correction", "Fix the unsafe answer", instructions_only),
    ]
    side = []
    for task_type, title, rubric in specs:
        project = _project(world, task_type, title, rubric)
        truths: dict[str, Any] = {}
        lines = []
        for index in range(SIDE_ITEMS):
            sims: list[SimItem] = [make_item(world.rng, 5_000 + index * 3 + k) for k in range(2)]
            drug = next(topic for topic in TOPICS if topic in sims[0].prompt)
            truth: Any
            if task_type == "rating":
                responses, truth = [sims[0].texts[0]], sims[0].quality[0]
            elif task_type == "ranking":
                pool = [
                    *zip(sims[0].texts, sims[0].quality, strict=True),
                    (sims[1].texts[0], sims[1].quality[0]),
                ]
                responses = [text for text, _ in pool[:RANKED_RESPONSES]]
                truth = [quality for _, quality in pool[:RANKED_RESPONSES]]
            elif task_type == "correction":
                responses, truth = [BAD_PARTS[index % len(BAD_PARTS)].format(drug=drug)], drug
            else:
                responses, truth = [], drug
            external_id = f"{task_type}-{index}"
            truths[external_id] = truth
            lines.append(
                {"external_id": external_id, "prompt": sims[0].prompt, "responses": responses}
            )
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        project_services.items_import(
            project=project, stream=io.BytesIO(body), content_length=len(body), is_gold=False
        )
        amount = 3 * SIDE_ITEMS * 400 + 50_000
        _, url = funding.funding_checkout_create(
            project=project, amount=amount, created_by=world.owner
        )
        world.stripe.checkout_pay(url.rsplit("/", 1)[1])
        world.flush_webhooks()
        project = project_services.project_transition(
            project=project, to_status=ProjectStatus.OPEN, changed_by=world.owner
        )
        entry = SideProject(project=project)
        for item in Item.objects.filter(project=project).only("id", "external_id"):
            entry.truth[item.pk] = truths[str(item.external_id)]
        side.append(entry)
    world.report.add(
        "Side projects (one per other task type, "
        f"{SIDE_ITEMS} items each): " + ", ".join(p.project.task_type for p in side)
    )
    return side


def work_side_projects(world: World, side: list[SideProject]) -> int:
    from projects import routing

    submitted = 0
    for entry in side:
        project = entry.project
        active = list(world.experts)
        while active:
            world.rng.shuffle(active)
            still = []
            for user, persona in active:
                try:
                    claim = routing.assignment_claim(expert=user, project=project)
                except routing.NotQualified:
                    continue
                if claim is None:
                    continue
                item = claim.assignment.item
                answer = answer_side(
                    persona, project.task_type, item, entry.truth[item.pk], world.rng
                )
                seconds = max(3, int(world.rng.gauss(SECONDS[persona], SECONDS[persona] / 4)))
                routing.assignment_submit(
                    assignment=claim.assignment, answer=answer, rationale="", seconds_spent=seconds
                )
                submitted += 1
                still.append((user, persona))
            active = still
    world.report.add(f"{submitted} labels on the side projects")
    return submitted


def score_side_projects(world: World, side: list[SideProject], seed: int) -> dict[str, float]:
    """Scoring runs for rating and ranking, and their consensus accuracy against the truth."""
    from scoring import services as scoring_services
    from scoring.models import ItemConsensus

    accuracy: dict[str, float] = {}
    for entry in side:
        project = entry.project
        if project.task_type not in ("rating", "ranking"):
            continue
        run = scoring_services.scoring_run_create(
            project=project, created_by=world.owner, seed=seed
        )
        run = scoring_services.scoring_run_execute(run_id=run.pk)
        run = _finished(run)
        consensus = ItemConsensus.objects.filter(run=run)
        hits = []
        for row in consensus:
            truth = entry.truth[row.item_id]
            if project.task_type == "ranking":
                best = int(np.argmax([_weighted(quality) for quality in truth]))
                hits.append(int(row.value) == best)
            else:
                first = DIMENSIONS[0]
                hits.append(abs(int(row.value) - first.value(truth[first.key])) <= 1)
        accuracy[project.task_type] = float(np.mean(hits)) if hits else float("nan")
    world.report.add(
        "Side-project consensus vs truth: "
        + ", ".join(f"{kind} {value:.3f}" for kind, value in accuracy.items())
        + " (ranking: the best response; rating: the first dimension within one step)"
    )
    return accuracy
