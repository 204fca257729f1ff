"""JSON Lines import of items and gold: all-or-nothing, every edge case, every persona."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects.models import GoldAnswer, Item, Project
from projects.services import ANALYZE_AFTER_ITEMS
from tests.projects.factories import make_project, ndjson, pairwise_line

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
NDJSON = "application/x-ndjson"


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return make_project(lab, lab_owner)


@pytest.fixture
def owner_client(client_for: Client, lab_owner: User) -> APIClient:
    return client_for(lab_owner)


def post(
    client: APIClient, project: Project, body: bytes, *, gold: bool = False, **extra: Any
) -> Any:
    kind = "gold" if gold else "items"
    return client.generic(
        "POST", f"/api/v1/projects/{project.id}/{kind}/import/", body, content_type=NDJSON, **extra
    )


def test_import_creates_every_line(owner_client: APIClient, project: Project) -> None:
    response = post(owner_client, project, ndjson([pairwise_line(i) for i in range(25)]))
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 25}
    assert Item.objects.filter(project=project, is_gold=False).count() == 25
    item = Item.objects.get(external_id="q-3")
    assert item.responses == ["Statins, answer 3.", "Garlic, answer 3."]
    assert item.split == "train" and item.source == "bulk"


def test_bom_crlf_blank_lines_and_missing_final_newline(
    owner_client: APIClient, project: Project
) -> None:
    lines = [json.dumps(pairwise_line(i)) for i in range(3)]
    body = b"\xef\xbb\xbf" + f"{lines[0]}\r\n\r\n   \n{lines[1]}\r\n\n{lines[2]}".encode()
    response = post(owner_client, project, body)
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 3


def test_text_is_stored_losslessly(owner_client: APIClient, project: Project) -> None:
    tricky = "مرحبا\u200f \u200b zero-width, emoji 🫀🧬, CJK 心脏, combining é, \u2028 separator"
    line = pairwise_line(1, prompt=tricky, responses=[tricky + " A", "B \U0001f600"])
    assert post(owner_client, project, ndjson([line])).status_code == 201
    item = Item.objects.get(project=project)
    assert item.prompt == tricky
    assert item.responses == [tricky + " A", "B \U0001f600"]


def _assert_nothing_written(project: Project) -> None:
    assert not Item.objects.filter(project=project).exists()
    assert not GoldAnswer.objects.exists()


def test_any_bad_line_rejects_the_whole_body_listing_every_bad_line(
    owner_client: APIClient, project: Project
) -> None:
    good = [json.dumps(pairwise_line(i)) for i in range(4)]
    bad_lines = [
        good[0],
        '{"external_id": "x", "prompt": "p", "responses": ["only one"]}',
        "not json at all",
        good[1],
        '["a", "json", "array"]',
        "42",
        '{"prompt": "p", "responses": ["a", "b"], "respones": []}',
        good[2],
    ]
    response = post(owner_client, project, "\n".join(bad_lines).encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_lines"
    listed = {(row["line"], row["field"]) for row in error["details"]["errors"]}
    assert listed == {
        (2, "responses"),
        (3, None),
        (5, None),
        (6, None),
        (7, "respones"),
    }
    assert error["details"]["error_count"] == 5
    array_message = next(r for r in error["details"]["errors"] if r["line"] == 5)["message"]
    assert "array" in array_message
    _assert_nothing_written(project)


def test_invalid_utf8_is_refused(owner_client: APIClient, project: Project) -> None:
    body = ndjson([pairwise_line(1)]) + b'{"prompt": "\xff\xfe bad", "responses": ["a", "b"]}\n'
    response = post(owner_client, project, body)
    assert response.status_code == 400
    [row] = response.json()["error"]["details"]["errors"]
    assert row["line"] == 2 and "UTF-8" in row["message"]
    _assert_nothing_written(project)


def test_a_whole_json_array_body_is_refused(owner_client: APIClient, project: Project) -> None:
    body = json.dumps([pairwise_line(1), pairwise_line(2)]).encode()
    response = post(owner_client, project, body)
    assert response.status_code == 400
    assert "array" in response.json()["error"]["details"]["errors"][0]["message"]
    _assert_nothing_written(project)


def test_duplicate_external_ids_in_the_body_and_in_the_project(
    owner_client: APIClient, project: Project
) -> None:
    assert post(owner_client, project, ndjson([pairwise_line(1)])).status_code == 201
    response = post(
        owner_client, project, ndjson([pairwise_line(2), pairwise_line(2), pairwise_line(1)])
    )
    assert response.status_code == 400
    rows = response.json()["error"]["details"]["errors"]
    assert [(row["line"], row["field"]) for row in rows] == [(2, "external_id"), (3, "external_id")]
    assert "line 1" in rows[0]["message"]
    assert Item.objects.filter(project=project).count() == 1


@pytest.mark.parametrize(
    ("task_type", "responses", "accepted"),
    [
        ("ranking", ["a", "b", "c"], True),
        ("ranking", [f"r{i}" for i in range(9)], False),
        ("ranking", ["a"], False),
        ("rating", ["one"], True),
        ("rating", ["one", "two"], False),
        ("correction", ["model output"], True),
        ("demonstration", [], True),
        ("demonstration", ["a"], False),
        ("pairwise", ["a", ""], False),
    ],
)
def test_response_counts_per_task_type(
    owner_client: APIClient,
    lab: Lab,
    lab_owner: User,
    task_type: str,
    responses: list[str],
    accepted: bool,
) -> None:
    rubric = {
        "dimensions": [{"key": "quality", "label": "Q", "kind": "likert", "min": 1, "max": 5}]
    }
    project = make_project(lab, lab_owner, task_type=task_type, rubric=rubric)
    response = post(owner_client, project, ndjson([{"prompt": "p", "responses": responses}]))
    assert response.status_code == (201 if accepted else 400), response.content
    assert Item.objects.filter(project=project).exists() is accepted


def test_features_are_checked(owner_client: APIClient, project: Project) -> None:
    lines = [
        pairwise_line(1, features=[[0.1, 0.2], [0.3, 0.4]]),
        pairwise_line(2, features=[[0.1, 0.2]]),
        pairwise_line(3, features=[[0.1], [0.2, 0.3]]),
        pairwise_line(4, features=[["x"], [1]]),
    ]
    response = post(owner_client, project, ndjson(lines))
    assert [row["line"] for row in response.json()["error"]["details"]["errors"]] == [2, 3, 4]
    _assert_nothing_written(project)


def test_split_and_context(owner_client: APIClient, project: Project) -> None:
    lines = [
        pairwise_line(1, split="eval", context={"source": "ward"}),
        pairwise_line(2, split="test"),
    ]
    response = post(owner_client, project, ndjson(lines))
    assert [row["field"] for row in response.json()["error"]["details"]["errors"]] == ["split"]
    assert post(owner_client, project, ndjson(lines[:1])).status_code == 201
    assert Item.objects.get().context == {"source": "ward"}


def test_body_over_the_limit_is_413_before_reading(
    owner_client: APIClient, project: Project, settings: Any
) -> None:
    settings.IMPORT_MAX_BODY_BYTES = 1000
    body = ndjson([pairwise_line(i) for i in range(40)])
    response = post(owner_client, project, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    _assert_nothing_written(project)


def test_body_over_the_limit_without_content_length_is_413_while_streaming(
    project: Project, settings: Any
) -> None:
    from projects import services
    from projects.importing import ImportLimits

    limits = ImportLimits(max_body_bytes=2000, max_line_bytes=1000, max_lines=1000)

    class Endless:
        def read(self, size: int) -> bytes:
            return (json.dumps(pairwise_line(1)) + "\n").encode() * 5

    with pytest.raises(services.ImportFailed) as failure:
        services.items_import(
            project=project, stream=Endless(), content_length=None, is_gold=False, limits=limits
        )
    assert failure.value.status_code == 413
    _assert_nothing_written(project)


def test_too_many_lines_is_413(owner_client: APIClient, project: Project, settings: Any) -> None:
    settings.IMPORT_MAX_LINES = 5
    response = post(owner_client, project, ndjson([pairwise_line(i) for i in range(6)]))
    assert response.status_code == 413
    _assert_nothing_written(project)


def test_an_over_long_line_is_reported_without_being_buffered(
    owner_client: APIClient, project: Project, settings: Any
) -> None:
    settings.IMPORT_MAX_LINE_BYTES = 500
    body = ndjson([pairwise_line(1), pairwise_line(2, prompt="x" * 5000), pairwise_line(3)])
    response = post(owner_client, project, body)
    assert response.status_code == 400
    [row] = response.json()["error"]["details"]["errors"]
    assert row["line"] == 2 and "longer than 500 bytes" in row["message"]
    _assert_nothing_written(project)


def test_error_list_is_capped_with_the_total(owner_client: APIClient, project: Project) -> None:
    body = b"nope\n" * 1500
    response = post(owner_client, project, body)
    details = response.json()["error"]["details"]
    assert (details["listed"], details["error_count"], len(details["errors"])) == (1000, 1500, 1000)


def test_empty_body_is_refused(owner_client: APIClient, project: Project) -> None:
    response = post(owner_client, project, b"\n\n")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "empty_body"


def test_wrong_content_type_is_415(owner_client: APIClient, project: Project) -> None:
    response = owner_client.post(
        f"/api/v1/projects/{project.id}/items/import/", [pairwise_line(1)], format="json"
    )
    assert response.status_code == 415
    _assert_nothing_written(project)


def test_closed_project_refuses_imports(owner_client: APIClient, project: Project) -> None:
    project.status = "closed"
    project.save()
    assert post(owner_client, project, ndjson([pairwise_line(1)])).status_code == 409
    _assert_nothing_written(project)


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("lab_owner", 201),
        ("lab_manager", 201),
        ("lab_api_key", 201),
        ("lab_viewer", 403),
        ("other_lab_owner", 404),
        ("other_lab_api_key", 404),
        ("expert", 404),
        ("anonymous", 401),
    ],
)
def test_import_personas(
    request: Any,
    client_for: Client,
    key_client_for: Any,
    project: Project,
    persona: str,
    expected: int,
) -> None:
    if persona == "anonymous":
        client = APIClient()
    elif persona.endswith("api_key"):
        client = key_client_for(request.getfixturevalue(persona))
    else:
        client = client_for(request.getfixturevalue(persona))
    response = post(client, project, ndjson([pairwise_line(1)]))
    assert response.status_code == expected
    assert Item.objects.filter(project=project).exists() is (expected == 201)


def test_gold_import_validates_answers_against_the_rubric(
    owner_client: APIClient, project: Project
) -> None:
    good = pairwise_line(
        1, gold={"preference": "a", "answers": {"correctness": [6, 2], "safety": [1, 0]}}
    )
    bad = pairwise_line(
        2, gold={"preference": "maybe", "answers": {"correctness": [9, 2], "kindness": [1, 1]}}
    )
    missing = pairwise_line(3)
    response = post(owner_client, project, ndjson([good, bad, missing]), gold=True)
    assert response.status_code == 400
    rows = response.json()["error"]["details"]["errors"]
    assert {(row["line"], row["field"]) for row in rows} == {
        (2, "gold.preference"),
        (2, "gold.answers.correctness[0]"),
        (2, "gold.answers.kindness"),
        (3, "gold"),
    }
    _assert_nothing_written(project)

    response = post(owner_client, project, ndjson([good]), gold=True)
    assert response.status_code == 201
    item = Item.objects.get(project=project)
    assert item.is_gold
    assert GoldAnswer.objects.get(item=item).answer == {
        "preference": "a",
        "answers": {"correctness": [6, 2], "safety": [1, 0]},
    }


def test_gold_lines_are_refused_on_the_items_endpoint(
    owner_client: APIClient, project: Project
) -> None:
    line = pairwise_line(1, gold={"preference": "a"})
    response = post(owner_client, project, ndjson([line]))
    assert response.json()["error"]["details"]["errors"][0]["field"] == "gold"
    _assert_nothing_written(project)


def test_gold_needs_a_rubric_and_a_gradable_task_type(
    owner_client: APIClient, lab: Lab, lab_owner: User
) -> None:
    bare = make_project(lab, lab_owner, rubric=None)
    response = post(
        owner_client, bare, ndjson([pairwise_line(1, gold={"preference": "a"})]), gold=True
    )
    assert response.json()["error"]["code"] == "rubric_missing"
    demonstration = make_project(lab, lab_owner, task_type="demonstration")
    response = post(
        owner_client, demonstration, ndjson([{"prompt": "p", "gold": {"text": "t"}}]), gold=True
    )
    assert response.json()["error"]["code"] == "gold_not_supported"
    assert not Item.objects.exists()


def test_model_version_is_stored_per_item(owner_client: APIClient, project: Project) -> None:
    lines = [pairwise_line(0, model_version="m-7"), pairwise_line(1)]
    assert post(owner_client, project, ndjson(lines)).status_code == 201
    versions = dict(project.items.values_list("external_id", "model_version"))
    assert versions == {"q-0": "m-7", "q-1": ""}
    bad = post(owner_client, project, ndjson([pairwise_line(2, model_version=7)]))
    assert bad.status_code == 400


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's (CI runs it)"
)
def test_a_large_import_refreshes_the_planner_statistics(
    owner_client: APIClient, project: Project, django_capture_on_commit_callbacks: Any
) -> None:
    def estimated_rows() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'projects_item'")
            return float(cursor.fetchone()[0])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        body = ndjson([pairwise_line(i) for i in range(ANALYZE_AFTER_ITEMS)])
        assert post(owner_client, project, body).status_code == 201
    assert any(callback.__name__ == "_analyze_items" for callback in callbacks)
    # Fresh statistics: a table this small is read whole, so the estimate is the count.
    assert estimated_rows() == Item.objects.count() >= ANALYZE_AFTER_ITEMS
