"""The built-in featuriser and Bradley-Terry reward model (docs/SCORING.md section 4).

phi(text): hashed word unigrams/bigrams and character 3-grams, signed (the hashing trick),
L2-normalised, fixed dimension; deterministic across processes (blake2b, not Python's hash).
The reward model is L2-regularised logistic regression on phi(chosen) - phi(rejected) with no
intercept (a preference has no side), fitted by L-BFGS and warm-startable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit

DEFAULT_DIMENSION = 512
WORD = re.compile(r"\w+", re.UNICODE)


def _bucket(token: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dimension, (1.0 if (value >> 63) & 1 else -1.0)


def featurise(texts: Sequence[str], dimension: int = DEFAULT_DIMENSION) -> NDArray[np.float64]:
    matrix = np.zeros((len(texts), dimension))
    for row, text in enumerate(texts):
        lowered = text.lower()
        words = WORD.findall(lowered)
        tokens = [f"w:{w}" for w in words]
        tokens += [f"b:{a} {b}" for a, b in pairwise(words)]
        tokens += [f"c:{lowered[i : i + 3]}" for i in range(max(len(lowered) - 2, 0))]
        for token in tokens:
            column, sign = _bucket(token, dimension)
            matrix[row, column] += sign
        norm = np.linalg.norm(matrix[row])
        if norm > 0:
            matrix[row] /= norm
    return matrix


@dataclass(frozen=True)
class RewardModel:
    weights: NDArray[np.float64]

    def score(self, features: NDArray[np.float64]) -> NDArray[np.float64]:
        return features @ self.weights


def fit_reward_model(
    differences: NDArray[np.float64],
    *,
    l2: float = 1.0,
    warm_start: NDArray[np.float64] | None = None,
    max_iterations: int = 200,
    tolerance: float = 1e-5,
    sample_weights: NDArray[np.float64] | None = None,
) -> RewardModel:
    """Fit P(chosen > rejected) = sigmoid(w . (phi_chosen - phi_rejected)); each label's loss
    may carry a weight (quality-weighted training: `quality_weight`)."""
    dimension = differences.shape[1]
    if differences.shape[0] == 0:
        return RewardModel(weights=np.zeros(dimension))
    per_label = (
        np.ones(differences.shape[0])
        if sample_weights is None
        else np.asarray(sample_weights, dtype=np.float64)
    )

    def loss(weights: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        margin = differences @ weights
        value = -np.sum(per_label * log_expit(margin)) + 0.5 * l2 * weights @ weights
        gradient = -differences.T @ (per_label * expit(-margin)) + l2 * weights
        return float(value), gradient

    start = warm_start if warm_start is not None else np.zeros(dimension)
    result = minimize(
        loss,
        start,
        jac=True,
        method="L-BFGS-B",
        # ftol at 1e-5 is SciPy's default (2.2e-9); a tighter gtol tightens it in proportion.
        options={"maxiter": max_iterations, "gtol": tolerance, "ftol": tolerance * 2.2e-4},
    )
    return RewardModel(weights=np.asarray(result.x))


def pairwise_accuracy(model: RewardModel, differences: NDArray[np.float64]) -> float:
    """Share of held-out pairs the model orders like the trusted label (ties count half)."""
    if differences.shape[0] == 0:
        return 0.5
    margin = differences @ model.weights
    return float(np.mean(np.where(margin > 0, 1.0, np.where(margin == 0, 0.5, 0.0))))


def quality_weight(composite: float | None) -> float:
    """A label's weight in quality-weighted training, from its author's composite score:
    ((q - 0.5) / 0.5)^2 above 0.5, else 0. Probation and below contribute nothing, a bronze
    author little, a platinum author almost fully: the square follows how the information in
    a noisy binary label grows with (2 accuracy - 1)^2."""
    if composite is None:
        return 0.0
    return float(min(max((composite - 0.5) / 0.5, 0.0), 1.0) ** 2)
