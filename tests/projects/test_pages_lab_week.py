"""The pages of a lab's week (issue 18 parts 1-3): money, capabilities, invitations, and the
expert's invitations; scoped like the API, hostile form input refused without a 500."""

from __future__ import annotations

import pytest

from marketplace.models import Lab, User
from projects.models import Capability, Project, ProjectInvitation
from scoring.models import ContributorScore, ScoringRun
from tests.conftest import browser
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import fund_project
from tests.projects.factories import make_project, open_project

pytestmark = pytest.mark.django_db


def test_the_money_page_and_the_console_show_ledger_figures_and_the_warning(
    lab: Lab, lab_owner: User, other_lab_owner: User, settings: object
) -> None:
    project = make_project(lab, lab_owner, title="Funded", budget=None)
    fund_project(project, 2500)  # 2,000 in escrow: 10 tasks at 1.95, under the 20 of the webhook
    page = browser(lab_owner).get(f"/labs/{lab.pk}/money/").content.decode()
    assert "20.00 USD" in page and "25.00 USD" in page and "5.00 USD" in page
    console = browser(lab_owner).get(f"/projects/{project.pk}/").content.decode()
    assert 'id="low-balance"' in console
    assert 'id="fundings"' in console and "paid" in console
    fund_project(project, 100_000)
    assert (
        'id="low-balance"'
        not in browser(lab_owner).get(f"/projects/{project.pk}/").content.decode()
    )
    assert browser(other_lab_owner).get(f"/labs/{lab.pk}/money/").status_code == 404


def test_the_capability_pages_save_publish_and_build_a_project(
    lab: Lab, lab_owner: User, lab_viewer: User, other_lab: Lab, other_lab_owner: User
) -> None:
    source = open_project(lab, lab_owner, items=2, gold=2)
    client = browser(lab_owner)
    response = client.post(
        f"/labs/{lab.pk}/capabilities/save/", {"from_project": source.pk, "name": "Prefs"}
    )
    assert response.status_code == 302
    capability = Capability.objects.get()
    page = client.get(f"/labs/{lab.pk}/capabilities/").content.decode()
    assert "Prefs" in page and "2 shared gold items" in page
    built = client.post(
        f"/labs/{lab.pk}/capabilities/{capability.pk}/new-project/",
        {"title": "Round two", "priority": "reputation"},
    )
    assert built.status_code == 302
    project = Project.objects.get(title="Round two")
    assert (project.capability_id, project.priority) == (capability.pk, "reputation")
    assert project.items.filter(is_gold=True).count() == 2
    # A viewer reads the library but cannot save, publish or build.
    viewer = browser(lab_viewer)
    assert viewer.get(f"/labs/{lab.pk}/capabilities/").status_code == 200
    assert viewer.post(f"/labs/{lab.pk}/capabilities/{capability.pk}/publish/").status_code == 404
    assert client.post(f"/labs/{lab.pk}/capabilities/{capability.pk}/publish/").status_code == 302
    catalogue = browser(other_lab_owner).get(f"/labs/{other_lab.pk}/capabilities/")
    assert "Prefs v1" in catalogue.content.decode()


@pytest.mark.parametrize(
    "form",
    [
        {"from_project": "abc", "name": "x"},
        {"from_project": "99999999999999999999", "name": "x"},
        {"from_project": "1", "name": "x" * 300},
        {"name": "x"},
    ],
)
def test_hostile_capability_forms_write_nothing(lab: Lab, lab_owner: User, form: dict) -> None:
    response = browser(lab_owner).post(f"/labs/{lab.pk}/capabilities/save/", form)
    assert response.status_code in {302, 400, 404}
    assert not Capability.objects.exists()


def test_the_invitation_pages(lab: Lab, lab_owner: User, other_lab_owner: User) -> None:
    past = open_project(lab, lab_owner, items=1)
    expert = UserFactory()
    qualify_for_cardiology(expert)
    run = ScoringRun.objects.create(project=past, status="succeeded")
    ContributorScore.objects.create(run=run, expert=expert, n_labels=30, composite=0.9, tier="gold")
    project = open_project(lab, lab_owner, items=1, priority="reputation")
    client = browser(lab_owner)
    assert (
        client.post(
            f"/projects/{project.pk}/invitations/", {"from_project": past.pk, "top": "3"}
        ).status_code
        == 302
    )
    page = client.get(f"/projects/{project.pk}/invitations/").content.decode()
    assert expert.email not in page and "pending" in page
    invitation = ProjectInvitation.objects.get()
    mine = browser(expert)
    assert "Accept" in mine.get("/expert/invitations/").content.decode()
    assert (
        browser(UserFactory()).post(f"/expert/invitations/{invitation.pk}/accept/").status_code
        == 302
    )  # someone else's: refused with a message, nothing changes
    invitation.refresh_from_db()
    assert invitation.status == "pending"
    assert mine.post(f"/expert/invitations/{invitation.pk}/accept/").status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert browser(other_lab_owner).get(f"/projects/{project.pk}/invitations/").status_code == 404


@pytest.mark.parametrize("top", ["1000000000", "abc", "-1", "0", "1e9", "99999999999999999999999"])
def test_hostile_invitation_forms_write_nothing(lab: Lab, lab_owner: User, top: str) -> None:
    past = open_project(lab, lab_owner, items=1)
    project = open_project(lab, lab_owner, items=1)
    response = browser(lab_owner).post(
        f"/projects/{project.pk}/invitations/", {"from_project": past.pk, "top": top}
    )
    assert response.status_code in {302, 400}
    assert not ProjectInvitation.objects.exists()
