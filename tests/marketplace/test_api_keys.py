"""Lab API keys: created by owners and managers, shown once, stored hashed, revocable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import ApiKey, Lab, User

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]


@pytest.mark.parametrize("persona", ["lab_owner", "lab_manager"])
def test_owner_and_manager_create_a_key_shown_once(
    request: Any, client_for: Client, lab: Lab, persona: str
) -> None:
    client = client_for(request.getfixturevalue(persona))
    response = client.post(f"/api/v1/labs/{lab.id}/api-keys/", {"name": "ingest"}, format="json")
    assert response.status_code == 201
    body = response.json()
    raw_key = body["key"]
    assert raw_key.startswith(f"mk_{body['prefix']}_")
    stored = ApiKey.objects.get(pk=body["id"])
    assert raw_key not in (stored.key_hash, stored.prefix)
    assert len(stored.key_hash) == 64

    # Never returned again by any endpoint.
    listing = client.get(f"/api/v1/labs/{lab.id}/api-keys/")
    assert listing.status_code == 200
    assert raw_key not in listing.content.decode()
    assert "key" not in listing.json()[0]
    for url in ("/api/v1/labs/", f"/api/v1/labs/{lab.id}/", f"/api/v1/labs/{lab.id}/members/"):
        assert raw_key not in client.get(url).content.decode()


def test_viewer_cannot_create_or_list_keys(client_for: Client, lab: Lab, lab_viewer: User) -> None:
    client = client_for(lab_viewer)
    response = client.post(f"/api/v1/labs/{lab.id}/api-keys/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert client.get(f"/api/v1/labs/{lab.id}/api-keys/").status_code == 403
    assert not ApiKey.objects.exists()


def test_a_key_authenticates_for_its_lab_only(
    key_client_for: Any, lab: Lab, lab_api_key: str, other_lab: Lab
) -> None:
    client = key_client_for(lab_api_key)
    assert client.get(f"/api/v1/labs/{lab.id}/").status_code == 200
    assert client.get(f"/api/v1/labs/{other_lab.id}/").status_code == 404
    assert ApiKey.objects.get(lab=lab).last_used_at is not None


def test_a_key_cannot_manage_members_or_keys(
    key_client_for: Any, lab: Lab, lab_api_key: str
) -> None:
    client = key_client_for(lab_api_key)
    assert client.get(f"/api/v1/labs/{lab.id}/members/").status_code == 403
    assert (
        client.post(f"/api/v1/labs/{lab.id}/api-keys/", {"name": "more"}, format="json").status_code
        == 403
    )
    assert ApiKey.objects.count() == 1


def test_revoked_key_is_refused(
    client_for: Client, key_client_for: Any, lab: Lab, lab_owner: User, lab_api_key: str
) -> None:
    key_id = ApiKey.objects.get(lab=lab).id
    assert (
        client_for(lab_owner).delete(f"/api/v1/labs/{lab.id}/api-keys/{key_id}/").status_code == 204
    )
    response = key_client_for(lab_api_key).get(f"/api/v1/labs/{lab.id}/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    revoked = ApiKey.objects.get(pk=key_id)
    assert revoked.revoked_at is not None and revoked.revoked_by == lab_owner


def test_revoking_twice_keeps_the_first_revocation(
    client_for: Client, lab: Lab, lab_owner: User, lab_manager: User, lab_api_key: str
) -> None:
    key_id = ApiKey.objects.get(lab=lab).id
    client_for(lab_owner).delete(f"/api/v1/labs/{lab.id}/api-keys/{key_id}/")
    first = ApiKey.objects.get(pk=key_id).revoked_at
    assert (
        client_for(lab_manager).delete(f"/api/v1/labs/{lab.id}/api-keys/{key_id}/").status_code
        == 204
    )
    again = ApiKey.objects.get(pk=key_id)
    assert (again.revoked_at, again.revoked_by) == (first, lab_owner)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer mk_abc_def",
        "Bearer not-even-shaped",
        "Bearer",
        "Bearer a b",
    ],
)
def test_bad_bearer_credentials_are_refused(db: Any, header: str) -> None:
    response = APIClient().get("/api/v1/labs/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_a_key_with_the_right_prefix_but_wrong_secret_is_refused(
    key_client_for: Any, lab_api_key: str
) -> None:
    forged = lab_api_key[:-4] + ("AAAA" if not lab_api_key.endswith("AAAA") else "BBBB")
    assert key_client_for(forged).get("/api/v1/labs/").status_code == 401


def test_last_used_is_written_at_most_once_per_window(
    key_client_for: Any, lab: Lab, lab_api_key: str, django_assert_num_queries: Any
) -> None:
    client = key_client_for(lab_api_key)
    client.get(f"/api/v1/labs/{lab.id}/")
    # key lookup + role check + lab + annotated lab: no UPDATE on the second call
    with django_assert_num_queries(3):
        client.get(f"/api/v1/labs/{lab.id}/")
