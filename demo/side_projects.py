"""The simulator's other task types: a rating, a ranking, a demonstration and a correction
project in the same lab, worked by the same crowd in simulated time through the same claims
and submits.

Each persona answers them in its own way (careful close to the truth, spammers at random,
adversaries inverted). Rating and ranking have no gold: their tiers come from Dawid-Skene's
estimate of each expert's accuracy. Demonstrations and corrections are reviewed: half of them
are sampled for a reviewer (careful experts with a reviewer certification, and one reviewer
who accepts everything, whom reviewer scoring should expose), reviewers are paid per review,
and the review outcomes are the authors' quality evidence. Demonstrations and corrections
become the SFT export.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from contributors.models import Certification, CertificationRole, Skill
from demo.crowd import SimClock, work_shift
from demo.personas import BAD_PARTS, DIMENSIONS, GOOD_PARTS, NOISE, TOPICS, SimItem, make_item
from demo.simulation import finished
from demo.simulation import release_pending as release
from payouts.services import funding
from projects import reviews
from projects import services as project_services
from projects.models import Item, ProjectStatus, Review
from scoring import services as scoring_services
from scoring.models import ItemConsensus

SIDE_ITEMS = 30
RANKED_RESPONSES = 3
REVIEW_SECONDS = 30.0
REVIEWERS = 3  # careful experts certified as reviewers, besides the rubber stamp


@dataclass
class SideProject:
    project: Any
    truth: dict[int, Any] = field(default_factory=dict)  # item id -> what is right


def weighted_quality(quality: dict[str, float]) -> float:
    return sum(d.weight * quality[d.key] for d in DIMENSIONS) / sum(d.weight for d in DIMENSIONS)


def _noisy(persona: str, value: float, rng: random.Random) -> float:
    if persona == "spammer":
        return rng.random()
    return value + rng.gauss(0, NOISE.get(persona, 0.15))


def answer_side(persona: str, task_type: str, truth: Any, rng: random.Random) -> Any:
    """A persona's answer for one of the side task types (docs/API.md, "Answers")."""
    if task_type == "rating":
        values = {}
        for dim in DIMENSIONS:
            if persona == "spammer":
                values[dim.key] = dim.random_value(rng)
                continue
            seen = _noisy(persona, truth[dim.key], rng)
            if persona == "adversarial" and dim.key == "safety":
                seen = 1.0 - seen
            values[dim.key] = dim.value(seen)
        return {"answers": values}
    if task_type == "ranking":
        readings = [_noisy(persona, weighted_quality(quality), rng) for quality in truth]
        order = sorted(range(len(readings)), key=lambda index: -readings[index])
        return {"ranking": order[::-1] if persona == "adversarial" else order}
    good = persona not in ("spammer", "adversarial") and rng.random() > NOISE.get(persona, 0.5)
    parts = GOOD_PARTS if good else BAD_PARTS
    return {"text": " ".join(rng.sample(parts, 2)).format(drug=truth)}


def is_good_text(text: str) -> bool:
    return not any(part.split("{drug}")[0] in text for part in BAD_PARTS if part.split("{drug}")[0])


def _project(world: Any, task_type: str, title: str, rubric: dict[str, Any]) -> Any:
    reviewed = task_type in ("demonstration", "correction")
    project = project_services.project_create(
        lab=world.project.lab,
        created_by=world.owner,
        data={
            "title": title,
            "description": f"Simulated {task_type} work on medication questions.",
            "domain": "medicine",
            "task_type": task_type,
            "base_rate": 200 if reviewed else 120,
            "pay_unit": "task",
            "currency": "usd",
            "redundancy": 3,
            "max_redundancy": 3,
            "gold_rate": 0.0,
            "review_rate": 0.5 if reviewed else 0.0,
            "review_pay": 50 if reviewed else 0,
            "required_certifications": [{"skill": "medicine.cardiology"}],
            "rubric": rubric,
        },
    )
    return project


def create_side_projects(world: Any) -> list[SideProject]:
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
        amount = 3 * SIDE_ITEMS * 600 + 50_000
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


