"""Grading of exam answers. Answer keys are read here and nowhere that builds a response."""

from __future__ import annotations

import math
import re
from typing import Any

from contributors.models import ExamQuestion, QuestionKind
from scoring.engine.gold import GoldDimension, gold_item_score

MAX_TEXT_ANSWER = 2000


def _rubric(question: ExamQuestion) -> list[GoldDimension]:
    return [
        GoldDimension(
            key=dimension["key"],
            kind=dimension.get("kind", "likert"),
            weight=float(dimension.get("weight", 1.0)),
            tolerance=int(dimension.get("tolerance", 1)),
        )
        for dimension in question.rubric or []
    ]


def _finite(value: Any) -> float | None:
    """The answer as a finite float, or None (not a number, or beyond a double: 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _finite(value) is not None


def _is_pairwise_shape(answer: Any) -> bool:
    """An answer in the shape of docs/API.md, "Answers", with plain values only: the gold
    scorer compares and hashes what it is given, so nested or oversized values never reach
    it."""
    if not isinstance(answer, dict):
        return False
    if "preference" in answer and not isinstance(answer["preference"], str):
        return False
    ranking = answer.get("ranking")
    if ranking is not None and not (
        isinstance(ranking, list)
        and all(isinstance(index, int) and not isinstance(index, bool) for index in ranking)
    ):
        return False
    values = answer.get("answers", {})
    if not isinstance(values, dict):
        return False
    return all(
        _is_scalar(value)
        or (isinstance(value, list) and all(_is_scalar(element) for element in value))
        for value in values.values()
    )


def grade_question(question: ExamQuestion, answer: Any) -> float:
    """The share of the question's points an answer earns, in [0, 1]. Bad shapes earn 0."""
    key = question.answer_key
    if answer is None:
        return 0.0
    if question.kind == QuestionKind.SINGLE_CHOICE:
        return 1.0 if answer == key.get("option") else 0.0
    if question.kind == QuestionKind.MULTIPLE_CHOICE:
        if not isinstance(answer, list) or not all(isinstance(a, str) for a in answer):
            return 0.0
        return 1.0 if set(answer) == set(key.get("options", [])) else 0.0
    if question.kind == QuestionKind.NUMERIC:
        number = _finite(answer)
        if number is None:
            return 0.0
        return 1.0 if abs(number - float(key["value"])) <= float(key.get("tolerance", 0)) else 0.0
    if question.kind == QuestionKind.SHORT_TEXT:
        if not isinstance(answer, str) or len(answer) > MAX_TEXT_ANSWER:
            return 0.0
        if "regex" in key:
            return 1.0 if re.fullmatch(key["regex"], answer.strip()) else 0.0
        return (
            1.0 if answer.strip().casefold() == str(key.get("text", "")).strip().casefold() else 0.0
        )
    if question.kind == QuestionKind.PAIRWISE:
        if not _is_pairwise_shape(answer):
            return 0.0
        score = gold_item_score(answer=answer, gold=key, dimensions=_rubric(question))
        return score or 0.0
    return 0.0


def public_question(question: ExamQuestion) -> dict[str, Any]:
    """What an expert sees of a question: never the key, never its shape."""
    shown: dict[str, Any] = {"id": question.id, "kind": question.kind, "prompt": question.prompt}
    if question.kind in (QuestionKind.SINGLE_CHOICE, QuestionKind.MULTIPLE_CHOICE):
        shown["options"] = question.options
    if question.kind == QuestionKind.PAIRWISE:
        shown["responses"] = question.responses
        shown["rubric"] = [
            {
                key: value
                for key, value in dimension.items()
                if key in ("key", "label", "description", "kind", "min", "max", "options")
            }
            for dimension in question.rubric or []
        ]
    shown["points"] = question.points
    return shown
