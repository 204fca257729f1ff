"""The scoring engine (no Django): definitions of docs/SCORING.md, checked against brute force,
closed forms, public truth-inference data and the `krippendorff` package."""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.engine.agreement import krippendorff_alpha, leave_one_out_agreement
from scoring.engine.bradley_terry import bradley_terry
from scoring.engine.dawid_skene import dawid_skene
from scoring.engine.gold import GoldDimension, gold_item_score, gold_posterior
from scoring.engine.majority import majority_vote
from scoring.engine.reward_model import featurise, fit_reward_model, pairwise_accuracy
from scoring.engine.shapley import (
    FunctionUtility,
    merge_batches,
    permutation_batch,
    shapley_exact,
    shapley_sampled,
)
from scoring.engine.tiers import (
    FlagInputs,
    composite,
    flags_for,
    tier_for,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "truth-inference"
needs_data = pytest.mark.skipif(
    not DATA.exists(),
    reason="../shared/datasets/truth-inference is not beside this clone (CI has it)",
)


def brute_force_shapley(function, n: int) -> np.ndarray:
    phi = np.zeros(n)
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        mask = np.zeros(n, dtype=bool)
        previous = function(mask.copy())
        for player in order:
            mask[player] = True
            value = function(mask.copy())
            phi[player] += value - previous
            previous = value
    return phi / len(orders)


@pytest.mark.parametrize("seed", range(5))
def test_exact_enumeration_equals_brute_force_on_random_games(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5
    table = rng.normal(size=2**n)

    def game(mask: np.ndarray) -> float:
        return float(table[int(np.dot(mask.astype(int), 1 << np.arange(n)))])

    exact = shapley_exact(FunctionUtility(game), n)
    np.testing.assert_allclose(exact.values, brute_force_shapley(game, n), atol=1e-12)
    assert exact.values.sum() == pytest.approx(exact.v_full - exact.v_empty)


def _within_three_se(estimate, expected: np.ndarray) -> None:
    tolerance = 3 * estimate.standard_errors + 1e-9
    assert np.all(np.abs(estimate.values - expected) <= tolerance), (estimate.values, expected)


def test_sampled_estimator_on_closed_form_games() -> None:
    n = 16
    weights = np.linspace(-0.5, 1.0, n)
    additive = shapley_sampled(
        FunctionUtility(lambda m: float(weights[m].sum())), n, seed=1, max_pairs=40
    )
    np.testing.assert_allclose(additive.values, weights, atol=1e-9)  # no variance at all

    symmetric = shapley_sampled(
        FunctionUtility(lambda m: float(m.sum()) ** 2), n, seed=2, max_pairs=200
    )
    _within_three_se(symmetric, np.full(n, n**2 / n))
    assert symmetric.values.sum() == pytest.approx(n**2)  # efficiency, exactly

    null = weights.copy()
    null[3] = 0.0
    with_null = shapley_sampled(
        FunctionUtility(lambda m: float(null[m].sum()) ** 2), n, seed=3, max_pairs=200
    )
    assert abs(with_null.values[3]) <= 3 * with_null.standard_errors[3] + 1e-12

    team = np.zeros(n, dtype=bool)
    team[[2, 5, 7, 11]] = True
    unanimity = shapley_sampled(
        FunctionUtility(lambda m: float(np.all(m[team]))),
        n,
        seed=4,
        max_pairs=400,
        target_standard_error=0.01,
    )
    expected = np.where(team, 1 / 4, 0.0)
    _within_three_se(unanimity, expected)
    assert unanimity.values.sum() == pytest.approx(1.0)


def test_batches_merge_exactly_whatever_the_split() -> None:
    n = 14
    weights = np.random.default_rng(0).normal(size=n)
    utility = FunctionUtility(lambda m: float(np.tanh(weights[m].sum())))
    v_full = utility.evaluate(np.ones(n, dtype=bool), None)[0]
    v_empty = utility.evaluate(np.zeros(n, dtype=bool), None)[0]
    parts = [
        permutation_batch(utility, n, pairs=5, seed=s, v_empty=v_empty, v_full=v_full)
        for s in range(4)
    ]
    one = merge_batches(parts, v_empty=v_empty, v_full=v_full)
    other_order = merge_batches(
        [parts[2] + parts[0], parts[3] + parts[1]], v_empty=v_empty, v_full=v_full
    )
    np.testing.assert_allclose(one.values, other_order.values, atol=1e-12)
    np.testing.assert_allclose(one.standard_errors, other_order.standard_errors, atol=1e-12)
    assert one.samples == 20


def test_batches_with_eval_bootstraps_merge_exactly_and_survive_json() -> None:
    from scoring.engine.shapley import PermutationBatch
    from scoring.engine.synthetic import preference_crowd
    from scoring.engine.utilities import NewtonStepUtility

    owners, train, evaluation = preference_crowd(
        contributors=14, per_contributor=10, dimension=6, noisy={0}, seed=1, evaluation_size=60
    )
    utility = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    v_full = utility.evaluate(np.ones(14, dtype=bool), None)[0]
    parts = [
        permutation_batch(
            utility, 14, pairs=3, seed=s, v_empty=0.5, v_full=v_full, bootstrap_replicates=30
        )
        for s in range(4)
    ]
    assert parts[0].replicate_sums.shape == (14, 30)
    one = merge_batches(parts, v_empty=0.5, v_full=v_full)
    shipped = [PermutationBatch.from_dict(part.as_dict()) for part in parts]
    other = merge_batches(
        [shipped[3] + shipped[1], shipped[0] + shipped[2]], v_empty=0.5, v_full=v_full
    )
    np.testing.assert_allclose(one.values, other.values, atol=1e-12)
    np.testing.assert_allclose(one.standard_errors, other.standard_errors, atol=1e-12)
    assert one.eval_standard_errors is not None and (one.eval_standard_errors > 0).all()
    assert one.sampling_standard_errors is not None
    np.testing.assert_allclose(
        one.standard_errors**2, one.sampling_standard_errors**2 + one.eval_standard_errors**2
    )


def test_truncation_skips_evaluations_without_changing_a_saturated_game() -> None:
    n = 20
    utility = FunctionUtility(lambda m: min(float(m.sum()), 3.0))
    full = shapley_sampled(utility, n, seed=5, max_pairs=50, truncation_tolerance=1e-9)
    assert full.values.sum() == pytest.approx(3.0)
    assert full.evaluations < 50 * 2 * n


def _load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    with open(DATA / name / "answer.csv") as handle:
        rows = list(csv.DictReader(handle))
    with open(DATA / name / "truth.csv") as handle:
        truth = {row["question"]: row["truth"] for row in csv.DictReader(handle)}
    questions = sorted({row["question"] for row in rows})
    workers = sorted({row["worker"] for row in rows})
    labels = sorted({row["answer"] for row in rows} | set(truth.values()))
    qi = {q: i for i, q in enumerate(questions)}
    wi = {w: i for i, w in enumerate(workers)}
    li = {v: i for i, v in enumerate(labels)}
    items = np.array([qi[row["question"]] for row in rows])
    who = np.array([wi[row["worker"]] for row in rows])
    answers = np.array([li[row["answer"]] for row in rows])
    gold = np.array([li[truth[q]] if q in truth else -1 for q in questions])
    return items, who, answers, gold, len(questions), len(workers), len(labels)


@needs_data
@pytest.mark.parametrize(
    ("name", "reference"),
    [("snow2008/rte", 92.75), ("snow2008/temp", 94.16), ("zheng2017/d_product", 93.97)],
)
def test_dawid_skene_matches_the_published_accuracy(name: str, reference: float) -> None:
    items, who, answers, gold, n_items, n_workers, n_classes = _load(name)
    result = dawid_skene(
        items, who, answers, n_items=n_items, n_workers=n_workers, n_classes=n_classes
    )
    known = gold >= 0
    accuracy = 100 * float((result.labels[known] == gold[known]).mean())
    assert abs(accuracy - reference) <= 0.5, accuracy
    vote = majority_vote(items, answers, n_items=n_items, n_classes=n_classes)
    assert accuracy >= 100 * float((vote.labels[known] == gold[known]).mean())


@needs_data
@pytest.mark.parametrize("name", ["snow2008/rte", "snow2008/temp"])
def test_krippendorff_alpha_equals_the_package(name: str) -> None:
    krippendorff = pytest.importorskip(
        "krippendorff", reason="the dev extra `krippendorff` is missing"
    )
    items, who, answers, *_, n_items, n_workers, _ = _load(name)
    matrix = np.full((n_workers, n_items), np.nan)
    matrix[who, items] = answers
    for level in ("nominal", "ordinal", "interval"):
        ours = krippendorff_alpha(matrix, level)
        theirs = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        assert abs(ours - theirs) <= 1e-12, (level, ours, theirs)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_krippendorff_alpha_equals_the_package_on_random_likert_data(seed: int) -> None:
    krippendorff = pytest.importorskip("krippendorff")
    rng = np.random.default_rng(seed)
    matrix = rng.integers(1, 6, size=(6, 25)).astype(float)
    matrix[rng.random(matrix.shape) < 0.3] = np.nan
    if np.unique(matrix[~np.isnan(matrix)]).size < 2:
        return
    for level in ("nominal", "ordinal", "interval"):
        ours = krippendorff_alpha(matrix, level)
        theirs = krippendorff.alpha(reliability_data=matrix, level_of_measurement=level)
        assert abs(ours - theirs) <= 1e-12 or (math.isnan(ours) and math.isnan(theirs))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_relabelling_contributors_permutes_the_outputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items, n_workers = 30, 6
    items = np.repeat(np.arange(n_items), 4)
    who = np.concatenate([rng.permutation(n_workers)[:4] for _ in range(n_items)])
    answers = rng.integers(0, 2, size=items.size)
    relabel = rng.permutation(n_workers)
    first = dawid_skene(items, who, answers, n_items=n_items, n_workers=n_workers, n_classes=2)
    second = dawid_skene(
        items, relabel[who], answers, n_items=n_items, n_workers=n_workers, n_classes=2
    )
    np.testing.assert_allclose(first.posteriors, second.posteriors, atol=1e-9)
    np.testing.assert_allclose(first.confusion, second.confusion[relabel], atol=1e-9)
    a = leave_one_out_agreement(
        items, who, answers, n_items=n_items, n_workers=n_workers, n_classes=2
    )
    b = leave_one_out_agreement(
        items, relabel[who], answers, n_items=n_items, n_workers=n_workers, n_classes=2
    )
    np.testing.assert_array_equal(a.n, b.n[relabel])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), max_size=40))
