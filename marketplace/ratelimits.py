"""allauth's rate limits answered as 429 with Retry-After on the headless API.

allauth counts hits per rate in the cache (a newest-first list of timestamps per key) but
reports a login lockout as a 400 form error and its other 429s without Retry-After. The
wait is read back from the same counters. `allauth.core.internal.ratelimit` is internal to
allauth: the version is pinned and tests/marketplace/test_emails_and_lockouts.py covers it.
"""

from __future__ import annotations

import math
import time
from typing import Any

from allauth.core.internal.ratelimit import get_cache_key, get_rates
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from marketplace.http_errors import error_response

# allauth's headless limits other than the login lockout are per minute or shorter.
DEFAULT_RETRY_AFTER_SECONDS = 60


def is_headless(request: HttpRequest) -> bool:
    return hasattr(getattr(request, "allauth", None), "headless")


def retry_after_seconds(
    request: HttpRequest, *, action: str, key: str | None = None, user: Any = None
) -> int:
    """Seconds until `action` admits another hit from this client."""
    now = time.time()
    wait = 0.0
    for rate in get_rates(app="allauth.account", action=action):
        if (rate.per == "key" and key is None) or (rate.per == "user" and user is None):
            continue
        cache_key = get_cache_key(
            request, app="allauth.account", action=action, rate=rate, key=key, user=user
        )
        live = [stamp for stamp in cache.get(cache_key, []) if stamp > now - rate.duration]
        if len(live) >= rate.amount:
            # Newest first: a hit is admitted again once the amount-th newest one expires.
            wait = max(wait, live[rate.amount - 1] + rate.duration - now)
    return max(1, math.ceil(wait))


def too_many_attempts(request: HttpRequest, *, seconds: int) -> HttpResponse:
    response = error_response(
        request,
        429,
        "too_many_login_attempts",
        "Too many failed login attempts. Try again later.",
        {"retry_after_seconds": seconds},
    )
    response["Retry-After"] = str(seconds)
    return response
