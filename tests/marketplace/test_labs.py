"""Labs and memberships through the HTTP API, with every persona."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from marketplace.models import Lab, LabInvitation, Membership, Role, User
from tests.conftest import HEADLESS
from tests.marketplace.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


def test_any_signed_in_person_creates_a_lab_and_becomes_its_owner(
    client_for: Client, expert: User
) -> None:
    response = client_for(expert).post("/api/v1/labs/", {"name": "  Radiology  "}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Radiology"
    assert body["role"] == "owner"
    assert body["member_count"] == 1
    membership = Membership.objects.get(lab_id=body["id"])
    assert (membership.user, membership.role) == (expert, Role.OWNER)


def test_lab_create_validation_lists_the_problem_and_writes_nothing(
    client_for: Client, expert: User
) -> None:
    response = client_for(expert).post("/api/v1/labs/", {"name": ""}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {"field": "name", "message": error["details"][0]["message"], "code": "blank"}
    ]
    assert not Lab.objects.exists()


def test_anonymous_cannot_create_a_lab() -> None:
    response = APIClient().post("/api/v1/labs/", {"name": "x"}, format="json")
    assert response.status_code == 401
    assert not Lab.objects.exists()


def test_an_api_key_cannot_create_labs(key_client_for: Any, lab_api_key: str) -> None:
    response = key_client_for(lab_api_key).post("/api/v1/labs/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert Lab.objects.count() == 1


def test_list_shows_only_the_callers_labs_with_their_role(
    client_for: Client, lab: Lab, lab_viewer: User, other_lab: Lab
) -> None:
    response = client_for(lab_viewer).get("/api/v1/labs/")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(row["id"], row["role"]) for row in results] == [(lab.id, "viewer")]


def test_lab_list_has_no_n_plus_one(
    client_for: Client, lab_owner: User, django_assert_max_num_queries: Any
) -> None:
    client = client_for(lab_owner)
    for index in range(8):
        client.post("/api/v1/labs/", {"name": f"lab {index}"}, format="json")
    # session lookup + user + count + page, whatever the number of labs
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/labs/")
    assert response.json()["count"] == 8


def test_api_key_lists_only_its_own_lab(
    key_client_for: Any, lab: Lab, lab_api_key: str, other_lab: Lab
) -> None:
    response = key_client_for(lab_api_key).get("/api/v1/labs/")
    assert [(row["id"], row["role"]) for row in response.json()["results"]] == [(lab.id, "api_key")]


def test_owner_adds_a_verified_person_as_member_at_once(
    client_for: Client,
    lab: Lab,
    lab_owner: User,
    expert: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = client_for(lab_owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/labs/{lab.id}/members/",
            {"email": expert.email.upper(), "role": "manager"},
            format="json",
        )
    assert response.status_code == 201
    assert response.json()["status"] == "active"
    assert Membership.objects.get(lab=lab, user=expert).role == Role.MANAGER
    assert mail.outbox and mail.outbox[-1].to == [expert.email]


def test_adding_an_existing_member_again_is_a_conflict(
    client_for: Client, lab: Lab, lab_owner: User, lab_viewer: User
) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/labs/{lab.id}/members/",
        {"email": lab_viewer.email, "role": "manager"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_member"
    assert Membership.objects.get(lab=lab, user=lab_viewer).role == Role.VIEWER


def test_an_unknown_email_gets_an_invitation_claimed_only_after_verification(
    client_for: Client, lab: Lab, lab_owner: User
) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/labs/{lab.id}/members/",
        {"email": "newcomer@example.org", "role": "viewer"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["status"] == "invited"
    assert LabInvitation.objects.filter(lab=lab, accepted_at__isnull=True).count() == 1

    # Signing up with the address is not enough: it must be verified first.
    client = APIClient()
    signup = client.post(
        f"{HEADLESS}/auth/signup",
        {"email": "newcomer@example.org", "password": PASSWORD},
        format="json",
    )
    newcomer = User.objects.get(email="newcomer@example.org")
    assert not Membership.objects.filter(lab=lab, user=newcomer).exists()

    link = next(message.body for message in mail.outbox if "confirm-email" in message.body)
    key = link.split("/accounts/confirm-email/")[1].split("/")[0]
    token = signup.json()["meta"]["session_token"]
    verified = client.post(
        f"{HEADLESS}/auth/email/verify", {"key": key}, format="json", HTTP_X_SESSION_TOKEN=token
    )
    assert verified.status_code == 200, verified.content
    assert Membership.objects.get(lab=lab, user=newcomer).role == Role.VIEWER
    assert LabInvitation.objects.get(lab=lab).accepted_at is not None


@pytest.mark.parametrize("persona", ["lab_manager", "lab_viewer"])
def test_only_owners_add_members(
    request: Any, client_for: Client, lab: Lab, expert: User, persona: str
) -> None:
    user = request.getfixturevalue(persona)
    response = client_for(user).post(
        f"/api/v1/labs/{lab.id}/members/", {"email": expert.email, "role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(user=expert).exists()


def test_member_add_validates_every_field(client_for: Client, lab: Lab, lab_owner: User) -> None:
    response = client_for(lab_owner).post(
        f"/api/v1/labs/{lab.id}/members/", {"email": "not-an-email", "role": "king"}, format="json"
    )
    assert response.status_code == 400
    fields = sorted(problem["field"] for problem in response.json()["error"]["details"])
    assert fields == ["email", "role"]


def test_members_list_shows_members_and_invitations(
    client_for: Client, lab: Lab, lab_owner: User, lab_viewer: User
) -> None:
    client = client_for(lab_owner)
    client.post(
        f"/api/v1/labs/{lab.id}/members/",
        {"email": "later@example.org", "role": "viewer"},
        format="json",
    )
    body = client_for(lab_viewer).get(f"/api/v1/labs/{lab.id}/members/").json()
    assert sorted(row["email"] for row in body["members"]) == sorted(
        [lab_owner.email, lab_viewer.email]
    )
    assert [row["email"] for row in body["invitations"]] == ["later@example.org"]


def test_the_last_owner_cannot_be_demoted_or_removed(
    client_for: Client, lab: Lab, lab_owner: User
) -> None:
    client = client_for(lab_owner)
    membership = Membership.objects.get(lab=lab, user=lab_owner)
    demote = client.patch(
        f"/api/v1/labs/{lab.id}/members/{membership.id}/", {"role": "viewer"}, format="json"
    )
    assert demote.status_code == 400
    assert demote.json()["error"]["code"] == "last_owner"
    remove = client.delete(f"/api/v1/labs/{lab.id}/members/{membership.id}/")
    assert remove.status_code == 400
    assert Membership.objects.get(pk=membership.pk).role == Role.OWNER


def test_owner_changes_a_role_and_removes_a_member(
    client_for: Client, lab: Lab, lab_owner: User, lab_viewer: User
) -> None:
    client = client_for(lab_owner)
    membership = Membership.objects.get(lab=lab, user=lab_viewer)
    response = client.patch(
        f"/api/v1/labs/{lab.id}/members/{membership.id}/", {"role": "manager"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "manager"
    assert client.delete(f"/api/v1/labs/{lab.id}/members/{membership.id}/").status_code == 204
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_a_member_of_lab_a_gets_404_on_everything_of_lab_b(
    client_for: Client, lab_owner: User, other_lab: Lab, other_lab_owner: User
) -> None:
    client = client_for(lab_owner)
    their_membership = Membership.objects.get(lab=other_lab)
    key = (
        client_for(other_lab_owner)
        .post(f"/api/v1/labs/{other_lab.id}/api-keys/", {"name": "k"}, format="json")
        .json()
    )
    calls = [
        ("get", f"/api/v1/labs/{other_lab.id}/", None),
        ("get", f"/api/v1/labs/{other_lab.id}/members/", None),
        (
            "post",
            f"/api/v1/labs/{other_lab.id}/members/",
            {"email": "x@example.org", "role": "owner"},
        ),
        (
            "patch",
            f"/api/v1/labs/{other_lab.id}/members/{their_membership.id}/",
            {"role": "viewer"},
        ),
        ("delete", f"/api/v1/labs/{other_lab.id}/members/{their_membership.id}/", None),
        ("get", f"/api/v1/labs/{other_lab.id}/api-keys/", None),
        ("post", f"/api/v1/labs/{other_lab.id}/api-keys/", {"name": "mine now"}),
        ("delete", f"/api/v1/labs/{other_lab.id}/api-keys/{key['id']}/", None),
    ]
    for method, url, body in calls:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
        assert response.json()["error"]["code"] == "not_found"
    assert Membership.objects.filter(lab=other_lab).count() == 1
    assert other_lab.api_keys.filter(revoked_at__isnull=True).count() == 1
    assert not LabInvitation.objects.exists()


def test_unknown_lab_is_404_like_a_foreign_one(client_for: Client, lab_owner: User) -> None:
    assert client_for(lab_owner).get("/api/v1/labs/999999/").status_code == 404


def test_email_is_the_login_and_case_insensitive_unique(db: Any) -> None:
    UserFactory(email="someone@example.org")
    client = APIClient()
    duplicate = client.post(
        f"{HEADLESS}/auth/signup",
        {"email": "SomeOne@Example.org", "password": PASSWORD},
        format="json",
    )
    assert duplicate.status_code == 400
    assert User.objects.filter(email__iexact="someone@example.org").count() == 1
