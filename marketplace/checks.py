"""Deployment checks of our own, run by `manage.py check --deploy`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def shared_cache_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith(("locmem.LocMemCache", "dummy.DummyCache")):
        return [
            Warning(
                "The cache is local to each process, so allauth's login and signup rate limits "
                "are not shared between workers.",
                hint="Set REDIS_URL (or CACHE_URL) to a shared cache.",
                id="marketplace.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def email_verification_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    if settings.ACCOUNT_EMAIL_VERIFICATION != "mandatory":
        return [
            Warning(
                "Email verification is not mandatory.",
                hint="Leave ACCOUNT_EMAIL_VERIFICATION unset (or 'mandatory') in production.",
                id="marketplace.W002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def production_mode_check(app_configs: Any, **kwargs: Any) -> list[Warning]:
    # DJANGO_DEBUG=false alone no longer means production (debug is off by default): a deploy
    # that still relies on it gets the development defaults, and this says so.
    if not settings.PRODUCTION:
        return [
            Warning(
                "The development defaults are in use (loopback hosts, generated secret key, "
                "optional email verification, http webhooks, no secure cookies).",
                hint="Set DJANGO_PRODUCTION=true in production.",
                id="marketplace.W003",
            )
        ]
    return []
