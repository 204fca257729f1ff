"""The simulated world: a medication-safety rubric, items whose responses have a latent quality
per dimension, the lab's feature vectors for them, and the crowd's personas (how each reads a
response, and how long each takes per task).

Features: the lab supplies one vector per response (`features`, docs/API.md, "Imports"), as
its own embedding model would. Here a fixed random projection of the response's latent
qualities into 384 dimensions plus isotropic noise: a reward model trained on true preferences
reaches about 0.93 eval accuracy, one trained on random labels about 0.5, and one trained on
noisy labels falls in between, so label quality shows in the reward model (the claim the
product rests on). The text stays a readable template for the pages.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dim:
    key: str
    label: str
    kind: str
    weight: float
    low: int = 0
    high: int = 1

    def as_rubric(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "key": self.key,
            "label": self.label,
            "kind": self.kind,
            "weight": self.weight,
        }
        if self.kind == "likert":
            row.update(min=self.low, max=self.high)
        return row

    def value(self, quality: float) -> int:
        quality = min(max(quality, 0.0), 1.0)
        if self.kind == "binary":
            return 1 if quality >= 0.5 else 0
        return round(self.low + quality * (self.high - self.low))

    def share(self, value: int) -> float:
        return (value - self.low) / (self.high - self.low)

    def random_value(self, rng: random.Random) -> int:
        """A random click: any point of the scale, equally likely."""
        return rng.randint(self.low, self.high)


DIMENSIONS = (
    Dim("correctness", "Medically correct", "likert", 2.0, 1, 7),
    Dim("safety", "Safe advice", "binary", 2.0),
    Dim("clarity", "Clear to a patient", "likert", 1.0, 1, 5),
    Dim("actionability", "Says what to do next", "likert", 1.0, 1, 5),
)
TOPICS = ("statins", "warfarin", "beta blockers", "ACE inhibitors", "aspirin", "nitroglycerin")
QUESTIONS = (
    "Can I stop taking {drug} if I feel fine?",
    "Is it safe to take {drug} with ibuprofen?",
    "I missed a dose of {drug}; should I double the next one?",
    "Can I drink alcohol while on {drug}?",
)
GOOD_PARTS = (
    "Please talk to your cardiologist before changing anything about {drug}.",
    "Stopping {drug} suddenly can raise your risk; keep taking it until your doctor advises.",
    "Check with your pharmacist: some painkillers interact with {drug}.",
    "Do not double the dose; take the next one at the usual time.",
)
BAD_PARTS = (
    "You can just stop {drug}, it rarely matters.",
    "Doubling the dose of {drug} is fine to catch up.",
    "Mixing {drug} with anything is harmless.",
    "Doctors worry too much about {drug}.",
)

EMBEDDING_DIMENSION = 384
FEATURE_NOISE = 0.05
# The lab's "embedding model": fixed, so every run and every process computes the same vectors.
_PROJECTION = np.random.default_rng(20_261_129).normal(size=(len(DIMENSIONS), EMBEDDING_DIMENSION))
_PROJECTION /= np.linalg.norm(_PROJECTION, axis=1, keepdims=True)

# persona -> how many of them
PERSONAS = {
    "careful": 10,
    "average": 14,
    "fast_careless": 6,
    "spammer": 4,
    "adversarial": 3,
    "colluding": 2,
    "safety_specialist": 1,
}
# How noisily each persona reads a response's latent quality (0..1) on each dimension.
NOISE = {
    "careful": 0.05,
    "average": 0.15,
    "fast_careless": 0.4,
    "colluding": 0.12,
    "safety_specialist": 0.25,  # exact on safety (see answer_for), rough elsewhere
    "adversarial": 0.1,
}
# Median seconds per task (log-normal, spread SECONDS_SPREAD): spammers click through, the
# fast and careless skim, careful experts read.
SECONDS = {
    "careful": 90,
    "average": 100,
    "fast_careless": 20,
    "spammer": 5,
    "adversarial": 80,
    "colluding": 60,
    "safety_specialist": 100,
}
SECONDS_SPREAD = 0.25
# Personas whose labels a quality filter should keep (the report's ground truth).
TRUSTWORTHY = frozenset({"careful", "average", "colluding", "safety_specialist"})
BAD_ACTORS = frozenset({"spammer", "adversarial"})


@dataclass
class SimItem:
    prompt: str
    texts: list[str]
    quality: list[dict[str, float]]  # latent 0..1 per dimension, per response
    features: list[list[float]]

    def better(self) -> str:
        score = [sum(d.weight * q[d.key] for d in DIMENSIONS) for q in self.quality]
        return "a" if score[0] >= score[1] else "b"


def response_features(quality: dict[str, float], noise: np.random.Generator) -> list[float]:
    latent = np.array([quality[d.key] - 0.5 for d in DIMENSIONS])
    vector = latent @ _PROJECTION + noise.normal(0.0, FEATURE_NOISE, EMBEDDING_DIMENSION)
    return [round(float(value), 5) for value in vector]


def make_item(rng: random.Random, index: int) -> SimItem:
    drug = rng.choice(TOPICS)
    prompt = f"{rng.choice(QUESTIONS).format(drug=drug)} (case {index})"
    noise = np.random.default_rng(rng.getrandbits(63))
    texts, qualities, features = [], [], []
    for _ in range(2):
        quality = {d.key: rng.random() for d in DIMENSIONS}
        parts = GOOD_PARTS if quality["correctness"] + quality["safety"] > 1.0 else BAD_PARTS
        texts.append(" ".join(rng.sample(parts, 2)).format(drug=drug))
        qualities.append(quality)
        features.append(response_features(quality, noise))
    return SimItem(prompt=prompt, texts=texts, quality=qualities, features=features)


def answer_for(persona: str, item: SimItem, rng: random.Random) -> dict[str, Any]:
    """How a persona labels a pairwise item (colluders copy each other elsewhere)."""
    answers: dict[str, list[int]] = {}
    for dim in DIMENSIONS:
        values = []
        for quality in item.quality:
            seen = quality[dim.key]
            if persona == "spammer":
                values.append(dim.random_value(rng))
                continue
            if persona == "safety_specialist" and dim.key == "safety":
                seen += rng.gauss(0, 0.02)
            else:
                seen += rng.gauss(0, NOISE[persona])
            if persona == "adversarial" and dim.key == "safety":
                seen = 1.0 - seen  # systematically inverted on one dimension
            values.append(dim.value(seen))
        answers[dim.key] = values
    if persona == "spammer":
        preference = rng.choice(("a", "b"))
    else:
        totals = [
            sum(d.weight * d.share(answers[d.key][index]) for d in DIMENSIONS) for index in (0, 1)
        ]
        preference = "a" if totals[0] >= totals[1] else "b"
        if persona == "adversarial":
            preference = "b" if preference == "a" else "a"
    return {"preference": preference, "answers": answers}


def seconds_for(persona: str, rng: random.Random) -> float:
    """One task's active time: log-normal around the persona's median, at least 2 s."""
    return max(2.0, SECONDS[persona] * math.exp(rng.gauss(0.0, SECONDS_SPREAD)))
