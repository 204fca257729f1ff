"""Streaming JSON Lines parsing and per-line validation for item and gold imports.

The body is read in chunks and split into lines here, so a 50 MB upload never sits in memory
whole; a line longer than the limit is reported and skipped without being buffered. Each line
is validated by plain Python (not a DRF serializer per line: 100,000 serializers take longer
than the whole import may).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings

from marketplace import safejson
from projects.answers import DimensionSpec, validate_answer
from projects.models import RESPONSE_COUNTS, ItemSplit, TaskType

CHUNK_BYTES = 256 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
MAX_EXTERNAL_ID_CHARS = 255
MAX_FEATURE_DIMENSION = 4096
ITEM_FIELDS = frozenset(
    {"external_id", "prompt", "responses", "context", "features", "split", "model_version"}
)
# Plain strings, computed once: TextChoices.values builds a new list on every access, which
# cost 2 s of a 100k-line import.
SPLITS = frozenset(str(value) for value in ItemSplit.values)


@dataclass(frozen=True)
class ImportLimits:
    max_body_bytes: int
    max_line_bytes: int
    max_lines: int

    @classmethod
    def from_settings(cls) -> ImportLimits:
        return cls(
            max_body_bytes=settings.IMPORT_MAX_BODY_BYTES,
            max_line_bytes=settings.IMPORT_MAX_LINE_BYTES,
            max_lines=settings.IMPORT_MAX_LINES,
        )


class BodyTooLarge(Exception):
    """The body (or its number of lines) is over a limit: answered with 413."""


@dataclass
class LineError:
    line: int
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class ParsedItem:
    line: int
    external_id: str | None
    prompt: str
    responses: list[str]
    context: dict[str, Any]
    features: list[list[float]] | None
    split: str
    gold: dict[str, Any] | None = None
    model_version: str = ""
    public_id: uuid.UUID = field(default_factory=uuid.uuid4)


def iter_raw_lines(stream: IO[bytes], limits: ImportLimits) -> Iterator[tuple[int, bytes | None]]:
    """Yield (line number, bytes) for each non-blank line; bytes is None for an over-long line.

    Handles a UTF-8 BOM, CRLF line ends and a missing final newline. Raises BodyTooLarge as soon
    as the body passes the byte or line limit.
    """
    total = 0
    line_number = 0
    pending = bytearray()
    overflowing = False  # inside a line already known to be too long: drop its bytes
    first = True
    while True:
        chunk = stream.read(CHUNK_BYTES)
        if not chunk:
            break
        total += len(chunk)
        if total > limits.max_body_bytes:
            raise BodyTooLarge(f"The body is larger than {limits.max_body_bytes} bytes.")
        if first:
            first = False
            if chunk.startswith(UTF8_BOM):
                chunk = chunk[len(UTF8_BOM) :]
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            if not overflowing:
                pending += piece
                if len(pending) > limits.max_line_bytes:
                    overflowing = True
                    pending.clear()
            if newline < 0:
                break
            line_number += 1
            if line_number > limits.max_lines:
                raise BodyTooLarge(f"The body has more than {limits.max_lines} lines.")
            yield from _finish_line(line_number, pending, overflowing)
            pending.clear()
            overflowing = False
            start = newline + 1
    if pending or overflowing:
        line_number += 1
        if line_number > limits.max_lines:
            raise BodyTooLarge(f"The body has more than {limits.max_lines} lines.")
        yield from _finish_line(line_number, pending, overflowing)


def _finish_line(
    line_number: int, pending: bytearray, overflowing: bool
) -> Iterator[tuple[int, bytes | None]]:
    if overflowing:
        yield line_number, None
        return
    raw = bytes(pending).rstrip(b"\r")
    if raw.strip():
        yield line_number, raw


def _finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def parse_item_line(
    line_number: int,
    raw: bytes | None,
    *,
    task_type: str,
    limits: ImportLimits,
    dimensions: Sequence[DimensionSpec] | None,
) -> tuple[ParsedItem | None, list[LineError]]:
    """Validate one line. `dimensions` is given for gold imports (the line must carry `gold`)."""
    errors: list[LineError] = []

    def fail(field_name: str | None, message: str) -> None:
        errors.append(LineError(line_number, field_name, message))

    if raw is None:
        fail(None, f"line is longer than {limits.max_line_bytes} bytes")
        return None, errors
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        fail(None, f"invalid UTF-8 at byte {error.start}")
        return None, errors
    try:
        data = safejson.loads(text)
    except safejson.JsonRefused as refused:
        # Nesting, NUL, lone surrogates, numbers no column holds: the shared validator.
        for problem in refused.problems or [safejson.Problem(None, refused.message, "")]:
            fail(problem.field, problem.message)
        return None, errors
    except ValueError as error:
        fail(None, f"invalid JSON: {error}")
        return None, errors
    if isinstance(data, list):
        fail(None, "a JSON array is not a line of JSON Lines: send one object per line")
        return None, errors
    if not isinstance(data, dict):
        fail(None, "each line must be a JSON object")
        return None, errors

    allowed = ITEM_FIELDS | ({"gold"} if dimensions is not None else set())
    for key in data:
        if key not in allowed:
            fail(key, f"unknown field '{key}'")

    external_id = data.get("external_id")
    if external_id is not None:
        if not isinstance(external_id, str) or not external_id.strip():
            fail("external_id", "must be a non-empty string")
            external_id = None
        elif len(external_id) > MAX_EXTERNAL_ID_CHARS:
            fail("external_id", f"must be at most {MAX_EXTERNAL_ID_CHARS} characters")
            external_id = None

    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        fail("prompt", "must be non-empty text")

    low, high = RESPONSE_COUNTS[task_type]
    responses = data.get("responses", [])
    if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
        fail("responses", "must be a list of strings")
        responses = []
    elif not low <= len(responses) <= high:
        expected = f"exactly {low}" if low == high else f"{low} to {high}"
        fail("responses", f"a {task_type} item needs {expected} responses, got {len(responses)}")
    elif any(not response.strip() for response in responses):
        fail("responses", "responses must not be empty")

    context = data.get("context", {})
    if context is None:
        context = {}
    if not isinstance(context, dict):
        fail("context", "must be an object")

    features = data.get("features")
    if features is not None:
        if task_type == TaskType.DEMONSTRATION:
            fail("features", "demonstration items have no responses to describe")
        elif (
            not isinstance(features, list)
            or len(features) != len(responses)
            or not all(isinstance(vector, list) and vector for vector in features)
        ):
            fail("features", "needs one non-empty list of numbers per response")
        elif len({len(vector) for vector in features}) != 1:
            fail("features", "every response's vector must have the same length")
        elif len(features[0]) > MAX_FEATURE_DIMENSION:
            fail("features", f"vectors may have at most {MAX_FEATURE_DIMENSION} numbers")
        elif not all(_finite_number(value) for vector in features for value in vector):
            fail("features", "must contain only finite numbers")

    split = data.get("split", "train")
    if split not in SPLITS:
        fail("split", "must be 'train' or 'eval'")
    model_version = data.get("model_version", "")
    if not isinstance(model_version, str) or len(model_version) > 100:
        fail("model_version", "text up to 100 characters")

    gold = None
    if dimensions is not None:
        if "gold" not in data:
            fail("gold", "a gold line needs its 'gold' answer")
        elif not errors:
            gold, problems = validate_answer(
                task_type=task_type,
                dimensions=dimensions,
                response_count=len(responses),
                answer=data["gold"],
                require_all_dimensions=False,
            )
            for path, message in problems:
                fail(f"gold.{path}" if path else "gold", message)

    if errors:
        return None, errors
    return (
        ParsedItem(
            line=line_number,
            external_id=external_id,
            prompt=str(prompt),
            responses=responses,
            context=context,
            features=features,
            split=split,
            gold=gold,
            model_version=model_version,
        ),
        [],
    )
