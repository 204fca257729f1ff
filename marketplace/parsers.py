"""DRF's JSON parser, with the checks every JSON input gets (`marketplace.safejson`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from marketplace import safejson
from marketplace.errors import DomainError


class JSONParser(parsers.JSONParser):
    """Deep nesting, NUL and lone surrogates, out-of-range numbers and NaN/Infinity are
    refused with 400 naming every field, before a serializer or the database sees them."""

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return safejson.loads(raw)
        except safejson.JsonRefused as refused:
            details = [problem.as_dict() for problem in refused.problems] or None
            raise DomainError(refused.message, code=refused.code, details=details) from None
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
