"""Personas and clients shared by every test.

API tests authenticate the real way: the allauth headless app login returns a session token
that is then sent as `X-Session-Token`; lab pipelines send `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from marketplace import services
from marketplace.celery import app as celery_app
from marketplace.models import Lab, Role, User
from tests.marketplace.factories import PASSWORD, LabFactory, MembershipFactory, UserFactory

HEADLESS = "/_allauth/app/v1"


@pytest.fixture(autouse=True, scope="session")
def _celery_eager() -> None:
    # Tests run tasks in-process; dispatch itself is asserted with captured on_commit callbacks.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def _isolated_settings(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # allauth refuses a TOTP code already used in its window; with one window of tolerance a
    # test that signs in twice within 30 seconds can use the next window's code.
    settings.MFA_TOTP_TOLERANCE = 1
    # A fresh cache namespace per test: rate-limit counters and cached values never leak between
    # tests, also when the cache is a Redis server shared by parallel workers.
    cache = dict(settings.CACHES["default"])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    cache["KEY_PREFIX"] = f"test:{worker}:{uuid.uuid4().hex}"
    settings.CACHES = {"default": cache}
    # Routing's per-process memory: every claim sweeps expired leases (tests move leases into
    # the past and expect the next claim to see it), and no project config outlives a test.
    settings.ROUTING_LEASE_SWEEP_SECONDS = 0
    from projects import routing, work_config

    work_config._work_configs.clear()
    work_config._rubric_versions.clear()
    routing._last_lease_sweep.clear()


@pytest.fixture(autouse=True)
def _skills_after_flush(request: pytest.FixtureRequest) -> None:
    """Transactional tests flush every table afterwards, seeded skills included: put the
    taxonomy back for them (the data migration ran only once per test database)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from contributors.models import Skill
    from contributors.skills import skills_seed

    skills_seed(Skill)


def current_totp_code(user: User, windows_ahead: int = 0) -> str:
    from allauth.mfa.adapter import get_adapter
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    secret = get_adapter().decrypt(authenticator.data["secret"])
    counters = list(yield_hotp_counters_from_time())
    current = counters[len(counters) // 2]
    return format_hotp_value(hotp_value(secret, current + windows_ahead))


def headless_login(client: APIClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the headless app API, answering the TOTP step when MFA is on."""
    response = client.post(
        f"{HEADLESS}/auth/login", {"email": email, "password": password}, format="json"
    )
    body = response.json()
    pending = [
        flow["id"] for flow in body.get("data", {}).get("flows", []) if flow.get("is_pending")
    ]
    if response.status_code == 401 and pending == ["mfa_authenticate"]:
        user = User.objects.get(email__iexact=email)
        for windows_ahead in (0, 1, -1):  # the current code may already be spent in this window
            response = client.post(
                f"{HEADLESS}/auth/2fa/authenticate",
                {"code": current_totp_code(user, windows_ahead)},
                format="json",
                HTTP_X_SESSION_TOKEN=body["meta"]["session_token"],
            )
            if response.status_code == 200:
                break
    assert response.status_code == 200, response.content
    return response.json()["meta"]["session_token"]


def has_totp(user: User) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def browser(user: User, *, csrf: bool = False, mfa: bool = True) -> Client:
    """A page client signed in as `user` (a browser session); `csrf` enforces CSRF checks.

    A person with TOTP also passes a real MFA step in the session (allauth's reauthentication
    page with a current code), as staff must before money and certification actions; `mfa`
    False leaves the session without it."""
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    if mfa and has_totp(user):
        mfa_reauthenticate_page(client, user)
    return client


def mfa_reauthenticate_page(client: Client, user: User) -> None:
    """Enter a TOTP code on allauth's MFA reauthentication page (records an "mfa" step)."""
    from django.urls import reverse

    url = reverse("mfa_reauthenticate")
    client.get(url)  # the form's page sets the CSRF cookie (for clients that enforce CSRF)
    token = client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""
    for windows_ahead in (0, 1, -1):  # a code already used in this window is refused
        code = current_totp_code(user, windows_ahead)
        client.post(url, {"code": code, "csrfmiddlewaretoken": token})
        if _has_recent_mfa(client):
            return
    raise AssertionError(f"no TOTP code was accepted for {user.email}")


def _has_recent_mfa(client: Client) -> bool:
    records = client.session.get("account_authentication_methods") or []
    return any(record.get("method") == "mfa" for record in records)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    """An API client signed in as `user` through the headless app flow."""

    def make(user: User) -> APIClient:
        client = APIClient()
        token = headless_login(client, user.email)
        client.credentials(HTTP_X_SESSION_TOKEN=token)
        return client

    return make


@pytest.fixture
def key_client_for() -> Callable[[str], APIClient]:
    def make(raw_key: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return client

    return make


@pytest.fixture
def lab_owner(db: Any) -> User:
    return UserFactory()


@pytest.fixture
def lab(lab_owner: User) -> Lab:
    return services.lab_create(name="Cardiology Lab", created_by=lab_owner)


@pytest.fixture
def lab_manager(lab: Lab) -> User:
    return MembershipFactory(lab=lab, role=Role.MANAGER).user


@pytest.fixture
def lab_viewer(lab: Lab) -> User:
    return MembershipFactory(lab=lab, role=Role.VIEWER).user


@pytest.fixture
def other_lab_owner(db: Any) -> User:
    return UserFactory()


@pytest.fixture
def other_lab(other_lab_owner: User) -> Lab:
    return services.lab_create(name="Other Lab", created_by=other_lab_owner)


@pytest.fixture
def expert(db: Any) -> User:
    return UserFactory()


@pytest.fixture
def staff(db: Any) -> User:
    return UserFactory(is_staff=True)


@pytest.fixture
def lab_api_key(lab: Lab, lab_owner: User) -> str:
    _, raw_key = services.api_key_create(lab=lab, name="pipeline", created_by=lab_owner)
    return raw_key


@pytest.fixture
def other_lab_api_key(other_lab: Lab, other_lab_owner: User) -> str:
    _, raw_key = services.api_key_create(lab=other_lab, name="theirs", created_by=other_lab_owner)
    return raw_key


__all__ = ["LabFactory"]
