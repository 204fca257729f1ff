"""Stage 3 of a scoring run: impact (docs/SCORING.md section 4). The coalition utility is a
reward model trained on a coalition's labels and measured on the trusted eval pairs; the
Shapley estimate itself is computed by the run (in process or fanned out over workers).
Afterwards each contributor's impact per label is shrunk toward the project's mean by its
own standard error, and the composite reads that, not a percentile of noisy values."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string
from scipy import stats

from projects.models import Item, ItemSplit, Project, TaskType
from scoring.engine.reward_model import featurise
from scoring.engine.shapley import ShapleyEstimate
from scoring.services.labels import Labels


def item_features(item: Item) -> np.ndarray:
    if item.features:
        return np.asarray(item.features, dtype=np.float64)
    return featurise([f"{item.prompt}\n{response}" for response in item.responses])


def _signed(phi: np.ndarray, preference: str) -> np.ndarray:
    return phi[0] - phi[1] if preference == "a" else phi[1] - phi[0]


def eval_pairs(project: Project, labels: Labels) -> np.ndarray:
    """The trusted eval pairs: every gold item's strict preference. That is the hidden tests
    experts are served and the lab's own eval labels (gold lines imported with
    `"split": "eval"`, never served), as chosen-minus-rejected feature differences."""
    trusted = {
        item_id: answer["preference"]
        for item_id, answer in labels.gold.items()
        if answer.get("preference") in ("a", "b")
    }
    missing = [item_id for item_id in trusted if item_id not in labels.items]
    items = {**labels.items, **Item.objects.in_bulk(missing)}
    rows = [_signed(item_features(items[item_id]), trusted[item_id]) for item_id in sorted(trusted)]
    return np.asarray(rows)


def impact_utility(project: Project, labels: Labels) -> tuple[Any, dict[int, int]]:
    """The coalition utility of a pairwise project's players (None when there is nothing to
    evaluate on), and each player's number of train labels."""
    if project.task_type != TaskType.PAIRWISE or not labels.experts:
        return None, {}
    evaluation = eval_pairs(project, labels)
    if not len(evaluation):
        return None, {}
    owners, train = [], []
    counts: Counter[int] = Counter()
    feature_cache: dict[int, np.ndarray] = {}
    for row in labels.submissions:
        item = labels.items[row.item_id]
        preference = row.answer.get("preference")
        if item.is_gold or item.split != ItemSplit.TRAIN or preference not in ("a", "b"):
            continue
        if item.pk not in feature_cache:
            feature_cache[item.pk] = item_features(item)
        train.append(_signed(feature_cache[item.pk], preference))
        owners.append(labels.expert_index[row.expert_id])
        counts[row.expert_id] += 1
    if not train:
        return None, {}  # only gold answered so far: nothing to attribute
    dimension = evaluation.shape[1]
    utility_class = import_string(settings.SCORING_UTILITY)
    utility = utility_class(
        owners=np.asarray(owners, dtype=np.int64),
        train=np.asarray(train).reshape(-1, dimension),
        evaluation=evaluation,
        metric=settings.SCORING_IMPACT_METRIC,
    )
    return utility, dict(counts)


@dataclass(frozen=True)
class ImpactScore:
    value: float
    se: float
    per_label: float | None
    shrunk: float | None
    score: float | None


def impact_scores(
    labels: Labels, estimate: ShapleyEstimate | None, train_counts: dict[int, int]
) -> dict[int, ImpactScore]:
    """Per player: the Shapley value and its error, the impact per train label, that value
    shrunk toward the players' mean by its own error, and the composite's 0..1 impact score.

    Shrinkage (normal-normal empirical Bayes): per-label values x_i with errors s_i; the prior
    mean m is their precision-weighted mean and the prior variance tau^2 the spread of the
    x_i beyond what their errors explain (method of moments, floored). Then
    shrunk_i = m + tau^2 / (tau^2 + s_i^2) (x_i - m): a contributor with few labels (a large
    s_i) is pulled to the mean instead of landing at an extreme percentile by luck. The score
    is Phi(shrunk_i / scale), scale the root mean square of the shrunk values: 0.5 at zero
    impact, above for labels that help the reward model, below for labels that hurt it."""
    if estimate is None:
        return {}
    rows: dict[int, ImpactScore] = {}
    per_label: dict[int, tuple[float, float]] = {}
    for expert, index in labels.expert_index.items():
        value = float(estimate.values[index])
        se = float(estimate.standard_errors[index])
        count = train_counts.get(expert, 0)
        if count:
            per_label[expert] = (value / count, se / count)
        rows[expert] = ImpactScore(value, se, None, None, None)
    if not per_label:
        return rows
    values = np.array([value for value, _ in per_label.values()])
    errors = np.maximum(np.array([se for _, se in per_label.values()]), 1e-12)
    precision = 1.0 / errors**2
    mean = float((precision * values).sum() / precision.sum())
    tau_squared = max(
        float(np.var(values)) - float(np.mean(errors**2)), 1e-4 * float(np.var(values)), 1e-18
    )
    shrunk = mean + tau_squared / (tau_squared + errors**2) * (values - mean)
    scale = float(np.sqrt(np.mean(shrunk**2))) or 1.0
    for (expert, (value, _)), shrunk_value in zip(per_label.items(), shrunk, strict=True):
        row = rows[expert]
        rows[expert] = ImpactScore(
            row.value,
            row.se,
            value,
            float(shrunk_value),
            float(stats.norm.cdf(shrunk_value / scale)),
        )
    return rows
