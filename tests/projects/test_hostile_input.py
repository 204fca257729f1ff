"""Imports, the live feed and submits refuse what the database cannot store (issue 17): NUL,
lone surrogates, deep nesting and out-of-range numbers answer 400 naming the line or field,
nothing half-written, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects import feed
from projects.models import FeedEvent, GoldAnswer, Item, Project, Submission
from tests.conftest import browser
from tests.contributors.factories import qualify_for_cardiology
from tests.projects.factories import make_project, open_project, pairwise_line

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
KeyClient = Callable[[str], APIClient]
NDJSON = "application/x-ndjson"


def line(index: int, **overrides: Any) -> str:
    return json.dumps(pairwise_line(index, **overrides))


def deep_line(index: int) -> str:
    body = pairwise_line(index)
    text = json.dumps(body)
    return text[:-1] + ', "context": {"nested": ' + "[" * 100_000 + "]" * 100_000 + "}}"


def import_lines(client: APIClient, project: Project, lines: list[str], kind: str = "items") -> Any:
    body = "".join(text + "\n" for text in lines).encode()
    return client.generic(
        "POST", f"/api/v1/projects/{project.id}/{kind}/import/", body, content_type=NDJSON
    )


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return make_project(lab, lab_owner)


@pytest.fixture
def pipeline(key_client_for: KeyClient, lab_api_key: str) -> APIClient:
    return key_client_for(lab_api_key)


def test_import_refuses_unstorable_text_and_numbers_naming_line_and_field(
    pipeline: APIClient, project: Project
) -> None:
    lines = [
        line(1),
        line(2, prompt="NUL \u0000 inside"),
        line(3, context={"note": "half a pair \ud800"}),
        line(4, external_id="q-\u0000"),
        line(5, responses=["fine", "surrogate \udfff"]),
        deep_line(6),
        line(7, context={"count": 10**400}),
        line(8, context={"ratio": 1}).replace('"ratio": 1', '"ratio": 1e400'),
        line(9, context={"bad\u0000key": 1}),
    ]
    response = import_lines(pipeline, project, lines)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_lines"
    assert {(row["line"], row["field"]) for row in error["details"]["errors"]} == {
        (2, "prompt"),
        (3, "context.note"),
        (4, "external_id"),
        (5, "responses[1]"),
        (6, None),
        (7, "context.count"),
        (8, "context.ratio"),
        (9, "context.bad\\u0000key"),
    }
    deep = next(row for row in error["details"]["errors"] if row["line"] == 6)
    assert "nested deeper than 64" in deep["message"]
    assert not Item.objects.filter(project=project).exists()


def test_gold_import_refuses_unstorable_text(pipeline: APIClient, project: Project) -> None:
    gold = {"preference": "a", "answers": {"correctness": [6, 2], "safety": [1, 0]}}
    lines = [line(1, gold=gold), line(2, gold=gold, context={"source": "\u0000"})]
    response = import_lines(pipeline, project, lines, kind="gold")
    assert response.status_code == 400, response.content
    rows = response.json()["error"]["details"]["errors"]
    assert [(row["line"], row["field"]) for row in rows] == [(2, "context.source")]
    assert not Item.objects.filter(project=project).exists()
    assert not GoldAnswer.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"prompt": "a\\u0000b", "response": "x", "model_confidence": 0.5}', "prompt"),
        (
            '{"events": [{"prompt": "fine", "response": "x", "model_confidence": 0.5,'
            ' "context": {"k": "\\ud800"}}]}',
            "events[0].context.k",
        ),
        (
            '{"prompt": "fine", "response": "x", "model_confidence": 0.5,'
            ' "user_feedback": {"rating": "down", "comment": "\\u0000"}}',
            "user_feedback.comment",
        ),
        (
            '{"prompt": "p", "response": "x", "model_confidence": 0.5, "external_id": "\\u0000"}',
            "external_id",
        ),
    ],
    ids=["nul-prompt", "surrogate-context", "nul-comment", "nul-external-id"],
)
def test_feed_refuses_unstorable_text(
    pipeline: APIClient, project: Project, body: str, field: str
) -> None:
    response = pipeline.post(
        f"/api/v1/projects/{project.pk}/feed/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [problem["field"] for problem in error["details"]] == [field]
    assert not FeedEvent.objects.exists()


def test_feed_refuses_deep_nesting(pipeline: APIClient, project: Project) -> None:
    body = '{"prompt": "p", "response": "x", "model_confidence": 0.5, "context": {"a": '
    body += "[" * 100_000 + "]" * 100_000 + "}}"
    response = pipeline.post(
        f"/api/v1/projects/{project.pk}/feed/", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "json_too_deep"
    assert not FeedEvent.objects.exists()


def test_feed_routing_survives_deep_json_in_a_response_and_a_self_referencing_schema(
    pipeline: APIClient, lab: Lab, lab_owner: User
) -> None:
    """The response text is parsed at routing time: a deeply nested one is a schema failure,
    not a crashed routing task that leaves every later event pending."""
    corrections = make_project(
        lab, lab_owner, task_type="correction", rubric={"instructions": "Fix it."}
    )
    deep_text = "[" * 100_000 + "]" * 100_000
    events = [
        {
            "prompt": "p",
            "response": deep_text,
            "model_confidence": 0.95,
            "schema": {"type": "array"},
            "external_id": "deep",
        },
        {
            "prompt": "p",
            "response": "{}",
            "model_confidence": 0.95,
            "schema": {"$ref": "#"},
            "external_id": "self-ref",
        },
    ]
    feed.feed_accept(project=corrections, events=events)
    feed.feed_route(project_id=corrections.pk)
    decisions = dict(FeedEvent.objects.values_list("external_id", "decision"))
    assert decisions == {"deep": "correction", "self-ref": "correction"}
    reasons = {
        item.context["feed_external_id"]: item.context["schema_errors"]
        for item in Item.objects.filter(project=corrections)
    }
    assert "nested deeper than 64" in reasons["deep"][0]
    assert "could not be applied" in reasons["self-ref"][0]


def test_submit_refuses_unstorable_text_in_rationale_and_blame(
    client_for: Client, expert: User, lab: Lab, lab_owner: User
) -> None:
    project = open_project(lab, lab_owner)
    qualify_for_cardiology(expert)
    worker = client_for(expert)
    task = worker.post("/api/v1/tasks/next/", {"project": project.pk}, format="json").json()
    body = (
        '{"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]},'
        ' "seconds_spent": 40, "rationale": "because\\u0000",'
        ' "blame": {"dimension": "safety", "reason": "unsafe \\u0000 advice"}}'
    )
    response = worker.post(
        f"/api/v1/assignments/{task['id']}/submit/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    fields = [problem["field"] for problem in response.json()["error"]["details"]]
    assert fields == ["blame.reason", "rationale"]
    assert not Submission.objects.exists()


def test_the_labeling_page_refuses_nul_in_form_fields(
    expert: User, lab: Lab, lab_owner: User
) -> None:
    project = open_project(lab, lab_owner)
    qualify_for_cardiology(expert)
    page = browser(expert)
    claimed = page.post("/work/next/", {"project": project.pk})
    assert claimed.status_code == 302
    form = {
        "preference": "a",
        "dim.correctness.0": "6",
        "dim.correctness.1": "3",
        "dim.safety.0": "1",
        "dim.safety.1": "0",
        "seconds_spent": "41",
        "rationale": "A cites\x00 the guideline.",
    }
    response = page.post(claimed["Location"], form)
    assert response.status_code == 400
    assert [problem["field"] for problem in response.json()["error"]["details"]] == ["rationale"]
    assert not Submission.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("seconds_spent", "forty"), ("seconds_spent", "9" * 30), ("pasted_share", "nan")],
)
def test_the_labeling_page_refuses_non_numbers_with_400(
    expert: User, lab: Lab, lab_owner: User, field: str, value: str
) -> None:
    project = open_project(lab, lab_owner)
    qualify_for_cardiology(expert)
    page = browser(expert)
    claimed = page.post("/work/next/", {"project": project.pk})
    form = {
        "preference": "a",
        "dim.correctness.0": "6",
        "dim.correctness.1": "3",
        "dim.safety.0": "1",
        "dim.safety.1": "0",
        "seconds_spent": "41",
        field: value,
    }
    assert page.post(claimed["Location"], form).status_code == 400
    assert not Submission.objects.exists()
