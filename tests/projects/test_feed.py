"""The live feed: each event kind's route, idempotency (also under concurrent duplicates),
validation, overload, scoping, and schema failures becoming correction training triples."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects import feed
from projects.models import FeedEvent, Item, Project
from tests.projects.factories import make_project, make_submission

pytestmark = pytest.mark.django_db
KeyClient = Callable[[str], APIClient]


def send(client: APIClient, project: Project, body: Any) -> Any:
    return client.post(f"/api/v1/projects/{project.pk}/feed/", body, format="json")


def event(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": "Can I stop my statin?",
        "responses": ["Ask your cardiologist first.", "Sure."],
        "model_confidence": 0.6,
        "model_version": "m-2026-11",
    }
    body.update(overrides)
    return body


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return make_project(lab, lab_owner)


@pytest.fixture
def pipeline(key_client_for: KeyClient, lab_api_key: str) -> APIClient:
    return key_client_for(lab_api_key)


def route(project: Project) -> None:
    feed.feed_route(project_id=project.pk)


def test_each_event_kind_takes_its_route(
    pipeline: APIClient, project: Project, lab: Lab, lab_owner: User
) -> None:
    corrections = make_project(
        lab, lab_owner, task_type="correction", rubric={"instructions": "Fix it."}
    )
    project.feed_correction_project = corrections
    project.save()
    schema = {
        "type": "object",
        "required": ["dose_mg"],
        "properties": {"dose_mg": {"type": "number"}},
    }
    batch = [
        event(external_id="gray"),
        event(external_id="sure", model_confidence=0.95),
        event(external_id="unsure", model_confidence=0.1),
        event(
            external_id="down",
            model_confidence=0.99,
            user_feedback={"rating": "down", "comment": "dangerous advice"},
        ),
        event(external_id="bad-json", response='{"dose_mg": "ten"}', responses=None, schema=schema),
        event(
            external_id="good-json",
            response='{"dose_mg": 10}',
            responses=None,
            schema=schema,
            model_confidence=0.9,
        ),
        event(
            external_id="one-response", response="only one", responses=None, model_confidence=0.5
        ),
    ]
    for line in batch:
        if line.get("responses") is None:
            line.pop("responses", None)
    response = send(pipeline, project, {"events": batch})
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 7, "duplicates": 0}
    route(project)
    decisions = dict(FeedEvent.objects.values_list("external_id", "decision"))
    assert decisions == {
        "gray": "gray_zone",
        "sure": "auto",
        "unsure": "auto",
        "down": "bad_case",
        "bad-json": "correction",
        "good-json": "auto",
        "one-response": "unroutable",
    }
    gray = FeedEvent.objects.get(external_id="gray").item
    assert gray.project == project and gray.source == "live" and gray.model_version == "m-2026-11"
    assert gray.target_labels == project.redundancy and gray.is_open
    bad = FeedEvent.objects.get(external_id="down").item
    assert bad.context["bad_case"] is True and bad.context["user_comment"] == "dangerous advice"
    fix = FeedEvent.objects.get(external_id="bad-json").item
    assert fix.project == corrections and fix.responses == ['{"dose_mg": "ten"}']
    assert fix.context["schema_errors"] == ["dose_mg: 'ten' is not of type 'number'"]
    summary = pipeline.get(f"/api/v1/projects/{project.pk}/feed/").json()
    assert summary["decisions"]["auto"] == 3 and summary["decisions"]["gray_zone"] == 1


def test_audit_rate_samples_auto_accepted_events(pipeline: APIClient, project: Project) -> None:
    project.feed_audit_rate = 1.0
    project.save()
    send(pipeline, project, event(model_confidence=0.99))
    route(project)
    routed = FeedEvent.objects.get()
    assert routed.decision == "audit" and routed.item.context["audit"] is True


def test_schema_failure_becomes_a_correction_training_triple(
    pipeline: APIClient, lab: Lab, lab_owner: User, expert: User
) -> None:
    corrections = make_project(
        lab, lab_owner, task_type="correction", rubric={"instructions": "Fix it."}
    )
    schema = {"type": "object", "required": ["dose_mg"]}
    send(
        pipeline,
        corrections,
        {"prompt": "Dose?", "response": "ten mg", "model_confidence": 0.9, "schema": schema},
    )
    route(corrections)
    item = Item.objects.get(project=corrections)
    assert item.context["schema_errors"][0].startswith("not JSON")
    make_submission(item, expert, {"text": '{"dose_mg": 10}'})
    response = pipeline.get(f"/api/v1/projects/{corrections.pk}/export/", {"format": "sft"})
    record = json.loads(b"".join(response.streaming_content).decode().splitlines()[0])
    assert record["prompt"] == "Dose?" and record["completion"] == '{"dose_mg": 10}'
    assert record["meta"]["original"] == "ten mg" and record["meta"]["schema_errors"]


def test_duplicates_are_idempotent_by_external_id(pipeline: APIClient, project: Project) -> None:
    assert send(pipeline, project, event(external_id="e1")).json() == {
        "accepted": 1,
        "duplicates": 0,
    }
    again = send(
        pipeline,
        project,
        {"events": [event(external_id="e1"), event(external_id="e2"), event(external_id="e2")]},
    )
    assert again.json() == {"accepted": 1, "duplicates": 2}
    route(project)
    route(project)
    assert FeedEvent.objects.count() == 2 and Item.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_store_and_route_one_event(
    lab: Lab, lab_owner: User, lab_api_key: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrency needs PostgreSQL (SQLite serialises writers)")
    project = make_project(lab, lab_owner)
    barrier = threading.Barrier(8)
    statuses: list[int] = []

    def post() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {lab_api_key}")
        barrier.wait()
        statuses.append(send(client, project, event(external_id="same")).status_code)
        connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [202] * 8
    route(project)
    assert FeedEvent.objects.filter(project=project).count() == 1
    assert Item.objects.filter(project=project).count() == 1


def test_every_bad_event_is_listed_and_nothing_is_accepted(
    pipeline: APIClient, project: Project
) -> None:
    response = send(
        pipeline,
        project,
        {"events": [event(), event(model_confidence=1.5), {"prompt": ""}, event(surprise=1)]},
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    fields = {(d["index"], d["field"]) for d in details}
    assert (
        (1, "model_confidence") in fields and (2, "prompt") in fields and (3, "surprise") in fields
    )
    assert not FeedEvent.objects.exists()
    too_many = send(pipeline, project, {"events": [event()] * 1001})
    assert too_many.status_code == 400


def test_overload_answers_429_with_retry_after(
    pipeline: APIClient, project: Project, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.FEED_MAX_BACKLOG = 3
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert send(pipeline, project, {"events": [event()] * 3}).status_code == 202
    for callback in callbacks[1:]:  # the backlog count, not the routing (it stays pending)
        callback()
    response = send(pipeline, project, event())
    assert response.status_code == 429 and response["Retry-After"] == str(
        settings.FEED_RETRY_AFTER_SECONDS
    )
    assert FeedEvent.objects.count() == 3  # what was accepted stays; nothing half-accepted
    route(project)
    assert send(pipeline, project, event()).status_code == 202


def test_feed_scoping(
    project: Project,
    key_client_for: KeyClient,
    other_lab_api_key: str,
    client_for: Any,
    expert: User,
    lab_viewer: User,
) -> None:
    assert send(key_client_for(other_lab_api_key), project, event()).status_code == 404
    assert send(client_for(expert), project, event()).status_code == 404
    assert send(client_for(lab_viewer), project, event()).status_code == 403
    assert client_for(lab_viewer).get(f"/api/v1/projects/{project.pk}/feed/").status_code == 200
    assert not FeedEvent.objects.exists()


def test_the_lab_sets_the_routing_rules(
    project: Project, lab: Lab, lab_owner: User, client_for: Any, lab_viewer: User
) -> None:
    corrections = make_project(
        lab, lab_owner, task_type="correction", rubric={"instructions": "Fix."}
    )
    owner = client_for(lab_owner)
    url = f"/api/v1/projects/{project.pk}/feed/"
    body = {"gray_zone": [0.2, 0.9], "audit_rate": 0.05, "correction_project": corrections.pk}
    response = owner.patch(url, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "gray_zone": [0.2, 0.9],
        "audit_rate": 0.05,
        "correction_project": corrections.pk,
    }
    assert owner.patch(url, {"gray_zone": [0.9, 0.2]}, format="json").status_code == 400
    assert (
        owner.patch(
            url, {"gray_zone": [0.1, 0.2], "correction_project": project.pk}, format="json"
        ).status_code
        == 400
    )
    assert client_for(lab_viewer).patch(url, body, format="json").status_code == 403


def test_without_a_broker_every_accepted_batch_is_routed_at_once(
    pipeline: APIClient,
    project: Project,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    """The embedded default has no worker and no beat: routing queued at most once a second
    would leave the second and third of three quick events pending for good."""
    settings.FEED_ROUTE_QUEUE_SECONDS = 60
    for index in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = send(pipeline, project, event(external_id=f"quick-{index}"))
        assert response.status_code == 202
    assert not FeedEvent.objects.filter(decision="pending").exists()
    assert FeedEvent.objects.filter(project=project, decision="gray_zone").count() == 3


def test_with_a_broker_routing_is_queued_once_per_window_and_the_beat_task_catches_up(
    pipeline: APIClient,
    project: Project,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from projects.tasks import feed_route_pending_task, feed_route_task

    monkeypatch.setitem(feed_route_task.app.conf, "task_always_eager", False)
    queued: list[int] = []

    def worker_runs(project_id: int) -> None:
        queued.append(project_id)
        feed_route_task.apply(args=[project_id])

    monkeypatch.setattr(feed_route_task, "delay", worker_runs)
    settings.FEED_ROUTE_QUEUE_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=True):
        send(pipeline, project, event(external_id="first"))
    assert FeedEvent.objects.get(external_id="first").decision == "gray_zone"
    for index in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            send(pipeline, project, event(external_id=f"queued-{index}"))
    # Within the window no second task was queued: the events wait for the beat task.
    assert queued == [project.pk]
    assert FeedEvent.objects.filter(decision="pending").count() == 2
    assert feed_route_pending_task() == 2
    assert not FeedEvent.objects.filter(decision="pending").exists()
