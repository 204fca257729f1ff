"""Stage 1 of a scoring run: gold evidence per contributor, overall and per rubric component
(docs/SCORING.md section 1). Each answer's weight is its gold item's age weight."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from projects.models import Submission
from scoring.engine.gold import GoldPosterior, gold_components, gold_posterior
from scoring.services.labels import Labels


@dataclass(frozen=True)
class GoldEvidence:
    overall: GoldPosterior
    n_effective: float  # the sum of the answers' age weights
    # Per component ("preference", "ranking", each dimension key): trials are the item for the
    # preference and ranking, and each rated response for a dimension.
    components: dict[str, GoldPosterior] = field(default_factory=dict)


def gold_stage(labels: Labels, rows: Iterable[Submission] | None = None) -> dict[int, GoldEvidence]:
    """Gold evidence of each contributor among `rows` (default: the counting labels)."""
    overall: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    parts: dict[tuple[int, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for row in labels.submissions if rows is None else rows:
        gold = labels.gold.get(row.item_id)
        if gold is None:
            continue
        weight = labels.gold_weight.get(row.item_id, 1.0)
        components = gold_components(answer=row.answer, gold=gold, dimensions=labels.dimensions)
        weight_sum = sum(component.weight for component in components)
        if weight_sum == 0:
            continue
        credit = sum(
            component.weight * sum(component.credits) / len(component.credits)
            for component in components
        )
        scores, weights = overall[row.expert_id]
        scores.append(credit / weight_sum)
        weights.append(weight)
        for component in components:
            credits, component_weights = parts[(row.expert_id, component.key)]
            credits.extend(component.credits)
            component_weights.extend([weight] * len(component.credits))
    evidence = {}
    for expert, (scores, weights) in overall.items():
        evidence[expert] = GoldEvidence(
            overall=gold_posterior(scores, weights),
            n_effective=round(sum(weights), 6),
            components={
                key: gold_posterior(*parts[(owner, key)]) for owner, key in parts if owner == expert
            },
        )
    return evidence
