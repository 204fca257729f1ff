"""Jacobi-preconditioned conjugate gradients, shared by Bradley-Terry's Newton steps (the
Hessian applied through the comparison graph, never formed) and the Newton-step Shapley
utility (a d x d system, warm-started from the previous prefix's solution)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray


def preconditioned_cg(
    apply: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    right: NDArray[np.float64],
    inverse_diagonal: NDArray[np.float64],
    *,
    relative_tolerance: float,
    max_steps: int,
    guess: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], bool]:
    """Solve A x = right for a symmetric positive definite A given as `apply(v) = A v`, until
    the residual is within `relative_tolerance` of |right|: (x, whether that was reached)."""
    solution = np.zeros_like(right) if guess is None else guess.copy()
    residual = right - apply(solution) if guess is not None else right.copy()
    threshold = relative_tolerance**2 * float(right @ right)
    preconditioned = inverse_diagonal * residual
    direction = preconditioned.copy()
    product = float(residual @ preconditioned)
    for _ in range(max_steps):
        if float(residual @ residual) <= threshold:
            return solution, True
        applied = apply(direction)
        length = product / float(direction @ applied)
        solution += length * direction
        residual -= length * applied
        preconditioned = inverse_diagonal * residual
        next_product = float(residual @ preconditioned)
        direction = preconditioned + (next_product / product) * direction
        product = next_product
    return solution, float(residual @ residual) <= threshold