def certify_reviewers(world: Any) -> list[tuple[Any, str]]:
    """Careful experts, and one average expert who accepts everything, get reviewer
    certifications in cardiology."""

    skill = Skill.objects.get(key="medicine.cardiology")
    careful = [user for user, persona in world.experts if persona == "careful"][:REVIEWERS]
    stamp = next(user for user, persona in world.experts if persona == "average")
    reviewers = [(user, "careful") for user in careful] + [(stamp, "rubber_stamp")]
    for user, _ in reviewers:
        Certification.objects.create(
            user=user,
            skill=skill,
            level=4,
            role=CertificationRole.REVIEWER,
            issued_at=timezone.now(),
            expires_at=timezone.now() + timedelta(days=365),
        )
    return reviewers


def work_side_projects(
    world: Any, side: list[SideProject], clock: SimClock, shift_seconds: float
) -> int:
    submitted = 0
    for entry in side:
        project = entry.project

        def answer(user: Any, persona: str, assignment: Any, entry: SideProject = entry) -> Any:
            truth = entry.truth[assignment.item_id]
            return answer_side(persona, entry.project.task_type, truth, world.rng)

        log = work_shift(
            project=project,
            experts=world.experts,
            answer=answer,
            clock=clock,
            shift_seconds=shift_seconds,
            rng=world.rng,
        )
        submitted += log.submitted
        world.merge_log(log)
    world.report.add(f"{submitted} labels on the side projects")
    return submitted


def review_side_projects(
    world: Any, side: list[SideProject], reviewers: list[tuple[Any, str]], clock: SimClock
) -> int:
    """Reviewers work the review queues in simulated time: a careful reviewer accepts good
    text and rejects bad, the rubber stamp accepts everything."""

    decided = 0
    for entry in side:
        if entry.project.task_type not in ("demonstration", "correction"):
            continue
        for reviewer, style in itertools_cycle(reviewers, entry.project):
            review = reviews.review_claim(reviewer=reviewer, project=entry.project)
            if review is None:
                break
            clock.advance_to(clock.now + timedelta(seconds=REVIEW_SECONDS))
            text = review.submission.answer.get("text", "")
            accept = style == "rubber_stamp" or is_good_text(text)
            reviews.review_decide(
                review=review,
                reviewer=reviewer,
                decision="accepted" if accept else "rejected",
                reason="" if accept else "Gives unsafe advice.",
            )
            decided += 1
    world.report.add(f"{decided} reviews decided on demonstrations and corrections")
    return decided


def itertools_cycle(reviewers: list[tuple[Any, str]], project: Any) -> Any:
    """Reviewers take turns until the queue is empty (at most the project's labels)."""

    limit = Review.objects.filter(project=project).count() + len(reviewers)
    for turn in range(limit):
        yield reviewers[turn % len(reviewers)]


def score_side_projects(world: Any, side: list[SideProject], seed: int) -> dict[str, float]:
    """Scoring runs for every side project (their snapshots release the pending pay), and the
    rating and ranking consensus accuracy against the truth."""

    accuracy: dict[str, float] = {}
    for entry in side:
        project = entry.project
        run = scoring_services.scoring_run_create(
            project=project, created_by=world.owner, seed=seed
        )
        run = finished(scoring_services.scoring_run_execute(run_id=run.pk))
        release(run)
        if project.task_type not in ("rating", "ranking"):
            continue
        target = "ranking" if project.task_type == "ranking" else f"dim:{DIMENSIONS[0].key}"
        hits = []
        for row in ItemConsensus.objects.filter(run=run, target=target):
            truth = entry.truth[row.item_id]
            if project.task_type == "ranking":
                best = int(np.argmax([weighted_quality(quality) for quality in truth]))
                hits.append(int(row.value[0]) == best)
            else:
                first = DIMENSIONS[0]
                hits.append(abs(int(row.value) - first.value(truth[first.key])) <= 1)
        accuracy[project.task_type] = float(np.mean(hits)) if hits else float("nan")
    world.report.add(
        "Side-project consensus vs truth: "
        + ", ".join(f"{kind} {value:.3f}" for kind, value in accuracy.items())
        + " (ranking: the best response by Bradley-Terry; rating: the first dimension within "
        "one step)"
    )
    return accuracy
