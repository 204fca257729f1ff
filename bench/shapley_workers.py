"""The Shapley benchmark's problem, and a bench-only Celery app that computes its permutation
batches on worker processes (`celery -A bench.shapley_workers worker -c 2`), the way a scoring
run fans out: batches with their own seeds, merged exactly by the caller.

The problem: 100 contributors x 200 pairwise labels with 384-dimensional features; the last 20
are injected noise (half answer at random, half invert every preference).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from celery import Celery
from celery.signals import worker_process_init

from scoring.engine.shapley import permutation_batch
from scoring.engine.synthetic import preference_crowd
from scoring.engine.utilities import NewtonStepUtility

CONTRIBUTORS, PER_CONTRIBUTOR, DIMENSION = 100, 200, 384
NOISY = frozenset(range(80, 100))
BROKER_URL = os.environ.get("BENCH_SHAPLEY_BROKER", "redis://127.0.0.1:6379/14")

app = Celery("bench_shapley", broker=BROKER_URL, backend=BROKER_URL)
app.conf.update(worker_prefetch_multiplier=1, task_acks_late=False, worker_hijack_root_logger=False)


def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owners, train differences, eval differences), the same on every call."""
    return preference_crowd(
        contributors=CONTRIBUTORS,
        per_contributor=PER_CONTRIBUTOR,
        dimension=DIMENSION,
        noisy=NOISY,
        seed=5,
        evaluation_size=400,
    )


_utility: NewtonStepUtility | None = None


@worker_process_init.connect
def _build_utility(**_: Any) -> None:
    # Built once per worker process, before the clock starts, as the single-process run's is.
    global _utility
    owners, train, evaluation = problem()
    _utility = NewtonStepUtility(
        owners=owners, train=train, evaluation=evaluation, metric="accuracy"
    )


@app.task(name="bench_shapley.ready")
def ready() -> bool:
    return _utility is not None


@app.task(name="bench_shapley.batch")
def batch(seed: int, pairs: int, v_empty: float, v_full: float) -> dict[str, Any]:
    assert _utility is not None
    return permutation_batch(
        _utility,
        CONTRIBUTORS,
        pairs=pairs,
        seed=seed,
        v_empty=v_empty,
        v_full=v_full,
        truncation_tolerance=0.001,
    ).as_dict()
