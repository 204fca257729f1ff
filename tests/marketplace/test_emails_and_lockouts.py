"""Email addresses in one normal form, look-alikes refused, and login lockouts as 429 with
Retry-After (issue 17), through the real headless endpoints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from rest_framework.test import APIClient

from marketplace.emails import email_problem, normalize_email
from marketplace.models import Lab, LabInvitation, Membership, User
from tests.conftest import HEADLESS
from tests.marketplace.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
FULL_WIDTH_E = "\uff45"
CYRILLIC_A = "\u0430"


def signup(client: APIClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(
        f"{HEADLESS}/auth/signup", {"email": email, "password": password}, format="json"
    )


def login(client: APIClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(
        f"{HEADLESS}/auth/login", {"email": email, "password": password}, format="json"
    )


def test_normal_form_and_scripts() -> None:
    assert normalize_email(f" Person@{FULL_WIDTH_E}XAMPLE.com ") == "person@example.com"
    assert normalize_email("a\uff20example\u3002com") == "a@example.com"  # full-width @, dot
    assert email_problem("person@example.com") is None
    assert email_problem("ivan@\u043f\u0440\u0438\u043c\u0435\u0440.com") is None  # one script
    assert email_problem("yamada@\u5c71\u7530\u3084\u307e\u3060.jp") is None  # Han + Hiragana
    assert email_problem(f"person@ex{CYRILLIC_A}mple.com") is not None
    assert email_problem(f"p{CYRILLIC_A}ypal@example.com") is not None
    assert email_problem("alpha\u03b1@example.com") is not None  # Greek alpha in Latin


def test_a_full_width_twin_does_not_become_a_second_account(anonymous: APIClient) -> None:
    first = signup(anonymous, "person@example.com")
    assert first.status_code == 200, first.content
    signup(APIClient(), f"person@{FULL_WIDTH_E}xample.com")
    signup(APIClient(), "PERSON@EXAMPLE.COM")
    assert list(User.objects.values_list("email", flat=True)) == ["person@example.com"]
    assert EmailAddress.objects.count() == 1


def test_signup_stores_the_normal_form(anonymous: APIClient) -> None:
    response = signup(anonymous, f"New.Person@{FULL_WIDTH_E.upper()}xample.org")
    assert response.status_code == 200, response.content
    assert User.objects.get().email == "new.person@example.org"
    assert EmailAddress.objects.get().email == "new.person@example.org"


@pytest.mark.parametrize(
    "email", [f"person@ex{CYRILLIC_A}mple.com", f"person@{CYRILLIC_A}pple.com"]
)
def test_mixed_script_look_alikes_are_refused_at_signup(anonymous: APIClient, email: str) -> None:
    response = signup(anonymous, email)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(error["param"], error["code"]) for error in errors] == [
        ("email", "mixed_script_email")
    ]
    assert "mixes letters of different scripts" in errors[0]["message"]
    assert not User.objects.exists()


def test_login_uses_the_normal_form(anonymous: APIClient, expert: User) -> None:
    local, domain = expert.email.split("@")
    response = login(anonymous, f"{local.upper()}@{domain.replace('e', FULL_WIDTH_E)}")
    assert response.status_code == 200, response.content


def test_adding_a_member_by_a_full_width_twin_reaches_the_verified_account(
    client_for: Client, lab_owner: User, lab: Lab
) -> None:
    person = UserFactory(email="colleague@example.org")
    owner = client_for(lab_owner)
    response = owner.post(
        f"/api/v1/labs/{lab.pk}/members/",
        {"email": f"Colleague@{FULL_WIDTH_E}xample.org", "role": "viewer"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "active"
    assert Membership.objects.filter(lab=lab, user=person).exists()


def test_invitations_are_stored_in_the_normal_form_and_look_alikes_refused(
    client_for: Client, lab_owner: User, lab: Lab
) -> None:
    owner = client_for(lab_owner)
    invited = owner.post(
        f"/api/v1/labs/{lab.pk}/members/",
        {"email": f"Later@{FULL_WIDTH_E}xample.org", "role": "viewer"},
        format="json",
    )
    assert invited.status_code == 201, invited.content
    assert LabInvitation.objects.get().email == "later@example.org"
    refused = owner.post(
        f"/api/v1/labs/{lab.pk}/members/",
        {"email": f"other@ex{CYRILLIC_A}mple.org", "role": "viewer"},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "mixed_script_email"
    assert LabInvitation.objects.count() == 1


def test_a_login_lockout_is_429_with_retry_after(expert: User) -> None:
    client = APIClient()
    statuses = [login(client, expert.email, "wrong password").status_code for _ in range(5)]
    assert statuses == [400] * 5
    locked = login(client, expert.email, "wrong password")
    assert locked.status_code == 429
    assert 290 <= int(locked["Retry-After"]) <= 300
    body = locked.json()
    assert body["error"]["code"] == "too_many_login_attempts"
    assert body["error"]["details"] == {"retry_after_seconds": int(locked["Retry-After"])}
    assert body["status"] == 429 and body["errors"][0]["code"] == "too_many_login_attempts"
    # The right password does not get through a lockout either, and the full-width twin of
    # the address is the same address for the count.
    local, domain = expert.email.split("@")
    twin = f"{local}@{domain.replace('e', FULL_WIDTH_E)}"
    assert login(APIClient(), twin, PASSWORD).status_code == 429


def test_allauth_429s_always_carry_retry_after(anonymous: APIClient, settings: Any) -> None:
    settings.ACCOUNT_RATE_LIMITS = {"signup": "1/m/ip"}
    assert signup(anonymous, "one@example.org").status_code == 200
    limited = signup(APIClient(), "two@example.org")
    assert limited.status_code == 429
    assert limited["Retry-After"] == "60"
