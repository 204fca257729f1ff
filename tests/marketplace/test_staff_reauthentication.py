"""Staff money and certification actions need a recent MFA step in *this* session (issue 17),
not only a TOTP device on the account: a session opened before TOTP was added is refused until
it reauthenticates with a code, and again once the window has passed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace.models import User
from payouts.models import PayoutRun
from payouts.services import payout_runs
from tests.conftest import HEADLESS, browser, current_totp_code, headless_login
from tests.contributors.factories import enable_mfa

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
RECORDS = "account_authentication_methods"


def draft_run(staff: User) -> PayoutRun:
    today = timezone.now().date()
    return payout_runs.payout_run_create(
        period_start=today - timedelta(days=7), period_end=today, currency="usd", created_by=staff
    )


def signed_in_before_totp(staff: User) -> tuple[APIClient, str]:
    """A session opened with a password only; the account gets TOTP afterwards."""
    client = APIClient()
    token = headless_login(client, staff.email)
    client.credentials(HTTP_X_SESSION_TOKEN=token)
    enable_mfa(staff)
    return client, token


def reauthenticate(client: APIClient, staff: User) -> Any:
    for windows_ahead in (0, 1, -1):
        response = client.post(
            f"{HEADLESS}/auth/2fa/reauthenticate",
            {"code": current_totp_code(staff, windows_ahead)},
            format="json",
        )
        if response.status_code == 200:
            return response
    return response


def age_the_session(token: str, seconds: float) -> None:
    """Move every authentication record of a session `seconds` into the past."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=token)
    store[RECORDS] = [{**record, "at": record["at"] - seconds} for record in store[RECORDS]]
    store.save()


def test_a_session_from_before_totp_must_reauthenticate_and_then_again_after_the_window(
    staff: User,
) -> None:
    run = draft_run(staff)
    client, token = signed_in_before_totp(staff)
    url = f"/api/v1/admin/payout-runs/{run.pk}/approve/"

    refused = client.post(url)
    assert refused.status_code == 401
    error = refused.json()["error"]
    assert error["code"] == "reauthentication_required"
    assert error["details"]["reauthenticate"]["app"] == f"{HEADLESS}/auth/2fa/reauthenticate"
    assert "WWW-Authenticate" in refused
    assert PayoutRun.objects.get(pk=run.pk).status == "draft"

    assert reauthenticate(client, staff).status_code == 200
    approved = client.post(url)
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"

    # The window passes: the same session must confirm again.
    age_the_session(token, settings.STAFF_MFA_MAX_AGE_SECONDS + 1)
    again = client.post(f"/api/v1/admin/payout-runs/{run.pk}/execute/")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "reauthentication_required"


def test_signing_in_with_totp_counts_as_a_recent_mfa_step(staff: User, client_for: Client) -> None:
    enable_mfa(staff)
    run = draft_run(staff)
    response = client_for(staff).post(f"/api/v1/admin/payout-runs/{run.pk}/approve/")
    assert response.status_code == 200, response.content


def test_a_password_reauthentication_is_not_an_mfa_step(staff: User) -> None:
    from tests.marketplace.factories import PASSWORD

    run = draft_run(staff)
    client, _ = signed_in_before_totp(staff)
    password = client.post(f"{HEADLESS}/auth/reauthenticate", {"password": PASSWORD}, format="json")
    assert password.status_code == 200
    assert client.post(f"/api/v1/admin/payout-runs/{run.pk}/approve/").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "post",
            "/api/v1/admin/payout-runs/",
            {"period_start": "2030-01-01", "period_end": "2030-01-31"},
        ),
        ("post", "/api/v1/admin/payout-runs/1/approve/", None),
        ("post", "/api/v1/admin/payout-runs/1/execute/", None),
        ("post", "/api/v1/admin/payout-lines/1/retry/", None),
        ("post", "/api/v1/admin/experts/1/held/release/", None),
        ("post", "/api/v1/admin/experts/1/held/forfeit/", None),
        ("post", "/api/v1/admin/quality-stops/1/decide/", {"decision": "uphold", "note": "n"}),
        ("post", "/api/v1/admin/certifications/", {"user": 1, "skill": "medicine", "level": 3}),
        ("post", "/api/v1/admin/certifications/1/revoke/", {"reason": "r"}),
        ("post", "/api/v1/admin/experts/1/suspend/", {"reason": "r"}),
        ("post", "/api/v1/admin/experts/1/reinstate/", {"reason": "r"}),
        ("post", "/api/v1/admin/applications/1/approve/", {}),
    ],
)
def test_every_staff_money_and_certification_action_needs_the_recent_step(
    staff: User, method: str, path: str, body: Any
) -> None:
    client, _ = signed_in_before_totp(staff)
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "reauthentication_required"


def test_a_desk_action_redirects_to_the_reauthentication_page_and_resumes(staff: User) -> None:
    enable_mfa(staff)
    run = draft_run(staff)
    desk = browser(staff, mfa=False)  # signed in, TOTP on the account, no MFA step yet
    assert desk.get(f"/desk/payout-runs/{run.pk}/").status_code == 200
    action = f"/desk/payout-runs/{run.pk}/action/"
    response = desk.post(action, {"action": "approve"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/2fa/reauthenticate/")
    assert "next=" in response["Location"]
    assert PayoutRun.objects.get(pk=run.pk).status == "draft"
    # The code on allauth's page resumes the suspended POST.
    for windows_ahead in (0, 1, -1):
        confirmed = desk.post(
            response["Location"], {"code": current_totp_code(staff, windows_ahead)}
        )
        if PayoutRun.objects.get(pk=run.pk).status == "approved":
            break
    assert confirmed.status_code == 302
    assert PayoutRun.objects.get(pk=run.pk).status == "approved"