def test_gold_posterior_is_a_probability_with_its_evidence(scores: list[float]) -> None:
    posterior = gold_posterior(scores)
    assert 0 <= posterior.low <= posterior.mean <= posterior.high <= 1
    assert posterior.n == len(scores)
    duplicate = gold_posterior(scores + scores[-1:]) if scores else posterior
    assert duplicate.n == len(scores) + (1 if scores else 0)


def test_gold_item_score_follows_the_definition() -> None:
    dims = [
        GoldDimension("correctness", "likert", weight=2.0, tolerance=1),
        GoldDimension("safety", "binary"),
    ]
    gold = {"preference": "a", "answers": {"correctness": [6, 2], "safety": [1, 0]}}
    assert gold_item_score(answer=gold, gold=gold, dimensions=dims) == 1.0
    tie = {"preference": "tie", "answers": {"correctness": [7, 2], "safety": [1, 1]}}
    # preference 0.5 (w1) + correctness 1.0 (w2) + safety 0.5 (w1) -> 3.0 / 4
    assert gold_item_score(answer=tie, gold=gold, dimensions=dims) == pytest.approx(0.75)


def test_bradley_terry_recovers_the_order() -> None:
    rng = np.random.default_rng(0)
    true = np.exp(rng.normal(size=40))
    a, b = rng.integers(0, 40, size=(2, 5000))
    keep = a != b
    a, b = a[keep], b[keep]
    a_wins = rng.random(a.size) < true[a] / (true[a] + true[b])
    result = bradley_terry(np.where(a_wins, a, b), np.where(a_wins, b, a), n_items=40)
    assert result.converged
    correlation = np.corrcoef(np.log(result.strength), np.log(true))[0, 1]
    assert correlation > 0.95


