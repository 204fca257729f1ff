"""Automatic judges (AI reviewers): callables that label an item like an expert would.

A judge takes the task type, the prompt, the responses and the rubric dimensions (dicts with
key, kind, min, max, options) and returns an answer (docs/API.md, "Answers"); the answer is
checked by the same validator as a human's. Judges are named in settings.AI_JUDGES (name ->
callable path), so a lab's own model can be plugged in. Built in:
- `heuristic`: deterministic and offline (the default): prefers the response that sends the
  reader to a professional and avoids absolute claims; rates dimensions from the same signal;
- `random`: a baseline that answers at random (seeded by the item), for calibration;
- `openai`: any OpenAI-compatible chat-completions endpoint (AI_JUDGE_OPENAI_URL, _KEY, _MODEL).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import urllib.request
from typing import Any

from django.conf import settings

CAUTIOUS = (
    "consult",
    "cardiologist",
    "pharmacist",
    "talk to",
    "check with",
    "do not double",
    "safer",
    "before changing",
    "keep taking",
    "doctor advises",
)
RISKY = (
    "ignore",
    "just stop",
    "double the dose",
    "doubling",
    "will be fine",
    "fine to",
    "harmless",
    "rarely matters",
    "worry too much",
    "any time",
)


def _signal(text: str) -> float:
    """A crude safety score in [0, 1]: cautious phrases up, risky phrases down."""
    lowered = text.lower()
    score = sum(phrase in lowered for phrase in CAUTIOUS) - 2 * sum(p in lowered for p in RISKY)
    return max(0.0, min(1.0, 0.5 + 0.15 * score))


def _value(dimension: dict[str, Any], quality: float) -> Any:
    kind = dimension.get("kind", "likert")
    if kind == "binary":
        return 1 if quality >= 0.5 else 0
    if kind == "choice":
        options = dimension.get("options") or [""]
        return options[min(int(quality * len(options)), len(options) - 1)]
    low, high = int(dimension["min"]), int(dimension["max"])
    return low + round(quality * (high - low))


def _answer_from_qualities(
    task_type: str, qualities: list[float], dimensions: list[dict[str, Any]]
) -> dict[str, Any]:
    if task_type == "pairwise":
        preference = (
            "a" if qualities[0] > qualities[1] else "b" if qualities[1] > qualities[0] else "tie"
        )
        return {
            "preference": preference,
            "answers": {d["key"]: [_value(d, q) for q in qualities] for d in dimensions},
        }
    if task_type == "ranking":
        order = sorted(range(len(qualities)), key=lambda index: (-qualities[index], index))
        return {
            "ranking": order,
            "answers": {d["key"]: [_value(d, q) for q in qualities] for d in dimensions},
        }
    if task_type == "rating":
        return {"answers": {d["key"]: _value(d, qualities[0]) for d in dimensions}}
    raise ValueError(f"judges do not write {task_type} answers")


def heuristic_judge(
    *, task_type: str, prompt: str, responses: list[str], dimensions: list[dict[str, Any]]
) -> dict[str, Any]:
    return _answer_from_qualities(task_type, [_signal(text) for text in responses], dimensions)


def random_judge(
    *, task_type: str, prompt: str, responses: list[str], dimensions: list[dict[str, Any]]
) -> dict[str, Any]:
    seed = int.from_bytes(hashlib.sha256((prompt + "\x00".join(responses)).encode()).digest()[:8])
    rng = random.Random(seed)
    return _answer_from_qualities(task_type, [rng.random() for _ in responses], dimensions)


heuristic_judge.version = "heuristic-1"  # type: ignore[attr-defined]
random_judge.version = "random-1"  # type: ignore[attr-defined]


def openai_judge(
    *, task_type: str, prompt: str, responses: list[str], dimensions: list[dict[str, Any]]
) -> dict[str, Any]:
    """Ask an OpenAI-compatible endpoint for the answer as JSON (settings give URL, key and
    model; the URL is operator configuration, not user input)."""

    instructions = (
        "You are a careful expert reviewer. Reply with JSON only, in this shape: "
        + json.dumps(_answer_from_qualities(task_type, [0.5] * len(responses), dimensions))
        + ". Fill in your judgement of the responses below."
    )
    listing = "\n\n".join(f"Response {chr(65 + i)}:\n{text}" for i, text in enumerate(responses))
    body = json.dumps(
        {
            "model": settings.AI_JUDGE_OPENAI_MODEL,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": instructions},
                {"role": "user", "content": f"Prompt:\n{prompt}\n\n{listing}"},
            ],
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 (operator-configured URL)
        settings.AI_JUDGE_OPENAI_URL.rstrip("/") + "/chat/completions",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {settings.AI_JUDGE_OPENAI_KEY}",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310
        content = json.loads(reply.read())["choices"][0]["message"]["content"]
    match = re.search(r"\{.*\}", content, re.DOTALL)
    if match is None:
        raise ValueError("the judge did not answer with JSON")
    answer: dict[str, Any] = json.loads(match.group(0))
    return answer


def _openai_version() -> str:
    return f"openai:{settings.AI_JUDGE_OPENAI_MODEL}"


# The OpenAI-compatible judge's version is the model it is configured with, read when it runs.
openai_judge.version = _openai_version  # type: ignore[attr-defined]
