"""The Shapley benchmark's baseline: pyDVL 0.10 group TMC Shapley on the same problem.

Runs in its own virtual environment (pyDVL 0.10 needs numpy<2; see requirements/pydvl.txt),
so it imports nothing from this project: `python bench/pydvl_shapley.py problem.npz seed
max_seconds` prints one JSON line {seconds, pairs_equivalent, mean_se, max_se, values}.

The utility is pyDVL's usual one: a scikit-learn LogisticRegression refitted on each
coalition's rows. A pairwise label is the difference phi(chosen) - phi(rejected); scikit-learn
needs two classes, so each difference d appears as (d, 1) and (-d, 0), with C = 0.5 so the
fit is our reward model's (lambda 1, no intercept). Groups are contributors. Truncation:
pyDVL's RelativeTruncation at 0.1% of v(N) (ours stops within 0.001 of v(N)). It stops when
the mean standard error is under the target (the figure the issue quotes) or the time runs out.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from pydvl.utils import Dataset, GroupedDataset, Utility
from pydvl.utils.status import Status
from pydvl.value import compute_shapley_values
from pydvl.value.shapley import ShapleyMode
from pydvl.value.shapley.truncated import RelativeTruncation
from pydvl.value.stopping import MaxTime, StoppingCriterion
from sklearn.linear_model import LogisticRegression

TARGET = 0.002


class MeanStandardError(StoppingCriterion):
    def __init__(self, threshold: float, burn_in: int = 4) -> None:
        super().__init__()
        self.threshold = threshold
        self.burn_in = burn_in

    def _check(self, result):  # type: ignore[no-untyped-def]
        self._converged = result.counts > self.burn_in
        if self._converged.all() and float(np.mean(result.stderr)) < self.threshold:
            return Status.Converged
        return Status.Pending

    def __str__(self) -> str:
        return f"MeanStandardError({self.threshold})"


def main(path: str, seed: int, max_seconds: float) -> None:
    problem = np.load(path)
    owners, train, evaluation = problem["owners"], problem["train"], problem["evaluation"]
    x_train = np.vstack([train, -train])
    y_train = np.concatenate([np.ones(len(train)), np.zeros(len(train))])
    x_test = np.vstack([evaluation, -evaluation])
    y_test = np.concatenate([np.ones(len(evaluation)), np.zeros(len(evaluation))])
    data = GroupedDataset.from_dataset(
        Dataset(x_train, y_train, x_test, y_test), data_groups=np.concatenate([owners, owners])
    )
    model = LogisticRegression(C=0.5, fit_intercept=False, max_iter=200)
    utility = Utility(model, data, "accuracy", default_score=0.5)
    started = time.perf_counter()
    result = compute_shapley_values(
        utility,
        mode=ShapleyMode.PermutationMontecarlo,
        done=MeanStandardError(TARGET) | MaxTime(max_seconds),
        truncation=RelativeTruncation(utility, rtol=0.001),
        n_jobs=1,
        seed=seed,
    )
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "permutations": int(np.max(result.counts)),
                "mean_se": float(np.mean(result.stderr)),
                "max_se": float(np.max(result.stderr)),
                "values": [float(v) for v in result.values],
                "indices": [int(i) for i in result.indices],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
