"""Template filters shared by every app's pages."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

register = template.Library()

# Currencies whose minor unit is the major unit (Stripe's zero-decimal list, the common ones).
ZERO_DECIMAL = frozenset({"jpy", "krw", "vnd", "clp", "isk", "ugx", "xaf", "xof"})


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # CommonMark with raw HTML off: any tag in item text comes out as escaped text, and the
    # parser's link validation refuses javascript:, vbscript:, file: and data: (but images) URLs.
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


@register.filter(name="markdown")
def markdown_filter(text: Any) -> SafeString:
    """Item text (prompts, responses, instructions) as inert HTML: headings, lists, code."""
    if text is None:
        return mark_safe("")
    return mark_safe(_markdown().render(str(text)))  # noqa: S308 - html disabled above


@register.filter
def money(amount: Any, currency: str = "usd") -> str:
    """Minor units as an amount with its currency code: 1234, 'usd' -> '12.34 USD'."""
    if amount is None:
        return "-"
    code = (currency or "usd").lower()
    if code in ZERO_DECIMAL:
        return f"{int(amount):,} {code.upper()}"
    return f"{int(amount) / 100:,.2f} {code.upper()}"


@register.filter
def percent(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    if not isinstance(mapping, dict):
        return None
    return mapping.get(key, mapping.get(str(key)))


@register.filter
def letter(index: int) -> str:
    """Response labels: 0 -> 'A', 1 -> 'B'."""
    return chr(ord("A") + int(index))
