"""The coalition utilities behind Shapley impact: the Newton-step utility against the exact
refit, its warm state, its solver, and the Shapley axioms on top of it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from scoring.engine import utilities
from scoring.engine.shapley import bootstrap_weights, shapley_exact, shapley_sampled
from scoring.engine.synthetic import preference_crowd
from scoring.engine.utilities import NewtonStepUtility, RefitUtility, _solve, pair_values


def _crowd(
    contributors: int, per_contributor: int, dimension: int, noisy: set[int], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return preference_crowd(
        contributors=contributors,
        per_contributor=per_contributor,
        dimension=dimension,
        noisy=noisy,
        seed=seed,
        evaluation_size=200,
    )


def _mask(n: int, members: list[int]) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[members] = True
    return mask


def test_newton_step_is_the_first_irls_step_and_close_to_the_refit() -> None:
    owners, train, evaluation = _crowd(10, 30, 16, {8, 9}, seed=1)
    newton = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation, metric="accuracy")
    refit = RefitUtility(owners=owners, train=train, evaluation=evaluation, metric="accuracy")
    soft = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    # The step by hand for one coalition: at w = 0 the loss -log sigmoid(x.w) has gradient
    # -x/2 and Hessian x x^T / 4 per label, plus the ridge.
    mask = _mask(10, [0, 3, 9])
    rows = train[mask[owners]]
    weights = np.linalg.solve(0.25 * rows.T @ rows + np.eye(16), 0.5 * rows.sum(axis=0))
    margins = evaluation @ weights
    assert newton.evaluate(mask, None)[0] == float(np.mean(np.where(margins > 0, 1.0, 0.0)))
    # Soft accuracy: the mean of the model's probability of ordering each pair right.
    assert soft.evaluate(mask, None)[0] == pytest.approx(np.mean(1 / (1 + np.exp(-margins))))
    for utility in (newton, soft):
        assert utility.evaluate(np.zeros(10, dtype=bool), None)[0] == 0.5
    rng = np.random.default_rng(2)
    gaps = []
    for _ in range(40):
        mask = rng.random(10) < 0.5
        gaps.append(abs(newton.evaluate(mask, None)[0] - refit.evaluate(mask, None)[0]))
    # An approximation of the refit: close (0.011 on average here), not identical.
    assert np.mean(gaps) < 0.03
    assert max(gaps) < 0.1


def test_warm_state_gives_the_same_values_as_cold_evaluations() -> None:
    owners, train, evaluation = _crowd(12, 20, 24, {0, 5}, seed=3)
    warm = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    order = np.random.default_rng(4).permutation(12)
    state = None
    warm_values = []
    for size in range(1, 13):
        value, state = warm.evaluate(_mask(12, order[:size].tolist()), state)
        warm_values.append(value)
    # A state from a coalition that is not a subset is ignored, not misused.
    value, _ = warm.evaluate(_mask(12, [order[-1]]), state)
    cold_values = [
        NewtonStepUtility(owners=owners, train=train, evaluation=evaluation).evaluate(
            _mask(12, order[:size].tolist()), None
        )[0]
        for size in range(1, 13)
    ]
    # Warm and cold conjugate gradients stop at different points within their tolerance
    # (relative residual 1e-8): soft accuracy moves with the margins, so equal to 1e-7.
    np.testing.assert_allclose(warm_values, cold_values, rtol=1e-7)
    alone = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    assert value == pytest.approx(alone.evaluate(_mask(12, [order[-1]]), None)[0], rel=1e-7)


def test_the_per_contributor_hessians_need_not_be_kept(monkeypatch) -> None:
    owners, train, evaluation = _crowd(6, 15, 8, {5}, seed=5)
    kept = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    monkeypatch.setattr(utilities, "HESSIAN_CACHE_BYTES", 0)
    recomputed = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    assert kept._hessians is not None and recomputed._hessians is None
    for members in ([0], [1, 2], [0, 3, 5], list(range(6))):
        mask = _mask(6, members)
        assert kept.evaluate(mask, None)[0] == pytest.approx(
            recomputed.evaluate(mask, None)[0], rel=1e-12
        )


@pytest.mark.parametrize("condition", [1e1, 1e8])
def test_solver_matches_a_direct_solve_well_or_badly_conditioned(condition: float) -> None:
    rng = np.random.default_rng(6)
    basis, _ = np.linalg.qr(rng.normal(size=(80, 80)))
    system = (basis * np.geomspace(1.0, condition, 80)) @ basis.T
    right = rng.normal(size=80)
    expected = np.linalg.solve(system, right)
    for guess in (None, expected + rng.normal(scale=0.1, size=80)):
        error = np.linalg.norm(_solve(system, right, guess) - expected)
        assert error < 1e-6 * np.linalg.norm(expected)
    assert not _solve(system, np.zeros(80), None).any()


def test_shapley_axioms_hold_on_the_newton_step_utility() -> None:
    owners, train, evaluation = _crowd(7, 25, 12, {6}, seed=7)
    # Player 7 labels nothing (null player); player 8 duplicates player 0 exactly (symmetry).
    duplicate = owners == 0
    owners = np.concatenate([owners, np.full(int(duplicate.sum()), 8)])
    train = np.vstack([train, train[duplicate]])
    utility = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    estimate = shapley_exact(utility, 9)
    assert estimate.values[7] == 0.0
    assert estimate.values[0] == pytest.approx(estimate.values[8], abs=1e-12)
    assert estimate.values.sum() == pytest.approx(estimate.v_full - estimate.v_empty, abs=1e-12)


def test_newton_step_ranks_contributors_like_the_exact_refit() -> None:
    owners, train, evaluation = _crowd(8, 25, 12, {6, 7}, seed=8)
    newton = shapley_exact(NewtonStepUtility(owners=owners, train=train, evaluation=evaluation), 8)
    refit = shapley_exact(RefitUtility(owners=owners, train=train, evaluation=evaluation), 8)
    assert spearmanr(newton.values, refit.values).statistic > 0.8
    assert set(np.argsort(newton.values)[:2]) == {6, 7}
    assert set(np.argsort(refit.values)[:2]) == {6, 7}


def test_sampled_impact_puts_injected_noise_at_the_bottom() -> None:
    noisy = {24, 25, 26, 27, 28, 29}
    owners, train, evaluation = _crowd(30, 40, 32, noisy, seed=9)
    utility = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    estimate = shapley_sampled(
        utility,
        30,
        seed=1,
        target_standard_error=0.004,
        criterion="mean",
        truncation_tolerance=0.001,
        max_pairs=400,
    )
    assert estimate.sampling_standard_errors is not None
    assert float(estimate.sampling_standard_errors.mean()) < 0.004
    assert set(np.argsort(estimate.values)[:6].tolist()) == noisy
    assert abs(estimate.values.sum() - (estimate.v_full - estimate.v_empty)) < 0.02


def test_pair_values_are_sigmoids_or_steps_without_overflow() -> None:
    margins = np.array([-1000.0, -1.0, 0.0, 2.0, 1000.0])
    np.testing.assert_allclose(
        pair_values(margins, "soft_accuracy"), [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2)), 1]
    )
    np.testing.assert_array_equal(pair_values(margins, "accuracy"), [0, 0, 0.5, 1, 1])
    with pytest.raises(ValueError, match="metric"):
        NewtonStepUtility(
            owners=np.zeros(1), train=np.ones((1, 2)), evaluation=np.ones((1, 2)), metric="f1"
        )


def test_exact_impact_reports_the_eval_sets_own_sampling_error() -> None:
    """Exact enumeration has no permutation error, but the eval pairs are a sample: the
    bootstrap over them gives each value an error that shrinks like 1/sqrt(pairs)."""
    errors = {}
    for size in (100, 1600):
        owners, train, evaluation = preference_crowd(
            contributors=6,
            per_contributor=20,
            dimension=8,
            noisy={5},
            seed=11,
            evaluation_size=size,
        )
        estimate = shapley_exact(
            NewtonStepUtility(owners=owners, train=train, evaluation=evaluation), 6
        )
        assert estimate.is_exact and estimate.bootstrap_replicates == 200
        assert estimate.eval_standard_errors is not None
        assert (estimate.eval_standard_errors > 0).all()
        np.testing.assert_array_equal(estimate.standard_errors, estimate.eval_standard_errors)
        errors[size] = estimate.eval_standard_errors
    # 16x the pairs: a quarter of the error (within the bootstrap's own noise).
    ratio = np.median(errors[1600] / errors[100])
    assert 0.15 < ratio < 0.4


def test_bootstrap_error_matches_the_spread_of_per_pair_values() -> None:
    """The bootstrap's standard error of a mean over pairs is close to the textbook one,
    std(per-pair Shapley values) / sqrt(pairs), computed here by brute force."""
    owners, train, evaluation = preference_crowd(
        contributors=5, per_contributor=15, dimension=6, noisy={4}, seed=12, evaluation_size=400
    )
    utility = NewtonStepUtility(owners=owners, train=train, evaluation=evaluation)
    estimate = shapley_exact(utility, 5, bootstrap_replicates=2000)
    per_pair = np.stack(
        [
            shapley_exact(
                NewtonStepUtility(owners=owners, train=train, evaluation=evaluation[[j]]),
                5,
                bootstrap_replicates=0,
            ).values
            for j in range(len(evaluation))
        ],
        axis=1,
    )
    np.testing.assert_allclose(per_pair.mean(axis=1), estimate.values, atol=1e-12)
    textbook = per_pair.std(axis=1, ddof=1) / np.sqrt(len(evaluation))
    assert estimate.eval_standard_errors is not None
    np.testing.assert_allclose(estimate.eval_standard_errors, textbook, rtol=0.1)


def test_bootstrap_resamples_are_the_same_for_every_batch_of_a_run() -> None:
    first, second = bootstrap_weights(50, 10, seed=3), bootstrap_weights(50, 10, seed=3)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first.sum(axis=1), 1.0)
    assert not np.array_equal(first, bootstrap_weights(50, 10, seed=4))


def test_sampled_impact_separates_careful_contributors_at_thirty_labels_each() -> None:
    """At 30 labels per contributor the soft-accuracy utility tells honest contributors from
    zero: their intervals (2 standard errors, eval error included) exclude it."""
    noisy = {16, 17, 18, 19}
    owners, train, evaluation = preference_crowd(
        contributors=20,
        per_contributor=30,
        dimension=32,
        noisy=noisy,
        seed=13,
        evaluation_size=400,
    )
    estimate = shapley_sampled(
        NewtonStepUtility(owners=owners, train=train, evaluation=evaluation),
        20,
        seed=2,
        target_standard_error=0.0005,
        max_pairs=300,
    )
    honest = [player for player in range(20) if player not in noisy]
    lower = estimate.values - 2 * estimate.standard_errors
    assert (lower[honest] > 0).mean() >= 0.9
    assert set(np.argsort(estimate.values)[:4].tolist()) == noisy
