"""Money pages: the expert's earnings and payout account, and the desk's payout runs driven
end to end through the pages against the local Stripe-compatible server."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from marketplace.models import Lab, User
from payouts.models import PayoutAccount, PayoutRun
from tests.conftest import browser
from tests.contributors.factories import enable_mfa
from tests.marketplace.factories import UserFactory
from tests.payouts.conftest import LocalStripe
from tests.payouts.factories import book_earning, fund_project, onboarded
from tests.projects.factories import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def earners(lab: Lab, lab_owner: User, stripe_local: LocalStripe) -> list[User]:
    project = make_project(lab, lab_owner, title="Cardio pay")
    fund_project(project, 1_000_000)
    experts = [UserFactory() for _ in range(2)]
    for index, expert in enumerate(experts):
        onboarded(stripe_local, expert)
        book_earning(project, expert, 1_000 * (index + 1), f"earning:page{index}")
    stripe_local.state.balance["usd"] = 10_000_000
    return experts


def test_earnings_page_shows_the_payable_balance(earners: list[User]) -> None:
    html = browser(earners[1]).get("/expert/earnings/").content.decode()
    assert "Payable: <strong>20.00 USD" in html


def test_payout_account_page_redirects_to_stripe_onboarding(
    expert: User, stripe_local: LocalStripe
) -> None:
    response = browser(expert).post("/expert/payout-account/")
    assert response.status_code == 302
    assert response["Location"].startswith(stripe_local.server.url)
    assert PayoutAccount.objects.filter(user=expert).exists()
    assert "Details submitted" in browser(expert).get("/expert/payout-account/").content.decode()


def test_desk_drafts_approves_executes_and_reconciles_a_run(
    earners: list[User],
    staff: User,
    stripe_local: LocalStripe,
    django_capture_on_commit_callbacks: Any,
) -> None:
    enable_mfa(staff)
    desk = browser(staff)
    today = timezone.now().date()
    response = desk.post(
        "/desk/payout-runs/",
        {"period_start": (today - timedelta(days=30)).isoformat(), "period_end": today.isoformat()},
    )
    assert response.status_code == 302
    run = PayoutRun.objects.get()
    url = f"/desk/payout-runs/{run.pk}/"
    assert earners[0].email in desk.get(url).content.decode()
    desk.post(f"{url}action/", {"action": "approve"})
    with django_capture_on_commit_callbacks(execute=True):
        desk.post(f"{url}action/", {"action": "execute"})
    run.refresh_from_db()
    assert run.status == "completed"
    assert set(run.lines.values_list("status", flat=True)) == {"sent"}
    assert len(stripe_local.transfers(run.transfer_group)) == 2
    desk.post(f"{url}action/", {"action": "reconcile"})
    html = desk.get(url).content.decode()
    assert "Clean: Stripe" in html
    paid = browser(earners[0]).get("/expert/earnings/").content.decode()
    assert f"#{run.pk}" in paid


def test_execute_before_approval_is_refused(
    earners: list[User], staff: User, django_capture_on_commit_callbacks: Any
) -> None:
    enable_mfa(staff)
    desk = browser(staff)
    today = timezone.now().date()
    desk.post(
        "/desk/payout-runs/", {"period_start": today.isoformat(), "period_end": today.isoformat()}
    )
    run = PayoutRun.objects.get()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = desk.post(
            f"/desk/payout-runs/{run.pk}/action/", {"action": "execute"}, follow=True
        )
    assert not callbacks
    assert "not approved yet" in response.content.decode()


def test_payout_forms_need_csrf(staff: User) -> None:
    enable_mfa(staff)
    today = timezone.now().date().isoformat()
    response = browser(staff, csrf=True).post(
        "/desk/payout-runs/", {"period_start": today, "period_end": today}
    )
    assert response.status_code == 403
