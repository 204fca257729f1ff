"""`/healthz`: is this process able to serve? Checks the database and, when configured, the
broker and the shared cache. 200 when all pass, 503 otherwise, with each check's result."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as broker_connection:
        broker_connection.ensure_connection(max_retries=1, timeout=2)


def _cache() -> None:
    cache.set("healthz", "ok", timeout=10)
    if cache.get("healthz") != "ok":
        raise RuntimeError("cache did not return what was written")


def _run(check: Callable[[], None]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        check()
    except Exception as error:  # any failure means "not healthy", reported, never raised
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _run(_database)}
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _run(_broker)
    if not settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        checks["cache"] = _run(_cache)
    healthy = all(result["ok"] for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
