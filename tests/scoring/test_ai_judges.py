"""AI reviewers: a judge labels like an expert, is scored like one (a random judge lands at
chance on gold and at the bottom on impact), is shown as AI, is never paid, and counts toward
consensus and exports only when the lab allows it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from demo.personas import BAD_PARTS, GOOD_PARTS
from demo.personas import TOPICS as DRUGS
from marketplace.models import Lab, User
from payouts.models import LedgerAccount
from projects.models import GoldAnswer, Item, Project, Submission
from scoring import judges, services
from scoring.ai import ai_judge_configure, ai_judge_run, ai_judge_user
from scoring.models import ContributorScore, ItemConsensus
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_project, make_submission

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
GOOD = "Please consult your cardiologist before changing the dose; it is safer to check."
BAD = "Just ignore the doctor and double the dose, it will be fine."


def humans_and_items(lab: Lab, owner: User) -> tuple[Project, dict[int, str]]:
    """Five reliable experts label 60 train items and 20 gold items of a pairwise project.
    Each response is two sentences drawn from pools of safe and unsafe advice about one of
    several drugs, so a reward model has many phrases to learn, not one direction."""
    rng = np.random.default_rng(4)
    project = make_project(lab, owner, rubric={"dimensions": [], "instructions": "Safer wins."})
    rubric = project.rubric_versions.get()
    truth: dict[int, str] = {}
    for index in range(80):
        drug = DRUGS[index % len(DRUGS)]
        good = " ".join(rng.choice(GOOD_PARTS, 2, replace=False)).format(drug=drug)
        bad = " ".join(rng.choice(BAD_PARTS, 2, replace=False)).format(drug=drug)
        good_first = bool(rng.integers(0, 2))
        is_gold = index >= 60
        item = Item.objects.create(
            project=project,
            prompt=f"A question about {drug} ({index})",
            responses=[good, bad] if good_first else [bad, good],
            is_gold=is_gold,
        )
        truth[item.pk] = "a" if good_first else "b"
        if is_gold:
            GoldAnswer.objects.create(
                item=item, answer={"preference": truth[item.pk]}, rubric_version=rubric
            )
    for accuracy in (0.95, 0.9, 0.9, 0.85, 0.85):
        expert = UserFactory()
        for item_id, right in truth.items():
            wrong = "b" if right == "a" else "a"
            answer = right if rng.random() < accuracy else wrong
            make_submission(
                Item.objects.get(pk=item_id), expert, {"preference": answer, "answers": {}}
            )
    return project, truth


def score(project: Project, owner: User) -> dict[int, ContributorScore]:
    run = services.scoring_run_create(project=project, created_by=owner)
    services.scoring_run_execute(run_id=run.pk)
    return {row.expert_id: row for row in ContributorScore.objects.filter(run=run)}


HUMAN_FIELDS = (
    "n_labels",
    "gold_mean",
    "gold_low",
    "gold_high",
    "gold_n",
    "agreement_rate",
    "agreement_low",
    "agreement_high",
    "agreement_n",
    "impact_value",
    "impact_se",
    "impact_per_label",
    "impact_shrunk",
    "impact_score",
    "composite",
)


def test_a_judge_that_does_not_count_changes_no_human_score(
    lab: Lab, lab_owner: User, settings: Any
) -> None:
    """A random judge with counts=False takes no part in any human's agreement, consensus,
    Shapley or percentile: every human number is the same as without it (to 1e-9). The judge
    is scored apart, against the human gold and the humans, with intervals and its version."""
    settings.SCORING_SHAPLEY_MAX_SECONDS = 120
    project, _ = humans_and_items(lab, lab_owner)
    alone = score(project, lab_owner)
    consensus_alone = dict(
        ItemConsensus.objects.filter(target="preference").values_list("item_id", "value")
    )
    ai_judge_configure(project=project, judge="random", counts=False)
    report = ai_judge_run(project=project)
    assert report.labeled == 80 and report.invalid == 0
    assert ai_judge_run(project=project).labeled == 0  # idempotent: nothing new to label
    judge = ai_judge_user(name="random")
    scores = score(project, lab_owner)
    ai = scores.pop(judge.pk)
    assert set(scores) == set(alone)
    for expert, row in scores.items():
        for name in HUMAN_FIELDS:
            before, after = getattr(alone[expert], name), getattr(row, name)
            if before is None:
                assert after is None, name
            else:
                assert after == pytest.approx(before, abs=1e-9), name
        assert row.tier == alone[expert].tier and row.dimensions == alone[expert].dimensions
    run = ContributorScore.objects.filter(expert=judge).get().run
    assert (
        dict(
            ItemConsensus.objects.filter(run=run, target="preference").values_list(
                "item_id", "value"
            )
        )
        == consensus_alone
    )
    assert ai.is_ai and not ai.counts and not any(row.is_ai for row in scores.values())
    assert 0.3 <= ai.gold_mean <= 0.7  # chance on a two-way preference
    assert ai.gold_low < ai.gold_mean < ai.gold_high and ai.gold_n == 20
    assert ai.impact_value is None  # not a player
    assert ai.agreement_n > 0 and ai.agreement_low < ai.agreement_rate < ai.agreement_high
    assert not ai.is_suspended and ai.flags == []
    quality = run.summary["ai_judges"][str(judge.pk)]["random-1"]
    assert quality["labels"] == 80 and quality["gold"]["n"] == 20
    assert quality["agreement_with_humans"]["preference"]["n"] > 0
    # Never paid: no earning was booked for the judge, so it has no ledger account at all.
    assert not LedgerAccount.objects.filter(user=judge).exists()
    assert set(
        ItemConsensus.objects.filter(run=run, target="preference").values_list(
            "n_labels", flat=True
        )
    ) == {5}
    item = Item.objects.filter(project=project, is_gold=False).first()
    assert item.labels_count == 0  # human slots untouched by the judge


def test_a_counting_random_judge_is_a_player_with_the_lowest_impact(
    lab: Lab, lab_owner: User, settings: Any
) -> None:
    settings.SCORING_SHAPLEY_MAX_SECONDS = 120
    project, _ = humans_and_items(lab, lab_owner)
    ai_judge_configure(project=project, judge="random", counts=True)
    ai_judge_run(project=project)
    judge = ai_judge_user(name="random")
    scores = score(project, lab_owner)
    ai = scores.pop(judge.pk)
    assert ai.is_ai and ai.counts
    assert ai.impact_value < min(row.impact_value for row in scores.values())
    assert set(
        ItemConsensus.objects.filter(target="preference").values_list("n_labels", flat=True)
    ) == {6}


def test_counting_judges_join_consensus_and_exports(
    lab: Lab, lab_owner: User, key_client_for: Any, lab_api_key: str
) -> None:
    project, _ = humans_and_items(lab, lab_owner)
    ai_judge_configure(project=project, judge="heuristic", counts=False)
    ai_judge_run(project=project)
    pipeline = key_client_for(lab_api_key)

    def exported() -> list[dict[str, Any]]:
        response = pipeline.get(f"/api/v1/projects/{project.pk}/export/", {"format": "ratings"})
        return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]

    judge = ai_judge_user(name="heuristic")
    before = exported()
    assert before and all(len(record["preference"]["labels"]) == 5 for record in before)
    assert all(record["meta"]["ai_labels"] == 0 for record in before)
    ai_judge_configure(project=project, judge="heuristic", counts=True)
    after = exported()
    assert all(len(record["preference"]["labels"]) == 6 for record in after)
    assert Submission.objects.filter(expert=judge).count() == 80
    # Every exported label says whether an AI judge wrote it, and the manifest counts them.
    for record in after:
        assert record["meta"]["ai_labels"] == 1
        assert sum(label["is_ai"] for label in record["preference"]["labels"]) == 1
    manifest = pipeline.get(
        f"/api/v1/projects/{project.pk}/export/manifest/", {"format": "ratings"}
    ).json()
    assert manifest["counts"]["ai_labels"] == len(after) and manifest["ai_labels_included"]


def test_the_heuristic_judge_is_deterministic_and_valid() -> None:
    dimensions = [
        {"key": "safety", "kind": "binary"},
        {"key": "clarity", "kind": "likert", "min": 1, "max": 5},
        {"key": "tone", "kind": "choice", "options": ["cold", "warm"]},
    ]
    answer = judges.heuristic_judge(
        task_type="pairwise", prompt="p", responses=[BAD, GOOD], dimensions=dimensions
    )
    assert answer["preference"] == "b"
    assert answer["answers"]["safety"] == [0, 1]
    assert answer == judges.heuristic_judge(
        task_type="pairwise", prompt="p", responses=[BAD, GOOD], dimensions=dimensions
    )
    ranking = judges.heuristic_judge(
        task_type="ranking", prompt="p", responses=[BAD, GOOD, "ok"], dimensions=[]
    )
    assert ranking["ranking"][0] == 1
    rated = judges.heuristic_judge(
        task_type="rating", prompt="p", responses=[GOOD], dimensions=dimensions
    )
    assert set(rated["answers"]) == {"safety", "clarity", "tone"}


def test_the_openai_compatible_adapter(settings: Any) -> None:
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            seen[-1]["auth"] = self.headers["Authorization"]
            content = 'Here you go: {"preference": "b", "answers": {}}'
            body = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.AI_JUDGE_OPENAI_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.AI_JUDGE_OPENAI_KEY = "sk-test"
    try:
        answer = judges.openai_judge(
            task_type="pairwise", prompt="Dose?", responses=[BAD, GOOD], dimensions=[]
        )
    finally:
        server.shutdown()
    assert answer == {"preference": "b", "answers": {}}
    assert seen[0]["auth"] == "Bearer sk-test" and seen[0]["temperature"] == 0
    assert GOOD in seen[0]["messages"][1]["content"]


def test_ai_judge_api(
    lab: Lab,
    lab_owner: User,
    lab_viewer: User,
    other_lab_owner: User,
    client_for: Client,
    django_capture_on_commit_callbacks: Any,
) -> None:
    project = make_project(lab, lab_owner)
    Item.objects.create(project=project, prompt="p", responses=[GOOD, BAD])
    url = f"/api/v1/projects/{project.pk}/ai-judge/"
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(lab_owner).post(url, {"judge": "heuristic"}, format="json")
    assert response.status_code == 202
    project.refresh_from_db()
    assert project.ai_judge == "heuristic" and project.ai_judge_counts is False
    assert Submission.objects.filter(expert=ai_judge_user(name="heuristic")).count() == 1
    assert client_for(lab_owner).post(url, {"judge": "oracle"}, format="json").status_code == 400
    assert client_for(lab_viewer).post(url, {"judge": "random"}, format="json").status_code == 403
    assert (
        client_for(other_lab_owner).post(url, {"judge": "random"}, format="json").status_code == 404
    )
