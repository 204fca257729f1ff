"""The early-stop gate (docs/SCORING.md, "Early stop"): after every gold answer, is there
enough evidence that an expert works near chance, or inverts a component, to stop serving them
at once instead of at the next scoring run?

Evidence is per component (the preference or ranking, and each rubric dimension per response
it rates), each trial a credit in [0, 1] with the component's chance level c (what random
answers earn on it). Two tests, each with stated error rates:

1. Near chance, Wald's sequential probability ratio test on all trials pooled: H1 "answers at
   chance" (success probability c + MARGIN (1 - c) on each component) against H0 "does real
   work" (c + KAPPA (1 - c), halfway from chance to perfect). The chance level c of an expert's
   component is what uniformly random clicks would have earned on the very gold they answered
   (`trial_chance`: gold values are rarely uniform over a scale). The log likelihood ratio sums
   s ln(p1 / p0) + (1 - s) ln((1 - p1) / (1 - p0)) over trials (credits count fractionally);
   it stops once the ratio passes ln((1 - BETA) / ALPHA). ALPHA is the chance of stopping
   someone who works at the H0 level; experts well above it (careful and average experts are
   at 0.85-0.95 per component) are stopped far less often still, and the suite checks both
   rates by simulation. Trials of one answer are treated as independent; for an honest expert
   they are positively correlated, which makes the test less likely to stop them, not more.
2. Inverted, per component: the Beta(1 + successes, 1 + failures) posterior puts at least
   INVERTED_CONFIDENCE below chance, after at least MIN_INVERTED_TRIALS trials. Random answers
   sit at chance and so almost never trigger it; a flipped preference or a dimension read
   backwards does within a few gold answers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from scipy.special import betainc

KAPPA = 0.5
# "Near chance" is chance plus this margin of the way to perfect: someone a little better than
# random is still working at chance for a lab's purposes.
MARGIN = 0.1
# Agreement with peers is noisier evidence than gold (the peers err too), so the "real work"
# hypothesis sits closer to chance when a project has no gold: 30% of the way to perfect.
KAPPA_AGREEMENT = 0.3
ALPHA = 0.001
BETA = 0.05
INVERTED_CONFIDENCE = 0.99
MIN_INVERTED_TRIALS = 3
MIN_GOLD_ANSWERS = 3


@dataclass(frozen=True)
class ComponentEvidence:
    key: str
    chance: float
    successes: float
    trials: int


@dataclass(frozen=True)
class GateDecision:
    stop: bool
    reason: str  # "" | "near_chance" | "inverted"
    log_likelihood_ratio: float
    threshold: float
    inverted: tuple[str, ...]
    components: tuple[ComponentEvidence, ...]
    kappa: float = KAPPA

    def as_evidence(self) -> dict[str, object]:
        return {
            "method": "sprt" if self.reason != "inverted" else "beta_posterior_below_chance",
            "log_likelihood_ratio": round(self.log_likelihood_ratio, 4),
            "threshold": round(self.threshold, 4),
            "alpha": ALPHA,
            "beta": BETA,
            "kappa": self.kappa,
            "margin": MARGIN,
            "inverted_confidence": INVERTED_CONFIDENCE,
            "inverted": list(self.inverted),
            "components": {
                c.key: {
                    "chance": round(c.chance, 4),
                    "successes": round(c.successes, 4),
                    "trials": c.trials,
                    "rate": round(c.successes / c.trials, 4) if c.trials else None,
                }
                for c in self.components
            },
        }


def _log_ratio(component: ComponentEvidence, kappa: float) -> float:
    p1 = component.chance + MARGIN * (1.0 - component.chance)
    p0 = component.chance + kappa * (1.0 - component.chance)
    failures = component.trials - component.successes
    return component.successes * math.log(p1 / p0) + failures * math.log((1 - p1) / (1 - p0))


def gate_decision(
    components: Iterable[ComponentEvidence], answers: int, kappa: float = KAPPA
) -> GateDecision:
    """Whether to stop, from the per-component evidence of `answers` gold answers (or, with
    KAPPA_AGREEMENT, of agreement comparisons with peers on a project without gold)."""
    evidence = tuple(c for c in components if c.trials > 0 and 0.0 < c.chance < 1.0)
    ratio = sum(_log_ratio(component, kappa) for component in evidence)
    threshold = math.log((1 - BETA) / ALPHA)
    inverted = tuple(
        c.key
        for c in evidence
        if c.trials >= MIN_INVERTED_TRIALS
        and float(betainc(1 + c.successes, 1 + c.trials - c.successes, c.chance))
        >= INVERTED_CONFIDENCE
    )
    if answers < MIN_GOLD_ANSWERS:
        return GateDecision(False, "", ratio, threshold, inverted, evidence, kappa)
    if inverted:
        return GateDecision(True, "inverted", ratio, threshold, inverted, evidence, kappa)
    if ratio >= threshold:
        return GateDecision(True, "near_chance", ratio, threshold, inverted, evidence, kappa)
    return GateDecision(False, "", ratio, threshold, inverted, evidence, kappa)
