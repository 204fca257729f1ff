"""Serializer fields shared by every app."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from marketplace.currencies import is_supported_currency

# 10^12 minor units (ten billion dollars) is above any real project and far below 2^63, so sums
# of many amounts can never overflow a PostgreSQL bigint.
MAX_MONEY_AMOUNT = 10**12


@extend_schema_field(OpenApiTypes.INT64)
class MoneyAmountField(serializers.Field):
    """An amount in integer minor units. Strings, floats, booleans and NaN are refused rather
    than coerced: a client that sends 1.5 or "150" has a bug we should not guess around."""

    default_error_messages = {
        "type": "Must be an integer number of minor units (cents), not {kind}.",
        "min": "Must be at least {minimum}.",
        "max": "Must be at most {maximum}.",
    }

    def __init__(self, *, minimum: int = 1, maximum: int = MAX_MONEY_AMOUNT, **kwargs: Any):
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("type", kind=type(data).__name__)
        if data < self.minimum:
            self.fail("min", minimum=self.minimum)
        if data > self.maximum:
            self.fail("max", maximum=self.maximum)
        return data

    def to_representation(self, value: int) -> int:
        return int(value)


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON integer (no "3" strings, no 3.0 floats)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A finite JSON number (no strings, booleans, NaN or infinities)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "type": "string",
        "pattern": "^[a-z]{3}$",
        "example": "usd",
        "description": "an ISO 4217 code Stripe supports, lower case",
    }
)
class CurrencyField(serializers.Field):
    """A currency: an ISO 4217 code Stripe supports, in lower case (`usd`, `eur`, `jpy`).
    Anything else (`xyz`, `USD`, `840`) is a 400 `unsupported_currency`; nothing is
    normalised, so what is stored is exactly what the client sent."""

    default_error_messages = {
        "unsupported_currency": (
            "Must be a lower-case ISO 4217 currency code that Stripe supports, e.g. 'usd'; "
            "got {value!r}."
        ),
    }

    def to_internal_value(self, data: Any) -> str:
        if not is_supported_currency(data):
            self.fail("unsupported_currency", value=data)
        return str(data)

    def to_representation(self, value: Any) -> str:
        return str(value)
