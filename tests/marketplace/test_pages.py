"""The page shell: home, allauth's pages in the site's layout, security headers, Checkout return."""

from __future__ import annotations

import pytest
from django.test import Client

from marketplace.models import Lab, User
from tests.conftest import browser
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db


def test_home_for_visitors_and_signed_in_people(client: Client, lab_owner: User, lab: Lab) -> None:
    assert "Sign up" in client.get("/").content.decode()
    client.force_login(lab_owner)
    html = client.get("/").content.decode()
    assert "Expert workbench" in html and "1 lab" in html and "Admin desk" not in html


@pytest.mark.parametrize(
    "url",
    ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"],
)
def test_allauth_pages_use_the_site_layout(client: Client, url: str) -> None:
    response = client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="site-header"' in html and "/static/marketplace/site.css" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_mfa_pages_use_the_site_layout(expert: User) -> None:
    client = Client()
    client.force_login(expert)
    response = client.get("/accounts/2fa/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="site-header"' in html and "Authenticator App" in html


def test_docs_get_a_relaxed_style_policy_but_never_inline_scripts(client: Client) -> None:
    policy = client.get("/api/v1/docs/")["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy
    assert "script-src 'self'" in policy and "script-src 'self' 'unsafe-inline'" not in policy
    assert "unsafe-inline" not in client.get("/")["Content-Security-Policy"]


def test_checkout_return_lands_on_the_project(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner)
    client = Client()
    client.force_login(lab_owner)
    response = client.get(f"/?funded={project.pk}")
    assert response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/"


def test_lab_settings_owner_adds_members_and_keys(
    lab: Lab, lab_owner: User, lab_manager: User, lab_viewer: User, other_lab_owner: User
) -> None:
    from marketplace.models import ApiKey, Membership
    from marketplace.selectors import api_key_resolve
    from tests.marketplace.factories import UserFactory

    newcomer = UserFactory()  # the factory gives a verified primary email
    owner = browser(lab_owner)
    url = f"/labs/{lab.pk}/settings/"
    owner.post(url, {"action": "member_add", "email": newcomer.email, "role": "viewer"})
    assert Membership.objects.get(lab=lab, user=newcomer).role == "viewer"
    response = owner.post(url, {"action": "key_create", "name": "pipeline"})
    raw = response.context["new_key"]
    assert raw in response.content.decode()
    assert api_key_resolve(raw_key=raw) is not None
    key = ApiKey.objects.get(lab=lab, name="pipeline")
    assert raw not in browser(lab_owner).get(url).content.decode()  # shown once
    # A manager may manage keys but not members; a viewer neither; outsiders get 404.
    manager = browser(lab_manager)
    manager.post(
        url, {"action": "member_remove", "membership": Membership.objects.get(user=newcomer).pk}
    )
    assert Membership.objects.filter(user=newcomer).exists()
    manager.post(url, {"action": "key_revoke", "key": key.pk})
    assert api_key_resolve(raw_key=raw) is None
    viewer_page = browser(lab_viewer).get(url).content.decode()
    assert "Create key" not in viewer_page and "Add member" not in viewer_page
    assert browser(other_lab_owner).get(url).status_code == 404


def test_lab_settings_shows_a_refusal_as_messages(lab: Lab, lab_owner: User) -> None:
    response = browser(lab_owner).post(
        f"/labs/{lab.pk}/settings/",
        {"action": "member_add", "email": "not an email", "role": "viewer"},
        follow=True,
    )
    assert response.status_code == 200
    assert "email" in " ".join(str(m) for m in response.context["messages"]).lower()
