"""The path converter for every integer id in a URL.

Django's `int` converter takes any number of digits; a 20-digit id then reaches the database
(SQLite raises OverflowError, a 500). `id` matches only what a signed 64-bit primary key can
be, so anything larger is simply a path that does not exist: 404.
"""

from __future__ import annotations

from django.urls import register_converter

ID_MAX = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > ID_MAX:
            raise ValueError(value)  # the pattern does not match: 404
        return number

    def to_url(self, value: int | str) -> str:
        return str(value)


def register() -> None:
    register_converter(IdConverter, "id")
