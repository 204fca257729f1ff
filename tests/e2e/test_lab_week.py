"""A lab's week in Chromium (issue 18 parts 1-3): a lab funds through Checkout and reads the
exact escrow, reserved and spent figures; builds project B from project A's capability in one
form and B's gold exposure counts A's; invites A's best experts, who accept and get B's work
first. Screenshots go to test-output/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from marketplace.models import Lab, User
from projects.models import Capability, GoldAnswer, Project
from projects.routing import assignment_claim
from scoring.models import ContributorScore, ScoringRun
from tests.contributors.factories import qualify_for_cardiology
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import sign_in
from tests.marketplace.factories import UserFactory
from tests.payouts.conftest import LocalStripe
from tests.payouts.factories import book_earning
from tests.projects.factories import make_items, make_project, open_project

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def test_a_lab_funds_and_sees_exact_escrow_reserved_and_spent(
    new_page: Any, lab: Lab, lab_owner: User, stripe_local: LocalStripe
) -> None:
    project = make_project(lab, lab_owner, title="Funded in the browser", budget=None)
    make_items(project, 3)
    page, watch = new_page("lab")
    sign_in(page, lab_owner.email)
    page.goto(f"/projects/{project.pk}/")
    page.fill("#amount", "123.45")
    page.click("button:has-text('Fund with Checkout')")
    page.wait_for_url(re.compile(r"/pay/cs_"))
    page.click("#pay")
    page.wait_for_load_state()
    [delivered] = stripe_local.deliver()
    assert delivered.status_code == 200, delivered.content
    # The local Stripe page's own favicon request answers 401: not this site's page.
    watch.errors.clear()

    page.goto(f"/projects/{project.pk}/")
    # $123.45 less the 20% fee.
    assert page.inner_text("#escrow") == "98.76 USD"
    assert page.inner_text("#reserved") == "0.00 USD"
    assert page.inner_text("#spent") == "0.00 USD"
    assert "paid" in page.inner_text("#fundings")
    assert page.locator("#low-balance").count() == 0  # 50 tasks at 1.95: above the 20 warned at

    Project.objects.filter(pk=project.pk).update(status="open")
    expert = UserFactory()
    qualify_for_cardiology(expert)
    assert assignment_claim(expert=expert, project=Project.objects.get(pk=project.pk))
    book_earning(project, expert, 1000, key="released-in-browser")
    page.reload()
    assert page.inner_text("#escrow") == "88.76 USD"
    assert page.inner_text("#reserved") == "1.95 USD"  # one open lease at the top tier
    assert page.inner_text("#paid") == "10.00 USD"
    assert page.inner_text("#spent") == "10.00 USD"
    screenshot(page, "lab-week-money-card")

    page.goto(f"/labs/{lab.pk}/money/")
    row = page.locator(f"tr[data-project='{project.pk}']")
    assert "123.45 USD" in row.inner_text() and "88.76 USD" in row.inner_text()
    screenshot(page, "lab-week-money-page")
    assert not watch.dialogs and not watch.errors


def test_a_lab_builds_project_b_from_project_as_capability_and_gold_exposure_is_shared(
    new_page: Any, lab: Lab, lab_owner: User
) -> None:
    project_a = open_project(
        lab, lab_owner, items=2, gold=3, gold_rate=1.0, gold_max_exposures=10, title="Project A"
    )
    expert = UserFactory()
    qualify_for_cardiology(expert)
    assert assignment_claim(expert=expert, project=project_a).assignment.item.is_gold

    page, watch = new_page("lab")
    sign_in(page, lab_owner.email)
    page.goto(f"/labs/{lab.pk}/capabilities/")
    page.select_option("#from_project", str(project_a.pk))
    page.fill("#name", "Cardiology prefs")
    page.click("#save-capability button[type=submit]")
    page.wait_for_load_state()
    capability = Capability.objects.get()
    assert "3 shared gold items" in page.content()
    page.click(
        f"[data-capability='{capability.pk}'] a:has-text('New project from this capability')"
    )
    page.fill("#title", "Project B")
    screenshot(page, "lab-week-new-from-capability")
    page.click("#new-from-capability button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project_b = Project.objects.get(title="Project B")
    assert project_b.capability_id == capability.pk
    # B's gold pool already counts the exposure A's gold had: one of three, seen once.
    gold_card = page.locator("section.card:has(h2:has-text('Gold pool'))").inner_text()
    assert "3 of 3 gold items still served" in gold_card
    assert "Exposures: 0.33 on average, 1 at most" in gold_card
    assert GoldAnswer.objects.filter(item__project=project_b, shared__isnull=False).count() == 3
    screenshot(page, "lab-week-project-b")
    assert not watch.dialogs and not watch.errors


def test_a_lab_invites_as_top_experts_who_accept_and_get_bs_work_first(
    new_page: Any, lab: Lab, lab_owner: User
) -> None:
    project_a = open_project(lab, lab_owner, items=1, title="Project A")
    best, second, outsider = UserFactory(), UserFactory(), UserFactory()
    for person in (best, second, outsider):
        qualify_for_cardiology(person)
    run = ScoringRun.objects.create(project=project_a, status="succeeded")
    for person, composite in ((best, 0.92), (second, 0.88), (outsider, 0.4)):
        ContributorScore.objects.create(
            run=run, expert=person, n_labels=30, composite=composite, tier="gold"
        )
    project_b = open_project(
        lab, lab_owner, items=2, redundancy=1, priority="reputation", title="Project B"
    )

    page, watch = new_page("lab")
    sign_in(page, lab_owner.email)
    page.goto(f"/projects/{project_b.pk}/")
    page.click("a:has-text('Invite experts')")
    page.select_option("#from_project", str(project_a.pk))
    page.fill("#top", "2")
    page.click("#invite button[type=submit]")
    page.wait_for_load_state()
    table = page.inner_text("#invitations")
    assert "pending" in table and "0.920" in table
    for person in (best, second, outsider):
        assert person.email not in page.content()
    screenshot(page, "lab-week-invitations")

    for person in (best, second):
        expert_page, expert_watch = new_page(f"expert-{person.pk}")
        sign_in(expert_page, person.email)
        expert_page.goto("/expert/invitations/")
        assert "Project B" in expert_page.inner_text("#my-invitations")
        expert_page.click("#my-invitations button:has-text('Accept')")
        expert_page.wait_for_load_state()
        assert "accepted" in expert_page.inner_text("#my-invitations")
        assert not expert_watch.dialogs and not expert_watch.errors
    screenshot(expert_page, "lab-week-expert-invitations")

    # Two task slots, two accepted invitees: the outsider waits, the invitees are served.
    project_b = Project.objects.get(pk=project_b.pk)
    assert assignment_claim(expert=outsider, project=project_b) is None
    assert assignment_claim(expert=second, project=project_b) is not None
    assert assignment_claim(expert=best, project=project_b) is not None
    served = set(project_b.assignments.values_list("expert_id", flat=True))
    assert served == {best.pk, second.pk}
    page.reload()
    assert page.inner_text("#invitations").count("accepted") == 2
    assert not watch.dialogs and not watch.errors
