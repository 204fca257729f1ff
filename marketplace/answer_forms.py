"""Rubric controls on pages: what to draw for each dimension, and the posted form back into an
answer (docs/API.md, "Answers"). Validation stays in `projects.answers.validate_answer` (the same
function the API uses); this only reshapes form fields.

Used by the labeling pages (projects) and pairwise exam questions (contributors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import QueryDict


@dataclass(frozen=True)
class Choice:
    value: str
    text: str
    hotkey: str  # the number key that picks it on the keyboard, or "" when none fits


@dataclass(frozen=True)
class Control:
    """One group of radio buttons: a dimension (for one response, when per response)."""

    name: str
    key: str
    label: str
    description: str
    response: int | None
    choices: tuple[Choice, ...]


def _choices(dimension: dict[str, Any]) -> tuple[Choice, ...]:
    kind = dimension.get("kind", "likert")
    if kind == "binary":
        return (Choice("0", "No", "0"), Choice("1", "Yes", "1"))
    if kind == "choice":
        options = list(dimension.get("options") or [])
        return tuple(
            Choice(option, option, str(index + 1) if index < 9 else "")
            for index, option in enumerate(options)
        )
    low, high = int(dimension.get("min") or 0), int(dimension.get("max") or 0)
    return tuple(
        Choice(str(value), str(value), str(value) if 0 <= value <= 9 else "")
        for value in range(low, high + 1)
    )


def controls(
    dimensions: list[dict[str, Any]], *, response_count: int | None, prefix: str = ""
) -> list[Control]:
    """Controls in reading order: per response, every dimension (pairwise/ranking), or one each."""
    rows = []
    responses: list[int | None] = (
        list(range(response_count)) if response_count is not None else [None]
    )
    for response in responses:
        for dimension in dimensions:
            key = dimension["key"]
            name = f"{prefix}dim.{key}" + (f".{response}" if response is not None else "")
            rows.append(
                Control(
                    name=name,
                    key=key,
                    label=dimension.get("label") or key,
                    description=dimension.get("description", ""),
                    response=response,
                    choices=_choices(dimension),
                )
            )
    return rows


def _value(dimension: dict[str, Any], raw: str) -> Any:
    if dimension.get("kind") == "choice":
        return raw
    try:
        return int(raw)
    except ValueError:
        return raw  # left for the validator to report with the dimension's name


def dimension_answers(
    post: QueryDict,
    dimensions: list[dict[str, Any]],
    *,
    response_count: int | None,
    prefix: str = "",
) -> dict[str, Any]:
    """`answers` of the API table from posted radio groups; missing values are simply absent."""
    answers: dict[str, Any] = {}
    for dimension in dimensions:
        key = dimension["key"]
        if response_count is None:
            raw = post.get(f"{prefix}dim.{key}")
            if raw not in (None, ""):
                answers[key] = _value(dimension, raw)
            continue
        values = [post.get(f"{prefix}dim.{key}.{index}") for index in range(response_count)]
        if any(value not in (None, "") for value in values):
            answers[key] = [
                None if value in (None, "") else _value(dimension, value) for value in values
            ]
    return answers


def rubric_dicts(dimensions: Any) -> list[dict[str, Any]]:
    """Dimension model rows as the dicts `controls` reads (exam rubrics already are dicts)."""
    return [
        {
            "key": dimension.key,
            "label": dimension.label,
            "description": dimension.description,
            "kind": dimension.kind,
            "min": dimension.min_value,
            "max": dimension.max_value,
            "options": dimension.options,
        }
        for dimension in dimensions
    ]
