"""Validation of answers against a rubric version (docs/API.md, "Answers").

One function serves gold lines at import, submissions at submit time and exam questions, so the
three can never disagree about what a valid answer is. It returns the normalised answer and
every problem found, each with the path of the offending value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from projects.models import DimensionKind, TaskType

MAX_TEXT_ANSWER_CHARS = 100_000
PREFERENCES = ("a", "b", "tie")


@dataclass(frozen=True)
class DimensionSpec:
    key: str
    kind: str
    min_value: int | None = None
    max_value: int | None = None
    options: tuple[str, ...] = ()
    weight: float = 1.0
    tolerance: int = 1

    @classmethod
    def from_model(cls, dimension: Any) -> DimensionSpec:
        return cls(
            key=dimension.key,
            kind=dimension.kind,
            min_value=dimension.min_value,
            max_value=dimension.max_value,
            options=tuple(dimension.options or ()),
            weight=dimension.weight,
            tolerance=dimension.tolerance,
        )


Problem = tuple[str, str]  # (path, message)


def dimension_specs(dimensions: Iterable[Any]) -> tuple[DimensionSpec, ...]:
    return tuple(DimensionSpec.from_model(dimension) for dimension in dimensions)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_value(spec: DimensionSpec, value: Any, path: str) -> tuple[Any, Problem | None]:
    if spec.kind == DimensionKind.LIKERT:
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        if not _is_int(value):
            return None, (path, f"'{spec.key}' needs a whole number")
        assert spec.min_value is not None and spec.max_value is not None
        if not spec.min_value <= value <= spec.max_value:
            return None, (
                path,
                f"'{spec.key}' must be between {spec.min_value} and {spec.max_value}, got {value}",
            )
        return value, None
    if spec.kind == DimensionKind.BINARY:
        if isinstance(value, bool):
            return int(value), None
        if _is_int(value) and value in (0, 1):
            return value, None
        return None, (path, f"'{spec.key}' must be 0 or 1")
    if value not in spec.options:
        return None, (path, f"'{spec.key}' must be one of {list(spec.options)}")
    return value, None


def _check_dimensions(
    raw: Any,
    dimensions: Sequence[DimensionSpec],
    *,
    per_response: int | None,
    require_all: bool,
    path: str,
    problems: list[Problem],
) -> dict[str, Any]:
    """`answers`: one value per dimension, or (per_response) a list of one value per response."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append((path, "must be an object keyed by dimension"))
        return {}
    known = {spec.key: spec for spec in dimensions}
    for key in raw:
        if key not in known:
            problems.append((f"{path}.{key}", f"unknown dimension '{key}'"))
    normalised: dict[str, Any] = {}
    for spec in dimensions:
        child = f"{path}.{spec.key}"
        if spec.key not in raw:
            if require_all:
                problems.append((child, f"'{spec.key}' is missing"))
            continue
        value = raw[spec.key]
        if per_response is None:
            checked, problem = _check_value(spec, value, child)
            if problem:
                problems.append(problem)
            else:
                normalised[spec.key] = checked
            continue
        if not isinstance(value, list) or len(value) != per_response:
            problems.append((child, f"'{spec.key}' needs a list of {per_response} values"))
            continue
        values = []
        for index, element in enumerate(value):
            checked, problem = _check_value(spec, element, f"{child}[{index}]")
            if problem:
                problems.append(problem)
            values.append(checked)
        normalised[spec.key] = values
    return normalised


def _check_text(answer: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    text = answer.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append(("text", "must be non-empty text"))
        return {}
    if len(text) > MAX_TEXT_ANSWER_CHARS:
        problems.append(("text", f"must be at most {MAX_TEXT_ANSWER_CHARS} characters"))
        return {}
    return {"text": text}


def validate_answer(
    *,
    task_type: str,
    dimensions: Sequence[DimensionSpec],
    response_count: int,
    answer: Any,
    require_all_dimensions: bool,
) -> tuple[dict[str, Any], list[Problem]]:
    """Check an answer (docs/API.md, "Answers"). Returns (normalised answer, problems)."""
    problems: list[Problem] = []
    if not isinstance(answer, dict):
        return {}, [("", "must be an object")]

    if task_type in (TaskType.DEMONSTRATION, TaskType.CORRECTION):
        allowed = {"text"}
        normalised = _check_text(answer, problems)
    elif task_type == TaskType.PAIRWISE:
        allowed = {"preference", "answers"}
        normalised = {}
        preference = answer.get("preference")
        if preference not in PREFERENCES:
            problems.append(("preference", "must be 'a', 'b' or 'tie'"))
        else:
            normalised["preference"] = preference
        normalised["answers"] = _check_dimensions(
            answer.get("answers"),
            dimensions,
            per_response=2,
            require_all=require_all_dimensions,
            path="answers",
            problems=problems,
        )
    elif task_type == TaskType.RANKING:
        allowed = {"ranking", "answers"}
        normalised = {}
        ranking = answer.get("ranking")
        if (
            not isinstance(ranking, list)
            or not all(_is_int(index) for index in ranking)
            or sorted(ranking) != list(range(response_count))
        ):
            problems.append(
                (
                    "ranking",
                    f"must list each response index 0..{response_count - 1} once, best first",
                )
            )
        else:
            normalised["ranking"] = ranking
        normalised["answers"] = _check_dimensions(
            answer.get("answers"),
            dimensions,
            per_response=response_count,
            require_all=require_all_dimensions,
            path="answers",
            problems=problems,
        )
    elif task_type == TaskType.RATING:
        allowed = {"answers"}
        normalised = {
            "answers": _check_dimensions(
                answer.get("answers"),
                dimensions,
                per_response=None,
                require_all=require_all_dimensions,
                path="answers",
                problems=problems,
            )
        }
        if not require_all_dimensions and not normalised["answers"] and not problems:
            problems.append(("answers", "needs at least one dimension"))
    else:
        return {}, [("", f"unknown task type '{task_type}'")]

    for key in answer:
        if key not in allowed:
            problems.append((key, f"unknown field '{key}'"))
    return normalised, problems
