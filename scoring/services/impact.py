"""The coalition utility for Shapley impact: a reward model trained on a coalition's
labels, evaluated on the trusted (gold) preferences."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string

from projects.models import Item, Project, TaskType
from scoring.engine.reward_model import featurise
from scoring.services.labels import Labels


def _features(item: Item) -> np.ndarray:
    if item.features:
        return np.asarray(item.features, dtype=np.float64)
    return featurise([f"{item.prompt}\n{response}" for response in item.responses])


def _utility(project: Project, labels: Labels) -> tuple[Any, dict[int, int]]:
    """The coalition utility of a pairwise project's contributors (None when there is nothing
    to evaluate on), and each contributor's number of train labels."""
    if project.task_type != TaskType.PAIRWISE or not labels.experts:
        return None, {}
    evaluation_rows = []
    for item_id, answer in labels.gold.items():
        preference = answer.get("preference")
        if preference not in ("a", "b"):
            continue
        item = labels.items.get(item_id) or Item.objects.get(pk=item_id)
        phi = _features(item)
        evaluation_rows.append(phi[0] - phi[1] if preference == "a" else phi[1] - phi[0])
    if not evaluation_rows:
        return None, {}
    owners, train = [], []
    counts: Counter[int] = Counter()
    feature_cache: dict[int, np.ndarray] = {}
    for row in labels.submissions:
        item = labels.items[row.item_id]
        preference = row.answer.get("preference")
        if item.is_gold or item.split != "train" or preference not in ("a", "b"):
            continue
        if item.pk not in feature_cache:
            feature_cache[item.pk] = _features(item)
        phi = feature_cache[item.pk]
        train.append(phi[0] - phi[1] if preference == "a" else phi[1] - phi[0])
        owners.append(labels.expert_index[row.expert_id])
        counts[row.expert_id] += 1
    dimension = len(evaluation_rows[0])
    utility_class = import_string(settings.SCORING_UTILITY)
    utility = utility_class(
        owners=np.asarray(owners, dtype=np.int64),
        train=np.asarray(train).reshape(-1, dimension),
        evaluation=np.asarray(evaluation_rows),
    )
    return utility, dict(counts)
