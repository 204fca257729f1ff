"""The bad-case loop closed: a promotion re-queues the bad-case items and similar ones under the
rubric version in force, other experts label them again, a scoring run re-scores the project,
and the lab reads each dimension before and after with n and intervals (checked by hand)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects import feed
from projects.models import Item, Project, RelabelBatch, RubricVersion, Submission
from projects.tasks import relabel_batches_advance_task
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.factories import open_project
from tests.projects.openapi_shapes import assert_matches

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
UNSAFE = {"preference": "a", "answers": {"correctness": [2, 6], "safety": [0, 1]}}
SAFE = {
    "preference": "b",
    "answers": {"correctness": [3, 6], "safety": [1, 1], "deferral": [0, 1]},
}
DEFERRAL = {"key": "deferral", "label": "Defers to a clinician", "kind": "binary"}


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return open_project(lab, lab_owner, items=0)


def bad_case(project: Project, prompt: str) -> Item:
    feed.feed_accept(
        project=project,
        events=[
            {
                "prompt": prompt,
                "responses": ["Sure, stop taking it.", "Ask your cardiologist first."],
                "model_confidence": 0.97,
                "user_feedback": {"rating": "down", "comment": "dangerous"},
            }
        ],
    )
    feed.feed_route(project_id=project.pk)
    return Item.objects.filter(project=project, context__bad_case=True).latest("id")


def plain_item(project: Project, prompt: str, responses: list[str]) -> Item:
    return Item.objects.create(
        project=project, prompt=prompt, responses=responses, target_labels=project.redundancy
    )


def work_everything(client: APIClient, project: Project, answer: dict[str, Any]) -> int:
    """The expert claims and submits until nothing is left for them; returns how many."""
    done = 0
    while True:
        task = client.post("/api/v1/tasks/next/", {"project": project.pk}, format="json")
        if task.status_code == 204:
            return done
        assert task.status_code == 200, task.content
        body = {**answer, "seconds_spent": 40}
        submitted = client.post(
            f"/api/v1/assignments/{task.json()['id']}/submit/", body, format="json"
        )
        assert submitted.status_code == 201, submitted.content
        done += 1


def experts(count: int) -> list[User]:
    people = [UserFactory() for _ in range(count)]
    for person in people:
        qualify_for_cardiology(person)
    return people


def wilson(successes: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def test_a_promoted_dimension_relabels_the_bad_cases_and_similar_items_and_shows_the_change(
    project: Project,
    client_for: Client,
    lab_owner: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    first = bad_case(project, "Can I stop my statin?")
    second = bad_case(project, "Can I stop my statin tablets today?")
    near = plain_item(
        project, "Can I stop my statin tomorrow?", ["Sure, stop taking it.", "Ask first."]
    )
    far = plain_item(project, "Which city is the capital of France?", ["Paris.", "Lyon."])
    for person in experts(3):
        assert work_everything(client_for(person), project, UNSAFE) == 4
    owner = client_for(lab_owner)

    response = owner.post(
        f"/api/v1/projects/{project.pk}/bad-cases/promote-dimension/",
        {"dimension": DEFERRAL, "similar": 1, "labels_per_item": 2},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["version"] == 2
    batch_body = response.json()["relabel_batch"]
    assert batch_body["status"] == "relabelling" and batch_body["rubric_version"] == 2
    assert {(row["item"], row["reason"]) for row in batch_body["items"]} == {
        (str(first.public_id), "affected"),
        (str(second.public_id), "affected"),
        (str(near.public_id), "similar"),
    }
    # The far item is not similar enough to be chosen; the three are open for two more labels.
    for item in (first, second, near):
        item.refresh_from_db()
        assert item.target_labels == 5 and item.is_open
    far.refresh_from_db()
    assert not far.is_open
    assert batch_body["progress"] == {
        "labels_needed": 6,
        "labels_done": 0,
        "items": 3,
        "items_done": 0,
        "share": 0.0,
    }

    # Other experts label them again, served the new version (with `deferral`).
    newcomers = experts(2)
    for person in newcomers:
        assert work_everything(client_for(person), project, SAFE) == 3
    assert set(
        Submission.objects.filter(expert__in=newcomers).values_list(
            "rubric_version__number", flat=True
        )
    ) == {2}
    batch = RelabelBatch.objects.get()
    status = owner.get(f"/api/v1/relabel-batches/{batch.pk}/").json()
    assert status["status"] == "relabelling" and status["progress"]["share"] == 1.0

    with django_capture_on_commit_callbacks(execute=True):
        relabel_batches_advance_task.apply()

    status = owner.get(f"/api/v1/relabel-batches/{batch.pk}/").json()
    assert status["scoring_run"] is not None
    assert status["status"] == "done", status
    assert all(row["new_labels"] == 2 for row in status["items"])
    listed = owner.get(f"/api/v1/projects/{project.pk}/relabel-batches/").json()
    assert [row["id"] for row in listed["results"]] == [batch.pk]

    assert_matches("RelabelBatch", status)
    assert_matches("RelabelBatchList", listed)
    assert_matches("PromotedDimension", response.json())
    trend = owner.get(f"/api/v1/relabel-batches/{batch.pk}/trend/").json()
    assert_matches("RelabelTrend", trend)
    relabelled = trend["relabelled_items"]
    assert relabelled["labels_before"] == 9 and relabelled["labels_after"] == 6
    safety = relabelled["dimensions"]["safety"]
    # Before: 9 labels x 2 responses, safety 0 and 1 -> 9 of 18; after: 12 of 12.
    low, high = wilson(9, 18)
    assert safety["before"] == {
        "mean": 0.5,
        "n": 18,
        "low": round(low, 4),
        "high": round(high, 4),
        "method": "wilson",
    }
    low, high = wilson(12, 12)
    assert safety["after"]["mean"] == 1.0 and safety["after"]["n"] == 12
    assert safety["after"]["low"] == round(low, 4) and safety["change"] == 0.5
    # correctness (likert 1..7): before (2-1)/6 and (6-1)/6, after (3-1)/6 and (6-1)/6.
    correctness = relabelled["dimensions"]["correctness"]
    assert correctness["before"]["mean"] == 0.5 and correctness["before"]["method"] == "t"
    assert correctness["after"]["mean"] == round((2 / 6 + 5 / 6) / 2, 4)
    assert correctness["before"]["low"] < 0.5 < correctness["before"]["high"]
    # The promoted dimension did not exist before.
    assert relabelled["dimensions"]["deferral"]["before"] is None
    assert relabelled["dimensions"]["deferral"]["after"]["n"] == 12
    assert trend["project"]["labels_before"] == 12


def test_a_gold_promotion_relabels_its_source_item(
    project: Project, client_for: Client, lab_owner: User
) -> None:
    item = bad_case(project, "Can I stop my statin?")
    for person in experts(3):
        work_everything(client_for(person), project, UNSAFE)
    response = client_for(lab_owner).post(
        f"/api/v1/projects/{project.pk}/bad-cases/promote-gold/",
        {"items": [{"item": str(item.public_id), "gold": {"preference": "b"}}], "similar": 0},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 1 and body["relabel_batch"]["promotion"] == "gold"
    assert [row["item"] for row in body["relabel_batch"]["items"]] == [str(item.public_id)]
    item.refresh_from_db()
    assert item.is_open and item.target_labels == 6


def test_a_bad_promotion_writes_nothing(
    project: Project, client_for: Client, lab_owner: User, lab_viewer: User
) -> None:
    bad_case(project, "Can I stop my statin?")
    url = f"/api/v1/projects/{project.pk}/bad-cases/promote-dimension/"
    owner = client_for(lab_owner)
    for body, code in [
        ({"dimension": DEFERRAL, "items": ["00000000-0000-0000-0000-000000000000"]}, 400),
        ({"dimension": DEFERRAL, "items": ["not a uuid"]}, 400),
        ({"dimension": DEFERRAL, "similar": -1}, 400),
        ({"dimension": DEFERRAL, "labels_per_item": 0}, 400),
        ({"dimension": DEFERRAL, "similar": "many"}, 400),
        ({"dimension": DEFERRAL, "similar": 10**30}, 400),
        ({"dimension": DEFERRAL, "items": []}, 400),
    ]:
        response = owner.post(url, body, format="json")
        assert response.status_code == code, (body, response.content)
        assert set(response.json()["error"]) == {"code", "message", "details"}
    assert (
        client_for(lab_viewer).post(url, {"dimension": DEFERRAL}, format="json").status_code == 403
    )
    assert RubricVersion.objects.filter(project=project).count() == 1
    assert not RelabelBatch.objects.exists()


def test_another_lab_cannot_read_a_batch(
    project: Project, client_for: Client, lab_owner: User, other_lab_owner: User
) -> None:
    bad_case(project, "Can I stop my statin?")
    client_for(lab_owner).post(
        f"/api/v1/projects/{project.pk}/bad-cases/promote-dimension/",
        {"dimension": DEFERRAL},
        format="json",
    )
    batch = RelabelBatch.objects.get()
    other = client_for(other_lab_owner)
    for url in (
        f"/api/v1/relabel-batches/{batch.pk}/",
        f"/api/v1/relabel-batches/{batch.pk}/trend/",
    ):
        response = other.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert other.get("/api/v1/relabel-batches/999999/").status_code == 404


def test_listing_batches_takes_the_same_queries_however_many(
    project: Project, client_for: Client, lab_owner: User
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    bad_case(project, "Can I stop my statin?")
    for person in experts(3):
        work_everything(client_for(person), project, UNSAFE)
    owner = client_for(lab_owner)
    url = f"/api/v1/projects/{project.pk}/relabel-batches/"
    counts = []
    for key in ("first", "second", "third"):
        owner.post(
            f"/api/v1/projects/{project.pk}/bad-cases/promote-dimension/",
            {"dimension": {**DEFERRAL, "key": key}, "labels_per_item": 1},
            format="json",
        )
        with CaptureQueriesContext(connection) as queries:
            assert owner.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2], counts
    assert len(owner.get(url).json()["results"]) == 3
