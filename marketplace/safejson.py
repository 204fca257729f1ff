"""JSON input the database can store, parsed without recursion surprises.

One validator for every JSON a client sends: the JSON body middleware (DRF endpoints and
allauth's headless API alike), DRF's JSON parser and the JSON Lines import parser all call
`loads`. It refuses, with the path of every problem:

- nesting deeper than `MAX_DEPTH` (checked on the text before parsing: Python's parser
  recurses, and 100,000 brackets end in a RecursionError);
- text PostgreSQL cannot store or Python cannot encode: NUL (U+0000) and lone surrogates
  (U+D800..U+DFFF), in keys and values alike; SQLite would take a NUL, so refusing it everywhere
  keeps both backends answering the same;
- numbers no column holds: integers outside the signed 64-bit range, and numbers too large to
  be a finite double (`1e400`).

The checks of the parsed value run only when a cheap scan of the text finds something that may
need them (an escape of NUL or of a surrogate, a long run of digits, a three-digit exponent), so
ordinary bodies pay one regular-expression search.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 64
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# A JSON string (escapes included) or a bracket. Strings are matched whole so that brackets
# inside them are not counted.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
# What may make the parsed value need a closer look. False alarms only cost the walk.
_SUSPECT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])|\d{19}|[eE][+-]?\d{3}|\x00")
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class Problem:
    field: str | None
    message: str
    code: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "code": self.code}


class JsonRefused(ValueError):
    """The JSON cannot be accepted; `problems` names each place (empty for a whole-body issue)."""

    def __init__(self, code: str, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = problems or []


def nesting_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `limit`, without parsing it.

    Exact for valid JSON. For invalid JSON it may count brackets inside a broken string, but
    Python's parser only recurses over the valid prefix of a text, where the count is exact.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        first = text[match.start()]
        if first in "[{":
            depth += 1
            if depth > limit:
                return True
        elif first in "]}":
            depth -= 1
    return False


def text_problem(value: str) -> tuple[str, str] | None:
    """(code, message) when a string cannot be stored, else None."""
    found = _UNSTORABLE_CHAR.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "null_character", "contains a NUL character (U+0000), which cannot be stored"
    return (
        "lone_surrogate",
        f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not valid Unicode",
    )


def printable_key(key: str) -> str:
    """A key as it can be shown back in an error (no NUL, no lone surrogate)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    shown = printable_key(key)
    return f"{path}.{shown}" if path else shown


def value_problems(value: Any, *, root: str = "") -> list[Problem]:
    """Every unstorable string or number in a parsed JSON value, walked without recursion."""
    problems: list[Problem] = []
    stack: list[tuple[Any, str]] = [(value, root)]
    while stack:
        current, path = stack.pop()
        if isinstance(current, str):
            found = text_problem(current)
            if found is not None:
                problems.append(Problem(path or None, found[1], found[0]))
        elif isinstance(current, bool) or current is None:
            continue
        elif isinstance(current, int):
            if not INT64_MIN <= current <= INT64_MAX:
                problems.append(
                    Problem(
                        path or None,
                        "integer outside the 64-bit range (-2^63 to 2^63-1)",
                        "number_out_of_range",
                    )
                )
        elif isinstance(current, float):
            if not math.isfinite(current):
                problems.append(
                    Problem(path or None, "number too large to be stored", "number_out_of_range")
                )
        elif isinstance(current, dict):
            for key, child in current.items():
                found = text_problem(key)
                if found is not None:
                    problems.append(Problem(_child(path, key), f"key {found[1]}", found[0]))
                stack.append((child, _child(path, key)))
        elif isinstance(current, list):
            stack.extend((child, _child(path, index)) for index, child in enumerate(current))
    problems.sort(key=lambda problem: problem.field or "")
    return problems


def needs_value_check(text: str) -> bool:
    return _SUSPECT.search(text) is not None


def decode(raw: bytes) -> str:
    """UTF-8 text of a body; JSON travels as UTF-8 (RFC 8259), and anything else is refused
    here because `json.loads(bytes)` would let encoded surrogates through."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonRefused(
            "invalid_encoding", f"The body is not valid UTF-8 (at byte {error.start})."
        ) from None


def check_text(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse JSON text nested too deeply; call before any parser sees it."""
    if nesting_exceeds(text, max_depth):
        raise JsonRefused("json_too_deep", f"The JSON is nested deeper than {max_depth} levels.")


def check_value(value: Any, *, root: str = "") -> None:
    problems = value_problems(value, root=root)
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        raise JsonRefused("validation_error", f"The request has {len(problems)} {noun}.", problems)


def screen(text: str, *, max_depth: int = MAX_DEPTH) -> None:
    """The checks of `loads` for a body another parser will read: invalid JSON passes (that
    parser reports it in its own words), anything `loads` would refuse is refused."""
    check_text(text, max_depth=max_depth)
    if needs_value_check(text):
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
        except JsonRefused:
            raise
        except ValueError:
            return
        check_value(value)


def _refuse_constant(name: str) -> Any:
    raise JsonRefused("invalid_json", f"{name} is not a JSON number.")


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON, refusing deep nesting and values the database cannot store.

    Raises JsonRefused for those, and ValueError (json.JSONDecodeError) for invalid JSON.
    """
    text = decode(data) if isinstance(data, bytes | bytearray) else data
    check_text(text, max_depth=max_depth)
    value = json.loads(text, parse_constant=_refuse_constant)
    if needs_value_check(text):
        check_value(value)
    return value
