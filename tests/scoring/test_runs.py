"""Scoring runs on a simulated crowd, and the scoring API with every persona."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from rest_framework.test import APIClient

from contributors.models import ExpertProfile
from marketplace.models import Lab, User
from projects.models import GoldAnswer, Item, Project
from scoring import services
from scoring.models import ContributorScore, ItemConsensus, ScoringRun
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_project, make_submission

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
GOOD = "Please consult your cardiologist before changing the dose; it is safer to check."
BAD = "Just ignore the doctor and double the dose, it will be fine."


def crowd(lab: Lab, owner: User, seed: int = 0) -> dict[str, Any]:
    """A pairwise project where one response is better by construction, and personas."""
    rng = np.random.default_rng(seed)
    project = make_project(
        lab, owner, rubric={"dimensions": [], "instructions": "Pick the safer answer."}
    )
    rubric = project.rubric_versions.get()
    truth: dict[int, str] = {}
    items = []
    for index in range(70):
        good_first = bool(rng.integers(0, 2))
        responses = (
            [f"{GOOD} ({index})", f"{BAD} ({index})"]
            if good_first
            else [f"{BAD} ({index})", f"{GOOD} ({index})"]
        )
        is_gold = index >= 50
        item = Item.objects.create(
            project=project,
            external_id=f"x{index}",
            prompt=f"Can I change my statin dose? {index}",
            responses=responses,
            is_gold=is_gold,
            split="train",
        )
        truth[item.pk] = "a" if good_first else "b"
        if is_gold:
            GoldAnswer.objects.create(
                item=item, answer={"preference": truth[item.pk]}, rubric_version=rubric
            )
        items.append(item)
    accuracy = {
        "careful": 0.95,
        "careful2": 0.95,
        "average": 0.8,
        "average2": 0.8,
        "spammer": 0.5,
        "adversary": 0.0,
    }
    experts = {name: UserFactory() for name in [*accuracy, "twin"]}
    answers: dict[str, dict[int, str]] = {name: {} for name in experts}
    for name, share in accuracy.items():
        for item in items:
            right = rng.random() < share
            if name == "spammer":
                answer = "a" if rng.random() < 0.5 else "b"
            else:
                answer = truth[item.pk] if right else ("b" if truth[item.pk] == "a" else "a")
            answers[name][item.pk] = answer
    answers["twin"] = dict(answers["careful"])  # an identical copy of a careful expert
    for name, expert in experts.items():
        for item in items:
            make_submission(
                item, expert, {"preference": answers[name][item.pk], "answers": {}}, seconds=60
            )
    return {"project": project, "experts": experts, "truth": truth}


@pytest.fixture
def scored(lab: Lab, lab_owner: User, settings: Any) -> dict[str, Any]:
    settings.SCORING_SHAPLEY_MAX_SECONDS = 120
    world = crowd(lab, lab_owner)
    run = services.scoring_run_create(project=world["project"], created_by=lab_owner)
    services.scoring_run_execute(run_id=run.pk)
    world["run"] = ScoringRun.objects.get(pk=run.pk)
    world["scores"] = {
        name: ContributorScore.objects.get(run=run, expert=expert)
        for name, expert in world["experts"].items()
    }
    return world


def test_a_run_separates_the_personas(scored: dict[str, Any]) -> None:
    run, scores = scored["run"], scored["scores"]
    assert run.status == "succeeded", run.error
    assert run.summary["shapley"]["exact"] is True
    by_composite = sorted(scores, key=lambda name: scores[name].composite)
    assert set(by_composite[:2]) == {"spammer", "adversary"}
    assert by_composite[-1] in ("careful", "careful2", "twin")
    assert scores["spammer"].tier == scores["adversary"].tier == "probation"
    assert all(scores[name].tier in ("silver", "gold", "platinum") for name in by_composite[2:])
    impact = {name: score.impact_value for name, score in scores.items()}
    assert sorted(impact, key=impact.get)[:2] in (
        ["adversary", "spammer"],
        ["spammer", "adversary"],
    )
    # Stopping is the gate's job, on every gold answer (routing); a run never suspends anyone.
    # The adversary's evidence is what the gate stops on. (On this preference-only rubric a
    # gold answer is one trial, so a random clicker needs ~45 of them: see test_gate.py.)
    from scoring.services.gate import gate_evidence

    project = scored["project"]
    decision, answers = gate_evidence(project=project, expert=scored["experts"]["adversary"])
    assert decision.stop and decision.reason == "inverted" and answers == 20
    careful, _ = gate_evidence(project=project, expert=scored["experts"]["careful"])
    assert not careful.stop
    assert not ExpertProfile.objects.filter(
        user=scored["experts"]["adversary"], suspended_at__isnull=False
    ).exists()
    for score in scores.values():
        assert score.gold_n == 20 and 0 <= score.gold_low <= score.gold_mean <= score.gold_high <= 1
    efficiency = sum(score.impact_value for score in scores.values())
    assert efficiency == pytest.approx(run.summary["v_full"] - run.summary["v_empty"], abs=1e-9)


def test_identical_contributors_get_equal_scores_and_colluders_are_flagged(
    scored: dict[str, Any],
) -> None:
    careful, twin = scored["scores"]["careful"], scored["scores"]["twin"]
    assert careful.gold_mean == twin.gold_mean and careful.agreement_rate == twin.agreement_rate
    assert careful.impact_value == pytest.approx(twin.impact_value, abs=1e-9)
    assert any(flag["flag"] == "collusion" for flag in twin.flags)


def test_dawid_skene_consensus_beats_or_equals_majority(scored: dict[str, Any]) -> None:
    truth = scored["truth"]
    rows = ItemConsensus.objects.filter(run=scored["run"], target="preference")
    accuracy = np.mean([row.value == truth[row.item_id] for row in rows])
    assert accuracy >= 0.95
    assert rows.count() == 50  # gold items are not in the consensus


def test_a_run_with_no_submissions_finishes_empty(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner)
    run = services.scoring_run_create(project=project, created_by=lab_owner)
    run = services.scoring_run_execute(run_id=run.pk)
    assert run.status == "succeeded"
    assert not ContributorScore.objects.filter(run=run).exists()
    again = services.scoring_run_create(project=project, created_by=lab_owner)
    assert again.pk == run.pk  # nothing new: the same run


def test_scoring_api_lifecycle_and_scoping(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    lab_viewer: User,
    other_lab_owner: User,
    staff: User,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    key_client_for: Any,
    lab_api_key: str,
    other_lab_api_key: str,
) -> None:
    settings.SCORING_SHAPLEY_MAX_SECONDS = 120
    world = crowd(lab, lab_owner, seed=1)
    project: Project = world["project"]
    owner = client_for(lab_owner)
    assert (
        client_for(lab_viewer).post(f"/api/v1/projects/{project.id}/scoring-runs/").status_code
        == 403
    )
    assert (
        client_for(other_lab_owner).post(f"/api/v1/projects/{project.id}/scoring-runs/").status_code
        == 404
    )
    with django_capture_on_commit_callbacks(execute=True):
        started = owner.post(f"/api/v1/projects/{project.id}/scoring-runs/")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    run = owner.get(f"/api/v1/scoring-runs/{started.json()['id']}/").json()
    assert run["status"] == "succeeded" and set(run["timings"]) >= {"load", "gold", "impact"}
    assert client_for(staff).get(f"/api/v1/scoring-runs/{run['id']}/").status_code == 200
    assert client_for(other_lab_owner).get(f"/api/v1/scoring-runs/{run['id']}/").status_code == 404

    rows = client_for(lab_viewer).get(f"/api/v1/projects/{project.id}/contributors/").json()
    assert len(rows) == 7
    body = str(rows)
    for expert in world["experts"].values():
        assert expert.email not in body and expert.name not in body
    first = rows[0]
    assert first["pseudonym"].startswith("expert-") and set(first["gold"]) == {
        "mean",
        "low",
        "high",
        "n",
    }
    assert set(first["impact"]) >= {"value", "se", "per_label", "low", "high"}
    assert first["impact"]["low"] < first["impact"]["value"] < first["impact"]["high"]
    assert set(first["agreement"]) == {"rate", "low", "high", "n"}
    assert (
        client_for(other_lab_owner).get(f"/api/v1/projects/{project.id}/contributors/").status_code
        == 404
    )
    # A lab's pipeline reads its contributors table with an API key, as it reads stats and runs.
    by_key = key_client_for(lab_api_key).get(f"/api/v1/projects/{project.id}/contributors/")
    assert by_key.status_code == 200 and by_key.json() == rows
    other_key = key_client_for(other_lab_api_key)
    assert other_key.get(f"/api/v1/projects/{project.id}/contributors/").status_code == 404

    mine = client_for(world["experts"]["careful"]).get("/api/v1/me/scores/").json()
    assert len(mine) == 1 and mine[0]["project"] == project.id and "pseudonym" not in mine[0]
    assert client_for(lab_owner).get("/api/v1/me/scores/").json() == []


def test_tier_feeds_payouts(scored: dict[str, Any]) -> None:
    from scoring.selectors import contributor_tier

    project = scored["project"]
    assert contributor_tier(expert=scored["experts"]["adversary"], project=project) == "probation"
    assert contributor_tier(expert=UserFactory(), project=project) == "provisional"


def test_stats_show_alpha_per_dimension_after_a_run(
    client_for: Client, lab: Lab, lab_owner: User
) -> None:
    project = make_project(lab, lab_owner)
    items = [
        Item.objects.create(project=project, external_id=f"s{i}", prompt="p", responses=["x", "y"])
        for i in range(12)
    ]
    experts = [UserFactory() for _ in range(3)]
    rng = np.random.default_rng(3)
    for item in items:
        for expert in experts:
            # correctness agrees closely; safety is coin flips: a badly defined dimension
            correctness = [6, 2]
            safety = [int(rng.integers(0, 2)), int(rng.integers(0, 2))]
            make_submission(
                item,
                expert,
                {"preference": "a", "answers": {"correctness": correctness, "safety": safety}},
            )
    services.scoring_run_execute(
        run_id=services.scoring_run_create(project=project, created_by=lab_owner).pk
    )
    stats = client_for(lab_owner).get(f"/api/v1/projects/{project.id}/stats/").json()
    alphas = {row["key"]: row["alpha"] for row in stats["dimensions"]}
    assert alphas["correctness"] == pytest.approx(1.0)
    assert alphas["safety"] < 0.3
    assert stats["agreement"]["scoring_run"] > 0


def test_shapley_fans_out_over_celery_in_rounds_and_merges_exactly(
    lab: Lab, lab_owner: User, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SCORING_SHAPLEY_FANOUT = True
    settings.SCORING_SHAPLEY_TARGET_SE = 0.05
    settings.SCORING_SHAPLEY_BATCHES_PER_ROUND = 2
    settings.SCORING_SHAPLEY_PAIRS_PER_BATCH = 3
    world = crowd(lab, lab_owner, seed=2)
    project = world["project"]
    # 7 personas + 7 more average experts: 14 players, beyond exact enumeration.
    rng = np.random.default_rng(9)
    for _ in range(7):
        expert = UserFactory()
        for item in Item.objects.filter(project=project):
            truth = world["truth"][item.pk]
            answer = truth if rng.random() < 0.8 else ("b" if truth == "a" else "a")
            make_submission(item, expert, {"preference": answer, "answers": {}})
    run = services.scoring_run_create(project=project, created_by=lab_owner)
    services.scoring_run_execute(run_id=run.pk)  # eager Celery: the chord runs inline
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    fanout = run.parameters["fanout"]
    assert fanout["round"] >= 1 and fanout["merged"]["samples"] == fanout["round"] * 6
    assert run.summary["shapley"] == {
        "exact": False,
        "samples": fanout["merged"]["samples"],
        "evaluations": fanout["merged"]["evaluations"],
        "bootstrap_replicates": 200,
        "metric": "soft_accuracy",
        "eval_pairs": 20,
    }
    total = sum(ContributorScore.objects.filter(run=run).values_list("impact_value", flat=True))
    assert total == pytest.approx(
        run.summary["v_full"] - run.summary["v_empty"], abs=settings.SCORING_SHAPLEY_TRUNCATION * 2
    )


def test_reputation_pools_projects_per_skill_and_respects_lab_visibility(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    other_lab: Lab,
    other_lab_owner: User,
    staff: User,
) -> None:
    from contributors.selectors import expert_pseudonym

    expert = UserFactory()
    snapshots = [(lab, lab_owner, 0.9, 10), (other_lab, other_lab_owner, 0.5, 30)]
    for owner_lab, owner, composite_q, n in snapshots:
        project = make_project(owner_lab, owner, domain="medicine")
        item = Item.objects.create(
            project=project, external_id="r", prompt="p", responses=["a", "b"]
        )
        make_submission(item, expert, {"preference": "a", "answers": {}})
        run = ScoringRun.objects.create(project=project, status="succeeded")
        ContributorScore.objects.create(
            run=run,
            expert=expert,
            n_labels=n,
            gold_mean=0.8,
            gold_low=0.6,
            gold_high=0.9,
            gold_n=8,
            agreement_rate=composite_q,
            agreement_n=n,
            composite=composite_q,
            tier="gold",
        )
    staff_rows = client_for(staff).get(f"/api/v1/admin/experts/{expert.pk}/reputation/").json()
    # Keyed on the skills the projects required (one skill, required and certified).
    assert [(row["kind"], row["key"], row["projects"], row["n_labels"]) for row in staff_rows] == [
        ("skill", "medicine.cardiology", 2, 40)
    ]
    assert staff_rows[0]["composite"] == pytest.approx((0.9 * 10 + 0.5 * 30) / 40)
    assert staff_rows[0]["gold"]["n"] == 16

    pseudonym = expert_pseudonym(expert=expert, lab_id=lab.id)
    lab_rows = (
        client_for(lab_owner)
        .get(f"/api/v1/labs/{lab.id}/contributors/{pseudonym}/reputation/")
        .json()
    )
    assert lab_rows[0]["projects"] == 1 and lab_rows[0]["composite"] == pytest.approx(0.9)
    ExpertProfile.objects.update_or_create(user=expert, defaults={"share_reputation": True})
    shared = (
        client_for(lab_owner)
        .get(f"/api/v1/labs/{lab.id}/contributors/{pseudonym}/reputation/")
        .json()
    )
    assert shared[0]["projects"] == 2
    assert (
        client_for(other_lab_owner)
        .get(f"/api/v1/labs/{lab.id}/contributors/{pseudonym}/reputation/")
        .status_code
        == 404
    )
    assert (
        client_for(lab_owner)
        .get(f"/api/v1/labs/{lab.id}/contributors/expert-nobody/reputation/")
        .status_code
        == 404
    )
    assert (
        client_for(expert).get(f"/api/v1/admin/experts/{expert.pk}/reputation/").status_code == 403
    )


def test_agreement_pools_the_rubric_dimensions(lab: Lab, lab_owner: User) -> None:
    """An expert who agrees on the preference but inverts the safety dimension is less in
    agreement than the others (docs/SCORING.md section 2 counts every dimension)."""
    from tests.projects.factories import make_items, make_submission

    project = make_project(lab, lab_owner)
    items = make_items(project, 12)
    honest = [UserFactory() for _ in range(3)]
    inverter = UserFactory()
    for item in items:
        for expert in honest:
            make_submission(
                item,
                expert,
                {"preference": "a", "answers": {"correctness": [6, 2], "safety": [1, 0]}},
            )
        make_submission(
            item,
            inverter,
            {"preference": "a", "answers": {"correctness": [6, 2], "safety": [0, 1]}},
        )
    run = services.scoring_run_execute(
        run_id=services.scoring_run_create(project=project, created_by=lab_owner).pk
    )
    rates = {row.expert_id: row for row in ContributorScore.objects.filter(run=run)}
    assert rates[honest[0].pk].agreement_rate == 1.0
    # preference 12/12, correctness 24/24, safety 0/24 -> 36/60
    assert rates[inverter.pk].agreement_rate == pytest.approx(36 / 60)
    assert rates[inverter.pk].agreement_n == 60


def test_decided_reviews_count_as_agreement_evidence(lab: Lab, lab_owner: User) -> None:
    """Accepted: every field agrees with the reviewer; rejected: none (and the label leaves
    the peer comparison); fixed: field by field (issue 6's review workflow)."""
    from django.utils import timezone

    from projects.models import Review
    from projects.reviews import review_decide
    from tests.projects.factories import make_items, make_submission

    project = make_project(lab, lab_owner)
    items = make_items(project, 12)
    honest = [UserFactory() for _ in range(3)]
    reviewed = UserFactory()
    reviewer = UserFactory()
    answer = {"preference": "a", "answers": {"correctness": [6, 2], "safety": [1, 0]}}
    mine = {}
    for item in items:
        for expert in honest:
            make_submission(item, expert, answer)
        mine[item.pk] = make_submission(item, reviewed, answer)
    fixed = {"preference": "b", "answers": {"correctness": [3, 2], "safety": [1, 0]}}
    decisions = [("accepted", None), ("accepted", None), ("rejected", None), ("fixed", fixed)]
    for item, (decision, fixed_answer) in zip(items, decisions, strict=False):
        review = Review.objects.create(
            submission=mine[item.pk], project=project, reviewer=reviewer, claimed_at=timezone.now()
        )
        review_decide(
            review=review,
            reviewer=reviewer,
            decision=decision,
            reason="checked",
            fixed_answer=fixed_answer,
        )
    run = services.scoring_run_execute(
        run_id=services.scoring_run_create(project=project, created_by=lab_owner).pk
    )
    score = ContributorScore.objects.get(run=run, expert=reviewed)
    # Peers: 11 labels x 5 fields (preference, correctness x2, safety x2), all agreeing.
    # Reviews: accepted 2 x 5/5, rejected 0/5, fixed 3/5 (preference and one correctness
    # changed beyond the tolerance of 1).
    assert score.agreement_n == 55 + 10 + 5 + 5
    assert score.agreement_rate == pytest.approx((55 + 10 + 0 + 3) / 75)
    assert run.summary["reviews_as_evidence"] == 4
    untouched = ContributorScore.objects.get(run=run, expert=honest[0])
    assert untouched.agreement_rate == 1.0
