"""Exports: shapes of dpo / rm / ratings / sft, filters, scoping, the manifest, and TRL's loader."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from contributors.selectors import expert_pseudonym
from marketplace.models import Lab, User
from projects.models import Item, Project
from scoring.models import ContributorScore, ItemConsensus, ScoringRun
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_items, make_project, make_submission

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


def lines(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    body = b"".join(response.streaming_content).decode()
    return [json.loads(line) for line in body.splitlines()]


def pairwise(preference: str, correctness: tuple[int, int] = (6, 3)) -> dict[str, Any]:
    return {
        "preference": preference,
        "answers": {"correctness": list(correctness), "safety": [1, 0]},
    }


@pytest.fixture
def experts(db: Any) -> list[User]:
    return [UserFactory() for _ in range(3)]


@pytest.fixture
def labelled(lab: Lab, lab_owner: User, experts: list[User]) -> Project:
    """Three pairwise items: 'a' by 3 votes, 'b' by 2 of 3, and a tie vote majority."""
    project = make_project(lab, lab_owner)
    first, second, third = make_items(project, 3)
    for expert in experts:
        make_submission(first, expert, pairwise("a"))
    make_submission(second, experts[0], pairwise("b"))
    make_submission(second, experts[1], pairwise("b"))
    make_submission(second, experts[2], pairwise("a"))
    for expert in experts:
        make_submission(third, expert, pairwise("tie"))
    gold = make_items(project, 1, prefix="gold", is_gold=True)[0]
    make_submission(gold, experts[0], pairwise("a"))
    return project


def test_dpo_export_pairs_by_majority_with_meta(
    client_for: Client, labelled: Project, lab_viewer: User
) -> None:
    records = lines(
        client_for(lab_viewer).get(f"/api/v1/projects/{labelled.id}/export/?format=dpo")
    )
    assert [r["meta"]["external_id"] for r in records] == ["item-0", "item-1"]  # tie and gold out
    first, second = records
    assert (first["chosen"], first["rejected"]) == ("first", "second")
    assert (second["chosen"], second["rejected"]) == ("second", "first")
    assert first["meta"]["confidence"] == 1.0
    assert second["meta"]["confidence"] == pytest.approx(2 / 3, abs=1e-6)
    assert first["meta"]["n_labels"] == 3
    assert first["meta"]["rubric_versions"] == [1]
    assert set(first) == {"prompt", "chosen", "rejected", "meta"}


def test_rm_export_has_margin_and_confidence(
    client_for: Client, labelled: Project, lab_owner: User
) -> None:
    records = lines(client_for(lab_owner).get(f"/api/v1/projects/{labelled.id}/export/?format=rm"))
    assert [(r["margin"], round(r["confidence"], 3)) for r in records] == [
        (1.0, 1.0),
        (0.333333, 0.667),
    ]


def test_min_confidence_filter(client_for: Client, labelled: Project, lab_owner: User) -> None:
    url = f"/api/v1/projects/{labelled.id}/export/?format=dpo&min_confidence=0.9"
    assert [r["meta"]["external_id"] for r in lines(client_for(lab_owner).get(url))] == ["item-0"]


def test_split_filter(client_for: Client, labelled: Project, lab_owner: User) -> None:
    Item.objects.filter(external_id="item-1").update(split="eval")
    url = f"/api/v1/projects/{labelled.id}/export/?format=dpo&split=eval"
    assert [r["meta"]["external_id"] for r in lines(client_for(lab_owner).get(url))] == ["item-1"]


def test_min_tier_uses_only_labels_of_good_enough_contributors(
    client_for: Client, labelled: Project, lab_owner: User, experts: list[User]
) -> None:
    run = ScoringRun.objects.create(project=labelled, status="succeeded")
    tiers = ["gold", "gold", "probation"]
    for expert, tier in zip(experts, tiers, strict=True):
        ContributorScore.objects.create(run=run, expert=expert, tier=tier)
    url = f"/api/v1/projects/{labelled.id}/export/?format=dpo&min_tier=silver"
    records = lines(client_for(lab_owner).get(url))
    second = next(r for r in records if r["meta"]["external_id"] == "item-1")
    assert second["meta"]["n_labels"] == 2
    assert second["meta"]["confidence"] == 1.0  # the probation contributor's dissent is gone


def test_a_scoring_run_consensus_wins_over_majority_vote(
    client_for: Client, labelled: Project, lab_owner: User
) -> None:
    run = ScoringRun.objects.create(project=labelled, status="succeeded")
    item = Item.objects.get(external_id="item-1")
    ItemConsensus.objects.create(
        run=run, item=item, target="preference", value="a", confidence=0.93, n_labels=3
    )
    client = client_for(lab_owner)
    records = lines(client.get(f"/api/v1/projects/{labelled.id}/export/?format=dpo"))
    second = next(r for r in records if r["meta"]["external_id"] == "item-1")
    assert (second["chosen"], second["meta"]["confidence"]) == ("first", 0.93)
    manifest = client.get(f"/api/v1/projects/{labelled.id}/export/manifest/?format=dpo").json()
    assert (manifest["consensus"], manifest["scoring_run"]) == ("scoring_run", run.id)


def test_ratings_export_lists_every_raw_label_with_lab_pseudonyms(
    client_for: Client, labelled: Project, lab_owner: User, experts: list[User]
) -> None:
    records = lines(
        client_for(lab_owner).get(f"/api/v1/projects/{labelled.id}/export/?format=ratings")
    )
    assert len(records) == 3
    first = records[0]
    correctness = first["dimensions"]["correctness"]
    assert correctness["consensus"] == [6.0, 3.0]
    names = {row["contributor"] for row in correctness["labels"]}
    assert names == {expert_pseudonym(expert=e, lab_id=labelled.lab_id) for e in experts}
    assert first["preference"]["consensus"] == "a"
    body = json.dumps(records)
    for expert in experts:
        assert expert.email not in body and expert.name not in body


def test_pseudonyms_differ_between_labs(experts: list[User], lab: Lab, other_lab: Lab) -> None:
    expert = experts[0]
    assert expert_pseudonym(expert=expert, lab_id=lab.id) == expert_pseudonym(
        expert=expert, lab_id=lab.id
    )
    assert expert_pseudonym(expert=expert, lab_id=lab.id) != expert_pseudonym(
        expert=expert, lab_id=other_lab.id
    )


def test_ranking_items_expand_to_every_ordered_pair(
    client_for: Client, lab: Lab, lab_owner: User, experts: list[User]
) -> None:
    rubric = {
        "dimensions": [{"key": "helpful", "label": "Helpful", "kind": "likert", "min": 1, "max": 5}]
    }
    project = make_project(lab, lab_owner, task_type="ranking", rubric=rubric)
    item = Item.objects.create(
        project=project, external_id="r1", prompt="p", responses=["x", "y", "z"]
    )
    for expert, ranking in zip(experts, [[2, 0, 1], [2, 0, 1], [0, 2, 1]], strict=True):
        make_submission(item, expert, {"ranking": ranking, "answers": {"helpful": [3, 1, 5]}})
    records = lines(client_for(lab_owner).get(f"/api/v1/projects/{project.id}/export/?format=dpo"))
    assert [(r["chosen"], r["rejected"]) for r in records] == [("z", "x"), ("z", "y"), ("x", "y")]


def test_sft_export_from_demonstrations_and_corrections(
    client_for: Client, lab: Lab, lab_owner: User, experts: list[User]
) -> None:
    correction = make_project(
        lab, lab_owner, task_type="correction", rubric={"instructions": "Fix it minimally."}
    )
    item = Item.objects.create(
        project=correction, external_id="c1", prompt="Fix the JSON", responses=['{"a": 1,}']
    )
    make_submission(item, experts[0], {"text": '{"a": 1}'})
    records = lines(
        client_for(lab_owner).get(f"/api/v1/projects/{correction.id}/export/?format=sft")
    )
    assert records == [
        {
            "prompt": "Fix the JSON",
            "completion": '{"a": 1}',
            "meta": {
                **records[0]["meta"],
                "original": '{"a": 1,}',
                "contributor": expert_pseudonym(expert=experts[0], lab_id=lab.id),
            },
        }
    ]


def test_export_parameter_errors(client_for: Client, labelled: Project, lab_owner: User) -> None:
    client = client_for(lab_owner)
    base = f"/api/v1/projects/{labelled.id}/export/"
    assert client.get(base).status_code == 400
    assert client.get(f"{base}?format=csv").status_code == 400
    assert client.get(f"{base}?format=dpo&min_confidence=2").status_code == 400
    assert client.get(f"{base}?format=dpo&min_tier=diamond").status_code == 400
    wrong = client.get(f"{base}?format=sft")
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "format_not_supported"


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("lab_owner", 200),
        ("lab_viewer", 200),
        ("lab_api_key", 200),
        ("other_lab_owner", 404),
        ("other_lab_api_key", 404),
        ("expert", 404),
        ("anonymous", 401),
    ],
)
def test_export_personas(
    request: Any,
    client_for: Client,
    key_client_for: Any,
    labelled: Project,
    persona: str,
    expected: int,
) -> None:
    if persona == "anonymous":
        client = APIClient()
    elif persona.endswith("api_key"):
        client = key_client_for(request.getfixturevalue(persona))
    else:
        client = client_for(request.getfixturevalue(persona))
    assert client.get(f"/api/v1/projects/{labelled.id}/export/?format=dpo").status_code == expected
    assert (
        client.get(f"/api/v1/projects/{labelled.id}/export/manifest/?format=dpo").status_code
        == expected
    )


def test_manifest_counts_and_hash_match_the_export(
    client_for: Client, labelled: Project, lab_owner: User
) -> None:
    client = client_for(lab_owner)
    export = client.get(f"/api/v1/projects/{labelled.id}/export/?format=dpo")
    body = b"".join(export.streaming_content)
    manifest = client.get(f"/api/v1/projects/{labelled.id}/export/manifest/?format=dpo").json()
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["counts"] == {"records": 2, "items": 2, "labels": 6, "ai_labels": 0}
    assert manifest["rubric_versions"] == [1]
    assert manifest["consensus"] == "majority_vote" and manifest["scoring_run"] is None
    assert manifest["filters"]["format"] == "dpo"
    assert manifest["generated_at"]


def test_dpo_file_loads_into_trl_columns(
    client_for: Client, labelled: Project, lab_owner: User, tmp_path: Path
) -> None:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HOME", str(tmp_path / "hf"))
    datasets = pytest.importorskip("datasets", reason="the `datasets` test extra is not installed")
    response = client_for(lab_owner).get(f"/api/v1/projects/{labelled.id}/export/?format=dpo")
    path = tmp_path / "dpo.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    dataset = datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache")
    )
    # TRL's DPOTrainer reads these three string columns (the "standard" preference format).
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    for column in ("prompt", "chosen", "rejected"):
        assert dataset.features[column].dtype == "string"
    assert dataset.num_rows == 2
    assert dataset[1]["chosen"] == "second"


@pytest.mark.parametrize("export_format", ["ratings", "dpo"])
def test_export_queries_do_not_grow_with_items(
    client_for: Client, lab: Lab, lab_owner: User, experts: list[User], export_format: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(lab_owner)
    counts = []
    for size in (5, 40):
        project = make_project(lab, lab_owner, title=f"size {size}")
        for item in make_items(project, size):
            for expert in experts:
                make_submission(item, expert, pairwise("a"))
        with CaptureQueriesContext(connection) as queries:
            records = lines(
                client.get(f"/api/v1/projects/{project.id}/export/?format={export_format}")
            )
        assert len(records) == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_export_jobs_write_the_same_bytes_and_announce_export_ready(
    lab: Lab,
    lab_owner: User,
    key_client_for: Any,
    lab_api_key: str,
    other_lab_api_key: str,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    import hashlib

    from marketplace.models import WebhookDelivery, WebhookEndpoint

    settings.EXPORT_DIR = str(tmp_path)
    project = make_project(lab, lab_owner)
    item = make_items(project, 1)[0]
    make_submission(
        item, lab_owner, {"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}}
    )
    WebhookEndpoint.objects.create(
        lab=lab, url="https://hooks.example.org/x", secret="whsec_" + "A" * 44
    )
    pipeline = key_client_for(lab_api_key)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        started = pipeline.post(
            f"/api/v1/projects/{project.pk}/exports/", {"format": "dpo"}, format="json"
        )
    assert started.status_code == 202 and started.json()["status"] == "queued"
    assert started.json()["progress"] == {"items_total": None, "items_done": 0, "share": None}
    job_id = started.json()["id"]
    from projects.export_jobs import export_job_run

    export_job_run(job_id=job_id)  # the worker
    job = pipeline.get(f"/api/v1/exports/{job_id}/").json()
    assert job["status"] == "ready"
    assert job["progress"] == {"items_total": 1, "items_done": 1, "share": 1.0}
    downloaded = b"".join(pipeline.get(f"/api/v1/exports/{job_id}/download/").streaming_content)
    streamed = b"".join(
        pipeline.get(f"/api/v1/projects/{project.pk}/export/", {"format": "dpo"}).streaming_content
    )
    assert downloaded == streamed and downloaded
    assert job["manifest"]["sha256"] == hashlib.sha256(downloaded).hexdigest()
    ready = WebhookDelivery.objects.get(event_type="export.ready")
    assert ready.payload["data"]["download_url"].endswith(f"/api/v1/exports/{job_id}/download/")
    assert key_client_for(other_lab_api_key).get(f"/api/v1/exports/{job_id}/").status_code == 404
    assert len(callbacks) == 1  # the job was queued after commit


def test_an_export_job_reports_its_progress_after_each_batch_of_items(
    lab: Lab, lab_owner: User, settings: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    from projects import exports
    from projects.export_jobs import export_job_create, export_job_run
    from projects.models import ExportJob

    settings.EXPORT_DIR = str(tmp_path)
    monkeypatch.setattr(exports, "EXPORT_BATCH", 2)
    project = make_project(lab, lab_owner)
    make_items(project, 5)
    job = export_job_create(
        project=project, filters=exports.ExportFilters(format="dpo"), created_by=lab_owner
    )
    seen: list[tuple[int | None, int]] = []
    real = exports.export_manifest

    def watched(context: Any, **kwargs: Any) -> Any:
        report = kwargs["progress"]

        def spy(done: int) -> None:
            report(done)
            row = ExportJob.objects.get(pk=job.pk)
            seen.append((row.items_total, row.items_done))

        return real(context, **{**kwargs, "progress": spy})

    monkeypatch.setattr(exports, "export_manifest", watched)
    export_job_run(job_id=job.pk)
    assert seen == [(5, 2), (5, 4), (5, 5)]
    job.refresh_from_db()
    assert (job.status, job.items_total, job.items_done) == ("ready", 5, 5)
