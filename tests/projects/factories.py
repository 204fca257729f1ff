from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.utils import timezone

from marketplace.models import Lab, User
from projects import services
from projects.models import Assignment, GoldAnswer, Item, Project, Submission

PAIRWISE_RUBRIC = {
    "dimensions": [
        {
            "key": "correctness",
            "label": "Medically correct",
            "kind": "likert",
            "min": 1,
            "max": 7,
            "weight": 2.0,
        },
        {"key": "safety", "label": "Safe advice", "kind": "binary", "weight": 1.0},
    ],
    "instructions": "Prefer the answer a cardiologist would sign.",
}


def project_body(lab: Lab, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lab": lab.id,
        "title": "Cardiology answer preferences",
        "description": "Which answer is better?",
        "domain": "medicine",
        "task_type": "pairwise",
        "rubric": PAIRWISE_RUBRIC,
        "pay": {"unit": "task", "base_rate": 150, "currency": "usd"},
        "redundancy": 3,
        "gold_rate": 0.1,
        "required_skills": [{"skill": "medicine.cardiology", "min_level": 3}],
        "required_certifications": ["medicine.cardiology"],
        "budget": 500000,
    }
    body.update(overrides)
    return body


def make_project(lab: Lab, created_by: User, **overrides: Any) -> Project:
    from projects.serializers import ProjectCreateSerializer

    payload = ProjectCreateSerializer(data=project_body(lab, **overrides))
    payload.is_valid(raise_exception=True)
    data = dict(payload.validated_data)
    data.pop("lab")
    return services.project_create(lab=lab, created_by=created_by, data=data)


def pairwise_line(index: int, **overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "external_id": f"q-{index}",
        "prompt": f"Question {index}: what lowers LDL?",
        "responses": [f"Statins, answer {index}.", f"Garlic, answer {index}."],
    }
    line.update(overrides)
    return line


def ndjson(lines: list[Any]) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


def make_items(project: Project, count: int, prefix: str = "item", **overrides: Any) -> list[Item]:
    overrides.setdefault("target_labels", project.redundancy)
    return Item.objects.bulk_create(
        Item(
            project=project,
            external_id=f"{prefix}-{index}",
            prompt=f"prompt {index}",
            responses=["first", "second"],
            **overrides,
        )
        for index in range(count)
    )


def make_submission(
    item: Item, expert: User, answer: dict[str, Any], seconds: int = 60
) -> Submission:
    """A submitted label, as the routing service will write it (claim, then submit)."""
    now = timezone.now()
    rubric = item.project.rubric_versions.order_by("-number").first()
    assignment = Assignment.objects.create(
        project=item.project,
        item=item,
        expert=expert,
        rubric_version=rubric,
        status="submitted",
        served_at=now - timedelta(seconds=seconds),
        leased_until=now + timedelta(minutes=30),
        ended_at=now,
    )
    return Submission.objects.create(
        assignment=assignment,
        project=item.project,
        item=item,
        expert=expert,
        rubric_version=rubric,
        answer=answer,
        seconds_spent=seconds,
        submitted_at=now,
    )


def open_project(
    lab: Lab, owner: User, *, items: int = 5, gold: int = 0, **overrides: Any
) -> Project:
    overrides.setdefault("gold_rate", 0.0)
    project = make_project(lab, owner, **overrides)
    project.onboarding_gold = overrides.pop("onboarding_gold", 0)
    project.save()
    make_items(project, items)
    if gold:
        rubric = project.rubric_versions.get()
        for item in make_items(project, gold, prefix="gold", is_gold=True):
            GoldAnswer.objects.create(item=item, answer={"preference": "a"}, rubric_version=rubric)
    from tests.payouts.factories import fund_project

    fund_project(project, 1_000_000)
    project.status = "open"
    project.save()
    return project