def test_bradley_terry_solves_its_score_equations_also_for_unbeaten_items() -> None:
    from scipy.optimize import brentq
    from scipy.special import expit

    rng = np.random.default_rng(1)
    winners = rng.integers(0, 30, size=400)
    losers = (winners + rng.integers(1, 30, size=400)) % 30
    winners[:40] = 30  # item 30 never loses: only the prior keeps it finite
    result = bradley_terry(winners, losers, n_items=31, prior_games=0.1)
    assert result.converged and np.all(np.isfinite(result.strength))
    # At the optimum, per item: expected minus observed wins balances the prior's pull (0.1
    # virtual games won and lost against strength 1), computed here independently. Strengths
    # come normalised (mean log 0); the pairwise terms sum to 0 over items, so the prior's
    # terms must too, which fixes the unnormalised shift.
    log_strength = np.log(result.strength)
    shift = brentq(lambda c: float(np.sum(2 * expit(log_strength + c) - 1)), -10, 10)
    x = log_strength + shift
    p_upset = expit(x[losers] - x[winners])
    gradient = np.bincount(losers, p_upset, 31) - np.bincount(winners, p_upset, 31)
    residual = gradient + 0.1 * (2 * expit(x) - 1)
    assert np.max(np.abs(residual)) < 1e-5


