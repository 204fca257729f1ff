"""Accounts through the allauth headless app API, and how our API treats its tokens."""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import (
    format_hotp_value,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core import mail
from django.urls import clear_url_caches
from rest_framework.test import APIClient

from marketplace.models import User
from tests.conftest import HEADLESS, headless_login
from tests.marketplace.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mandatory_verification(settings: Any) -> Any:
    """Production's verification (by code). allauth decides its URL patterns at import time
    from these settings, so the URL modules are reloaded on the way in and on the way out."""

    def reload_urls() -> None:
        import allauth.account.urls
        import allauth.urls

        import marketplace.urls

        for module in (allauth.account.urls, allauth.urls, marketplace.urls):
            importlib.reload(module)
        clear_url_caches()

    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    settings.ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = True
    reload_urls()
    yield
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    settings.ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = False
    reload_urls()


def _signup(client: APIClient, email: str) -> Any:
    return client.post(
        f"{HEADLESS}/auth/signup", {"email": email, "password": PASSWORD}, format="json"
    )


def test_signup_verify_by_code_login_then_call_the_api(mandatory_verification: None) -> None:
    client = APIClient()

    response = _signup(client, "New.Expert@Example.org")
    assert response.status_code == 401  # authenticated only once the email is verified
    body = response.json()
    pending = [flow["id"] for flow in body["data"]["flows"] if flow.get("is_pending")]
    assert pending == ["verify_email"]
    token = body["meta"]["session_token"]
    user = User.objects.get()
    assert user.email == "new.expert@example.org"

    # A verified-only API refuses the half-signed-up session token.
    refused = client.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_failed"

    assert len(mail.outbox) == 1
    code = re.search(r"^\s*([A-Z0-9]{4}-[A-Z0-9]{4})\s*$", mail.outbox[0].body, re.MULTILINE)
    assert code is not None, mail.outbox[0].body
    verified = client.post(
        f"{HEADLESS}/auth/email/verify",
        {"key": code.group(1)},
        format="json",
        HTTP_X_SESSION_TOKEN=token,
    )
    assert verified.status_code == 200, verified.content
    assert verified.json()["meta"]["is_authenticated"] is True

    fresh = APIClient()
    session_token = headless_login(fresh, "new.expert@example.org")
    labs = fresh.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=session_token)
    assert labs.status_code == 200
    assert labs.json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_unverified_account_cannot_sign_in_when_verification_is_mandatory(
    mandatory_verification: None,
) -> None:
    user = UserFactory(verified_email=False)
    client = APIClient()
    response = client.post(
        f"{HEADLESS}/auth/login", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["meta"]["is_authenticated"] is False
    token = response.json()["meta"]["session_token"]
    assert client.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=token).status_code == 401


def test_demo_mode_signup_signs_in_at_once_and_sends_a_verification_link() -> None:
    client = APIClient()
    response = _signup(client, "demo@example.org")
    assert response.status_code == 200
    token = response.json()["meta"]["session_token"]
    assert client.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=token).status_code == 200
    assert "/accounts/confirm-email/" in mail.outbox[0].body


def test_wrong_password_is_refused_and_creates_no_session() -> None:
    user = UserFactory()
    response = APIClient().post(
        f"{HEADLESS}/auth/login", {"email": user.email, "password": "nope nope"}, format="json"
    )
    assert response.status_code == 400
    assert "session_token" not in response.json().get("meta", {})


def test_anonymous_call_gets_401_with_error_body_and_authenticate_header() -> None:
    response = APIClient().get("/api/v1/labs/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    error = response.json()["error"]
    assert error["code"] == "not_authenticated"
    assert error["message"]


def test_unknown_session_token_is_refused() -> None:
    response = APIClient().get("/api/v1/labs/", HTTP_X_SESSION_TOKEN="no-such-session")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_logout_ends_the_session_token() -> None:
    user = UserFactory()
    client = APIClient()
    token = headless_login(client, user.email)
    assert client.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=token).status_code == 200
    client.delete(f"{HEADLESS}/auth/session", HTTP_X_SESSION_TOKEN=token)
    assert client.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=token).status_code == 401


def _totp(secret: str, windows_ahead: int = 0) -> str:
    counters = list(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2] + windows_ahead))


def test_totp_mfa_can_be_enabled_and_is_then_required_at_login() -> None:
    user = UserFactory()
    client = APIClient()
    token = headless_login(client, user.email)

    setup = client.get(f"{HEADLESS}/account/authenticators/totp", HTTP_X_SESSION_TOKEN=token)
    assert setup.status_code == 404  # not active yet; the body carries a fresh secret
    secret = setup.json()["meta"]["secret"]
    # Changing authenticators asks for the password again (allauth's reauthentication).
    reauthenticated = client.post(
        f"{HEADLESS}/auth/reauthenticate",
        {"password": PASSWORD},
        format="json",
        HTTP_X_SESSION_TOKEN=token,
    )
    assert reauthenticated.status_code == 200, reauthenticated.content
    activated = client.post(
        f"{HEADLESS}/account/authenticators/totp",
        {"code": _totp(secret)},
        format="json",
        HTTP_X_SESSION_TOKEN=token,
    )
    assert activated.status_code == 200, activated.content

    second = APIClient()
    login = second.post(
        f"{HEADLESS}/auth/login", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert login.status_code == 401
    pending = [flow["id"] for flow in login.json()["data"]["flows"] if flow.get("is_pending")]
    assert pending == ["mfa_authenticate"]
    half_token = login.json()["meta"]["session_token"]
    assert second.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=half_token).status_code == 401

    # The activation spent this window's code: allauth refuses a replay, so use the next one
    # (the tests allow one window of tolerance).
    done = second.post(
        f"{HEADLESS}/auth/2fa/authenticate",
        {"code": _totp(secret, windows_ahead=1)},
        format="json",
        HTTP_X_SESSION_TOKEN=half_token,
    )
    assert done.status_code == 200, done.content
    full_token = done.json()["meta"]["session_token"]
    assert second.get("/api/v1/labs/", HTTP_X_SESSION_TOKEN=full_token).status_code == 200
