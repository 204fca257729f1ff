"""Composite score, tiers, automatic suspension and fraud flags (docs/SCORING.md section 5)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WEIGHTS = {"gold": 0.5, "agreement": 0.3, "impact": 0.2}
TIER_FLOORS = (("platinum", 0.90), ("gold", 0.80), ("silver", 0.65), ("bronze", 0.50))
# Every tier a scored contributor can hold, best first (below bronze: probation).
TIERS = (*(name for name, _ in TIER_FLOORS), "probation")
MIN_GOLD_FOR_TIER = 5
FAST_FRACTION = 0.2
CONSTANT_SHARE = 0.95
CONSTANT_MIN_LABELS = 20
COLLUSION_MIN_SHARED = 10
COLLUSION_AGREEMENT = 0.95
COLLUSION_MARGIN = 0.25


def composite(
    gold: float | None, agreement: float | None, impact_percentile: float | None
) -> float | None:
    parts = {"gold": gold, "agreement": agreement, "impact": impact_percentile}
    present = {
        name: value for name, value in parts.items() if value is not None and not np.isnan(value)
    }
    if not present:
        return None
    weight = sum(WEIGHTS[name] for name in present)
    return sum(WEIGHTS[name] * value for name, value in present.items()) / weight


def tier_for(q: float | None, gold_n: int) -> str:
    if gold_n < MIN_GOLD_FOR_TIER or q is None:
        return "provisional"
    for tier, floor in TIER_FLOORS:
        if q >= floor:
            return tier
    return "probation"


@dataclass
class FlagInputs:
    median_seconds: float | None
    project_median_seconds: float | None
    top_answer_share: float | None
    n_labels: int
    pair_agreement: dict[int, tuple[float, int]] = field(default_factory=dict)  # other -> (rate, n)
    mean_agreement_with_others: float | None = None


def flags_for(inputs: FlagInputs) -> list[dict[str, object]]:
    """Signals for admins (never punished automatically), each with its evidence."""
    flags: list[dict[str, object]] = []
    if (
        inputs.median_seconds is not None
        and inputs.project_median_seconds
        and inputs.median_seconds < FAST_FRACTION * inputs.project_median_seconds
    ):
        flags.append(
            {
                "flag": "fast",
                "median_seconds": inputs.median_seconds,
                "project_median_seconds": inputs.project_median_seconds,
            }
        )
    if (
        inputs.top_answer_share is not None
        and inputs.n_labels >= CONSTANT_MIN_LABELS
        and inputs.top_answer_share >= CONSTANT_SHARE
    ):
        flags.append(
            {"flag": "constant", "top_answer_share": inputs.top_answer_share, "n": inputs.n_labels}
        )
    baseline = inputs.mean_agreement_with_others
    for other, (rate, shared) in sorted(inputs.pair_agreement.items()):
        if (
            shared >= COLLUSION_MIN_SHARED
            and rate >= COLLUSION_AGREEMENT
            and baseline is not None
            and rate - baseline >= COLLUSION_MARGIN
        ):
            flags.append(
                {
                    "flag": "collusion",
                    "partner": other,
                    "agreement_with_partner": rate,
                    "shared_items": shared,
                    "agreement_with_others": baseline,
                }
            )
    return flags


def next_tier_hint(tier: str, q: float | None, gold_n: int) -> str:
    """What it takes to reach the next tier, in words an expert can act on."""
    if gold_n < MIN_GOLD_FOR_TIER or q is None:
        missing = MIN_GOLD_FOR_TIER - gold_n
        return f"{max(missing, 1)} more hidden quality checks answered before a tier is set"
    floors = dict(TIER_FLOORS)
    order = [name for name, _ in TIER_FLOORS][::-1]  # bronze, silver, gold, platinum
    higher = [name for name in order if floors[name] > q]
    if not higher:
        return "top tier reached"
    target = higher[0]
    return f"composite score {floors[target]:.2f} for {target} (now {q:.2f})"


def flag_text(flag: dict[str, object]) -> str:
    """A flag in words, with its evidence, for the lab's and the desk's tables."""
    kind = flag.get("flag")

    def number(name: str, digits: int = 0) -> str:
        value = flag.get(name)
        return f"{float(value):.{digits}f}" if isinstance(value, int | float) else "?"

    if kind == "fast":
        return (
            f"fast: median {number('median_seconds')} s per task, project median "
            f"{number('project_median_seconds')} s"
        )
    if kind == "constant":
        share = flag.get("top_answer_share")
        percent = f"{float(share):.0%}" if isinstance(share, int | float) else "?"
        return f"constant: the same answer in {percent} of {number('n')} labels"
    if kind == "collusion":
        partner, others = flag.get("agreement_with_partner"), flag.get("agreement_with_others")
        with_partner = f"{float(partner):.0%}" if isinstance(partner, int | float) else "?"
        with_others = f"{float(others):.0%}" if isinstance(others, int | float) else "?"
        return (
            f"collusion: agrees with contributor {flag.get('partner')} on {with_partner} of "
            f"{number('shared_items')} shared items, {with_others} with everyone else"
        )
    if kind == "inverted":
        components = flag.get("components")
        names = ", ".join(map(str, components)) if isinstance(components, list) else "?"
        return f"inverted: confidently below chance on {names}"
    return str(kind)
