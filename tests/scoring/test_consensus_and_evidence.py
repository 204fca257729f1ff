"""Consensus as specified (quality-weighted likert, Bradley-Terry rankings and pairwise
strengths with intervals), the evidence that stands in for gold (review outcomes, Dawid-Skene
accuracy), gold by component with its age weight, and an inverted preference capped at
probation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from marketplace.models import Lab, User
from projects.models import GoldAnswer, Item, Project, QualityStop, Review
from scoring import services
from scoring.engine.gold import GoldDimension, chance_level
from scoring.models import ContributorScore, ItemConsensus, ScoringRun
from scoring.services.consensus import weighted_consensus
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_project, make_submission

pytestmark = pytest.mark.django_db

LIKERT = {
    "dimensions": [
        {"key": "correctness", "label": "Correct", "kind": "likert", "min": 1, "max": 7},
    ],
    "instructions": "Rate it.",
}


def run_of(project: Project, owner: User) -> ScoringRun:
    run = services.scoring_run_create(project=project, created_by=owner)
    services.scoring_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def scores_of(run: ScoringRun) -> dict[int, ContributorScore]:
    return {row.expert_id: row for row in ContributorScore.objects.filter(run=run)}


def test_chance_levels_follow_the_scale() -> None:
    assert chance_level(GoldDimension("s", "binary")) == 0.5
    assert chance_level(GoldDimension("c", "choice", options=4)) == 0.25
    # 7 points within one step: (7 + 2 * 6) / 49; 5 points: (5 + 2 * 4) / 25.
    assert chance_level(GoldDimension("x", "likert", low=1, high=7)) == pytest.approx(19 / 49)
    assert chance_level(GoldDimension("y", "likert", low=1, high=5)) == pytest.approx(13 / 25)


def test_weighted_consensus_leans_to_the_reliable() -> None:
    mean, spread, _ = weighted_consensus([6, 6, 1], [1.0, 1.0, 0.05], "likert")
    assert 5.8 < mean < 6.0 and spread > 0  # the unweighted mean would be 4.33
    winner, share, _ = weighted_consensus([1, 0, 0], [1.0, 0.1, 0.1], "binary")
    assert winner == 1 and share == pytest.approx(1 / 1.2, abs=1e-6)


def test_rating_consensus_is_quality_weighted_with_its_spread(
    lab: Lab, lab_owner: User, key_client_for: Any, lab_api_key: str
) -> None:
    project = make_project(lab, lab_owner, task_type="rating", rubric=LIKERT)
    rubric = project.rubric_versions.get()
    reliable = [UserFactory() for _ in range(3)]
    careless = UserFactory()
    # Gold: the reliable three rate exactly, the careless one is wrong every time.
    for index in range(6):
        gold = Item.objects.create(
            project=project, prompt=f"g{index}", responses=["r"], is_gold=True
        )
        GoldAnswer.objects.create(
            item=gold, answer={"answers": {"correctness": 6}}, rubric_version=rubric
        )
        for expert in reliable:
            make_submission(gold, expert, {"answers": {"correctness": 6}})
        make_submission(gold, careless, {"answers": {"correctness": 1}})
    item = Item.objects.create(project=project, prompt="work", responses=["r"])
    for expert in reliable:
        make_submission(item, expert, {"answers": {"correctness": 5}})
    make_submission(item, careless, {"answers": {"correctness": 1}})
    run = run_of(project, lab_owner)
    row = ItemConsensus.objects.get(run=run, item=item, target="likert:correctness")
    assert row.value["n"] == 4
    assert row.value["mean"] > 4.8  # the unweighted mean is 4.0
    assert row.value["spread"] > 0 and 0 < row.confidence < 1
    # The ratings export carries the weighted consensus and its spread.
    response = key_client_for(lab_api_key).get(
        f"/api/v1/projects/{project.pk}/export/", {"format": "ratings"}
    )
    records = [
        __import__("json").loads(line) for line in b"".join(response.streaming_content).splitlines()
    ]
    exported = records[0]["dimensions"]["correctness"]
    assert exported["weighted"] is True and exported["consensus"] == row.value["mean"]
    assert exported["spread"] == row.value["spread"]


def test_rankings_are_bradley_terry_with_intervals_and_the_export_follows(
    lab: Lab, lab_owner: User, key_client_for: Any, lab_api_key: str
) -> None:
    project = make_project(
        lab, lab_owner, task_type="ranking", rubric={"dimensions": [], "instructions": "Rank."}
    )
    item = Item.objects.create(project=project, prompt="p", responses=["x", "y", "z"])
    for ranking in ([2, 0, 1], [2, 0, 1], [2, 1, 0], [0, 2, 1]):
        make_submission(item, UserFactory(), {"ranking": ranking, "answers": {}})
    run = run_of(project, lab_owner)
    order = ItemConsensus.objects.get(run=run, item=item, target="ranking")
    assert order.value == [2, 0, 1]
    strengths = ItemConsensus.objects.get(run=run, item=item, target="ranking_strengths").value
    assert (
        strengths["log_strength"][2] > strengths["log_strength"][0] > strengths["log_strength"][1]
    )
    for pair in strengths["beats_next"]:
        assert pair["low"] < pair["p"] < pair["high"] and pair["p"] > 0.5
    response = key_client_for(lab_api_key).get(
        f"/api/v1/projects/{project.pk}/export/", {"format": "dpo"}
    )
    records = [line for line in b"".join(response.streaming_content).splitlines() if line]
    assert b'"chosen": "z"' in records[0]


def test_pairwise_items_get_a_strength_with_an_interval(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner, rubric={"dimensions": [], "instructions": "Pick."})
    item = Item.objects.create(project=project, prompt="p", responses=["x", "y"])
    for preference in ("a", "a", "a", "b"):
        make_submission(item, UserFactory(), {"preference": preference, "answers": {}})
    run = run_of(project, lab_owner)
    strength = ItemConsensus.objects.get(run=run, item=item, target="strength").value
    assert 0.5 < strength["p_a"] < 0.75  # 3 wins of 4, pulled in by the prior
    assert strength["low"] < strength["p_a"] < strength["high"]


def test_demonstrations_earn_a_tier_from_review_outcomes(lab: Lab, lab_owner: User) -> None:
    project = make_project(
        lab, lab_owner, task_type="demonstration", rubric={"dimensions": [], "instructions": "W"}
    )
    good, sloppy, new = UserFactory(), UserFactory(), UserFactory()
    for index in range(4):
        item = Item.objects.create(project=project, prompt=f"p{index}", responses=[])
        for expert, status in ((good, "accepted"), (sloppy, "rejected")):
            submission = make_submission(item, expert, {"text": "answer"})
            Review.objects.create(submission=submission, project=project, status=status)
        make_submission(item, new, {"text": "answer"})
    scores = scores_of(run_of(project, lab_owner))
    assert scores[good.pk].reviews["accepted"] == 4 and scores[good.pk].tier != "provisional"
    assert scores[good.pk].composite > 0.8
    assert scores[sloppy.pk].tier == "probation" and scores[sloppy.pk].reviews["rejected"] == 4
    assert scores[new.pk].tier == "provisional" and scores[new.pk].reviews is None


def test_ratings_without_gold_are_tiered_by_consensus_accuracy(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner, task_type="rating", rubric=LIKERT)
    experts = [UserFactory() for _ in range(4)]
    spammer = UserFactory()
    for index in range(15):
        item = Item.objects.create(project=project, prompt=f"p{index}", responses=["r"])
        value = 1 + index % 7
        for expert in experts:
            make_submission(item, expert, {"answers": {"correctness": value}})
        make_submission(item, spammer, {"answers": {"correctness": 1 + (index * 3 + 2) % 7}})
    scores = scores_of(run_of(project, lab_owner))
    for expert in experts:
        assert scores[expert.pk].tier in ("gold", "platinum"), scores[expert.pk].composite
        assert scores[expert.pk].gold_mean is None  # no gold: the tier rests on consensus
    assert scores[spammer.pk].composite < min(scores[e.pk].composite for e in experts)


def test_gold_answers_weigh_less_as_they_age_and_each_component_has_its_interval(
    lab: Lab, lab_owner: User
) -> None:
    project = make_project(lab, lab_owner)  # pairwise; correctness (likert 1-7), safety (binary)
    project.gold_half_life_days = 30
    project.tiers_by_dimension = True
    project.save()
    rubric = project.rubric_versions.get()
    expert = UserFactory()
    for index in range(6):
        item = Item.objects.create(
            project=project, prompt=f"g{index}", responses=["x", "y"], is_gold=True
        )
        gold = GoldAnswer.objects.create(
            item=item,
            answer={"preference": "a", "answers": {"correctness": [6, 2], "safety": [1, 0]}},
            rubric_version=rubric,
        )
        if index < 3:
            GoldAnswer.objects.filter(pk=gold.pk).update(
                created_at=gold.created_at - timedelta(days=30)
            )
        make_submission(
            item,
            expert,
            {"preference": "a", "answers": {"correctness": [6, 3], "safety": [0, 1]}},
        )
    score = scores_of(run_of(project, lab_owner))[expert.pk]
    assert score.gold_n == 6 and score.gold_n_effective == pytest.approx(4.5)
    dimensions = score.dimensions
    assert dimensions["preference"]["gold"]["n"] == 6
    assert dimensions["correctness"]["gold"]["n"] == 12  # one trial per rated response
    assert dimensions["correctness"]["gold"]["mean"] > 0.8
    assert dimensions["safety"]["gold"]["mean"] < 0.2  # inverted on safety
    for key in ("preference", "correctness", "safety"):
        gold = dimensions[key]["gold"]
        assert gold["low"] <= gold["mean"] <= gold["high"]
        assert "tier" in dimensions[key]
    assert dimensions["safety"]["tier"] in ("probation", "bronze")
    # Inverted on a component with confidence: never above probation, and flagged for admins.
    assert score.tier == "probation"
    assert {"flag": "inverted", "components": ["safety"]} in score.flags


def test_an_inverted_preference_never_reaches_bronze(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner)
    rubric = project.rubric_versions.get()
    adversary = UserFactory()
    for index in range(8):
        item = Item.objects.create(
            project=project, prompt=f"g{index}", responses=["x", "y"], is_gold=True
        )
        answers = {"correctness": [6, 2], "safety": [1, 0]}
        GoldAnswer.objects.create(
            item=item, answer={"preference": "a", "answers": answers}, rubric_version=rubric
        )
        # Every dimension right, the preference always flipped: overall gold mean ~0.67.
        make_submission(item, adversary, {"preference": "b", "answers": answers})
    score = scores_of(run_of(project, lab_owner))[adversary.pk]
    assert score.gold_mean > 0.6
    assert score.tier == "probation"


def test_a_run_where_every_label_is_gold_succeeds(lab: Lab, lab_owner: User) -> None:
    """Issue 17: a scoring run over gold answers only used to fail with a 500."""
    project = make_project(lab, lab_owner)
    rubric = project.rubric_versions.get()
    for index in range(3):
        item = Item.objects.create(
            project=project, prompt=f"g{index}", responses=["x", "y"], is_gold=True
        )
        GoldAnswer.objects.create(item=item, answer={"preference": "a"}, rubric_version=rubric)
        make_submission(item, UserFactory(), {"preference": "a", "answers": {}})
    run = run_of(project, lab_owner)
    assert ContributorScore.objects.filter(run=run, impact_value__isnull=True).count() == 3


def test_without_gold_a_random_rater_is_stopped_on_agreement_at_a_run(
    lab: Lab, lab_owner: User
) -> None:
    """Rating work without gold: the run tests each expert's agreement with the others
    against what random answers would agree on, and stops a random rater (forfeit, discount),
    never the consistent raters."""
    project = make_project(lab, lab_owner, task_type="rating", rubric=LIKERT)
    raters = [UserFactory() for _ in range(4)]
    spammer = UserFactory()
    import random

    rng = random.Random(4)
    for index in range(60):
        item = Item.objects.create(project=project, prompt=f"p{index}", responses=["r"])
        value = 1 + index % 7
        for rater in raters:
            make_submission(item, rater, {"answers": {"correctness": value}})
        make_submission(item, spammer, {"answers": {"correctness": rng.randint(1, 7)}})
    run_of(project, lab_owner)
    stop = QualityStop.objects.get()
    assert stop.expert_id == spammer.pk and stop.evidence["source"] == "agreement"
    assert stop.evidence["test"] == "near_chance_agreement"


def test_demonstrations_rejected_in_review_stop_their_author_at_a_run(
    lab: Lab, lab_owner: User
) -> None:
    project = make_project(
        lab, lab_owner, task_type="demonstration", rubric={"dimensions": [], "instructions": "W"}
    )
    good, bad = UserFactory(), UserFactory()
    for index in range(6):
        item = Item.objects.create(project=project, prompt=f"p{index}", responses=[])
        for author, status in ((good, "accepted"), (bad, "rejected")):
            submission = make_submission(item, author, {"text": "answer"})
            Review.objects.create(submission=submission, project=project, status=status)
    run_of(project, lab_owner)
    stop = QualityStop.objects.get()
    assert stop.expert_id == bad.pk and stop.evidence["source"] == "reviews"
    assert stop.evidence["reviews"] == {"rejected": 6}


def test_a_reviewer_who_accepts_everything_is_flagged_and_discounted(
    lab: Lab, lab_owner: User
) -> None:
    project = make_project(
        lab, lab_owner, task_type="demonstration", rubric={"dimensions": [], "instructions": "W"}
    )
    strict, stamp = UserFactory(), UserFactory()
    authors = [UserFactory() for _ in range(3)]
    for index in range(12):
        item = Item.objects.create(project=project, prompt=f"p{index}", responses=[])
        for number, author in enumerate(authors):
            submission = make_submission(item, author, {"text": "answer"})
            reviewer = stamp if (index + number) % 2 else strict
            status = "accepted" if reviewer is stamp or number == 0 else "rejected"
            Review.objects.create(
                submission=submission, project=project, status=status, reviewer=reviewer
            )
    run = run_of(project, lab_owner)
    reviewers = run.summary["reviewers"]
    assert reviewers[str(stamp.pk)]["flag"] == "accepts_everything"
    assert reviewers[str(stamp.pk)]["counts_as_evidence"] is False
    assert reviewers[str(strict.pk)]["flag"] is None
    assert run.summary["reviews_discounted"] == reviewers[str(stamp.pk)]["reviews"]