def test_reward_model_learns_a_preference_from_text() -> None:
    good = [f"Ask your doctor before changing dose {i}, it is safe to check." for i in range(60)]
    bad = [f"Just double the dose {i}, never mind the doctor." for i in range(60)]
    diffs = featurise(good) - featurise(bad)
    model = fit_reward_model(diffs[:40], l2=0.1)
    assert pairwise_accuracy(model, diffs[40:]) == 1.0
    warm = fit_reward_model(diffs[:41], l2=0.1, warm_start=model.weights)
    assert pairwise_accuracy(warm, diffs[40:]) == 1.0
    assert featurise(["same text"]).tolist() == featurise(["same text"]).tolist()


def test_composite_tiers_and_flags() -> None:
    assert composite(0.9, None, None) == pytest.approx(0.9)
    assert composite(1.0, 0.5, 0.0) == pytest.approx(0.65)
    assert tier_for(0.95, 4) == "provisional"
    assert [tier_for(q, 10) for q in (0.95, 0.85, 0.7, 0.55, 0.2)] == [
        "platinum",
        "gold",
        "silver",
        "bronze",
        "probation",
    ]
    flags = flags_for(
        FlagInputs(
            median_seconds=5,
            project_median_seconds=60,
            top_answer_share=1.0,
            n_labels=30,
            pair_agreement={7: (1.0, 25)},
            mean_agreement_with_others=0.6,
        )
    )
    assert [flag["flag"] for flag in flags] == ["fast", "constant", "collusion"]


def test_known_gold_items_anchor_dawid_skene() -> None:
    """A clique that always inverts the truth and outnumbers the honest workers on the items
    it labels fools majority vote and plain Dawid-Skene (nothing tells them who is right); with
    gold items clamped, its confusion matrices come out inverted and its items are recovered."""
    rng = np.random.default_rng(0)
    n_gold, n_work = 20, 60
    truth = rng.integers(0, 2, size=n_gold + n_work)
    items, who, answers = [], [], []
    for item in range(n_gold + n_work):
        for worker in range(3):  # the inverting clique: workers 0-2
            items.append(item)
            who.append(worker)
            answers.append(1 - truth[item])
        if item < n_gold:  # honest workers 3-4 answered the gold items only
            for worker in (3, 4):
                items.append(item)
                who.append(worker)
                answers.append(truth[item])
    items_a, who_a, answers_a = np.array(items), np.array(who), np.array(answers)
    known = np.full(n_gold + n_work, -1)
    known[:n_gold] = truth[:n_gold]
    kwargs = {"n_items": n_gold + n_work, "n_workers": 5, "n_classes": 2}
    plain = dawid_skene(items_a, who_a, answers_a, **kwargs)
    anchored = dawid_skene(items_a, who_a, answers_a, known=known, **kwargs)
    work = slice(n_gold, None)
    assert np.mean(plain.labels[work] == truth[work]) == 0.0
    assert np.mean(anchored.labels[work] == truth[work]) == 1.0
    assert anchored.confusion[0, 0, 1] > 0.9  # true class 0 is answered 1
    np.testing.assert_array_equal(anchored.labels[:n_gold], truth[:n_gold])
    with pytest.raises(ValueError):
        dawid_skene(items_a, who_a, answers_a, known=known[:5], **kwargs)
