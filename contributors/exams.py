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
        if isinstance(answer, bool) or not isinstance(answer, int | float):
            return 0.0
        if not math.isfinite(float(answer)):
            return 0.0
        return (
            1.0
            if abs(float(answer) - float(key["value"])) <= float(key.get("tolerance", 0))
            else 0.0
        )
    if question.kind == QuestionKind.SHORT_TEXT:
        if not isinstance(answer, str) or len(answer) > MAX_TEXT_ANSWER:
            return 0.0
        if "regex" in key:
            return 1.0 if re.fullmatch(key["regex"], answer.strip()) else 0.0
        return (
            1.0 if answer.strip().casefold() == str(key.get("text", "")).strip().casefold() else 0.0
        )
    if question.kind == QuestionKind.PAIRWISE:
        if not isinstance(answer, dict):
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
