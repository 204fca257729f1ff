"""The earnings lifecycle (issue 15): a submit books base to pending and the reserve; a scoring
snapshot releases it at the tier multiplier and the pace, with the bonus split by impact's lower
bound; the quality gate forfeits it, an appeal can pay it back; hourly projects bill server time
capped, never the client's number; and the expert reads every outcome with its reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from marketplace.models import Lab, User
from payouts.models import AccountKind, Earning, EarningStatus, LedgerTransaction
from payouts.services.ledger import balance_of, ledger_verify
from payouts.services.release import earnings_release
from projects import routing
from projects.models import Item, Project, QualityStop, Submission
from scoring.models import ContributorScore, ScoringRun
from scoring.services import gate
from tests.conftest import browser
from tests.contributors.factories import enable_mfa, qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import fund_project
from tests.projects.factories import make_items, make_project

pytestmark = pytest.mark.django_db
ANSWER = {"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}}


def open_for_work(project: Project, items: int = 10, gross: int = 1_000_000) -> Project:
    make_items(project, items, target_labels=project.redundancy)
    fund_project(project, gross)
    project.status = "open"
    project.onboarding_gold = 0
    project.gold_rate = 0.0
    project.max_active_leases = 50
    project.save()
    return project


def expert() -> User:
    user = UserFactory()
    qualify_for_cardiology(user)
    return user


def label(project: Project, user: User, seconds: float, *, seconds_spent: int = 30) -> Submission:
    """Claim and submit through the routing services, `seconds` of server time apart."""
    claim = routing.assignment_claim(expert=user, project=project)
    assert claim is not None
    served = timezone.now() - timedelta(seconds=seconds)
    type(claim.assignment).objects.filter(pk=claim.assignment.pk).update(served_at=served)
    claim.assignment.refresh_from_db()
    return routing.assignment_submit(
        assignment=claim.assignment, answer=ANSWER, rationale="", seconds_spent=seconds_spent
    )


def snapshot(project: Project, tiers: dict[User, tuple[str, float | None, float | None]]) -> Any:
    """A succeeded scoring run with these (tier, impact, impact se) per expert."""
    high_water = Submission.objects.filter(project=project).order_by("-id").first().pk
    run = ScoringRun.objects.create(
        project=project, status="succeeded", submission_high_water=high_water
    )
    for user, (tier, impact, se) in tiers.items():
        ContributorScore.objects.create(
            run=run, expert=user, tier=tier, impact_value=impact, impact_se=se
        )
    return run


def payable(user: User) -> int:
    return balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=user)


def pending(project: Project, user: User) -> int:
    return balance_of(kind=AccountKind.EXPERT_PENDING, currency="usd", project=project, user=user)


def escrow(project: Project) -> int:
    return balance_of(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project)


def test_a_snapshot_releases_pending_at_each_tier_and_returns_the_rest(
    lab: Lab, lab_owner: User
) -> None:
    project = open_for_work(make_project(lab, lab_owner, redundancy=3))
    project.pace_adjusted = False
    project.save()
    platinum, probation, newcomer = expert(), expert(), expert()
    for user in (platinum, probation, newcomer):
        for _ in range(2):
            label(project, user, 90)
    escrow_before = escrow(project)
    run = snapshot(
        project,
        {
            platinum: ("platinum", None, None),
            probation: ("probation", None, None),
            newcomer: ("provisional", None, None),
        },
    )
    report = earnings_release(run=run)
    assert payable(platinum) == 2 * 195 and pending(project, platinum) == 0
    assert payable(probation) == 2 * 75
    # Too little evidence yet: provisional work waits in pending for the next snapshot.
    assert pending(project, newcomer) == 300 and payable(newcomer) == 0
    # What was set aside and not paid goes back: probation's half, platinum used it all.
    assert escrow(project) - escrow_before == 2 * (150 + 45 - 75)
    assert (report.released, report.labels, report.waiting) == (2, 4, 1)
    released = Earning.objects.filter(expert=platinum).first()
    assert released.status == "released" and released.multiplier_basis_points == 13_000
    assert "platinum (x1.30)" in released.reason
    # Idempotent: the same run releases nothing twice.
    assert earnings_release(run=run).labels == 0 and payable(platinum) == 390
    assert ledger_verify().is_clean


def test_per_task_pay_follows_the_pace_of_the_trusted_experts(lab: Lab, lab_owner: User) -> None:
    project = open_for_work(make_project(lab, lab_owner, redundancy=3))
    careful = [expert() for _ in range(3)]
    hasty = expert()
    for _ in range(3):
        for user in careful:
            label(project, user, 100)
        label(project, hasty, 20)
    tiers = dict.fromkeys(careful, ("silver", None, None))
    run = snapshot(project, {**tiers, hasty: ("bronze", None, None)})
    earnings_release(run=run)
    # Reference: the trusted (silver or better) experts' median active time (their 75th
    # percentile: 100 s here); a 20 s label earns 20 / 100 of its tier's pay: speed never
    # pays more per hour than care.
    assert payable(careful[0]) == 3 * 150
    assert payable(hasty) == 3 * (150 * 85 // 100 * 20 // 100)  # x0.85, paced at 20%
    reasons = set(Earning.objects.filter(expert=hasty).values_list("reason", flat=True))
    assert any("paced at 20%" in reason and "100 s" in reason for reason in reasons)
    assert payable(hasty) / (3 * 20) < payable(careful[0]) / (3 * 100)


def test_without_three_trusted_experts_every_experts_pace_sets_the_reference(
    lab: Lab, lab_owner: User
) -> None:
    """One vote per expert: a fast worker with many labels cannot set the pace alone."""
    project = open_for_work(make_project(lab, lab_owner, redundancy=3))
    slow, steady, fast = expert(), expert(), expert()
    for user, seconds in ((slow, 120), (steady, 90), (fast, 10)):
        for _ in range(2 if user is not fast else 4):
            label(project, user, seconds)
    earnings_release(
        run=snapshot(project, dict.fromkeys((slow, steady, fast), ("bronze", None, None)))
    )
    # Reference: the 75th percentile of the three experts' medians (10, 90, 120 s): 105 s.
    assert payable(slow) == 2 * (150 * 8_500 // 10_000)
    assert payable(steady) == 2 * (150 * 8_500 * (90 * 10_000 // 105) // 10**8)
    assert payable(fast) == 4 * (150 * 8_500 * (10 * 10_000 // 105) // 10**8)


def test_the_hourly_floor_tops_up_released_work(lab: Lab, lab_owner: User) -> None:
    project = open_for_work(make_project(lab, lab_owner, redundancy=3))
    project.hourly_floor = 9_000  # 90 USD per hour
    project.pace_adjusted = False
    project.save()
    slow = expert()
    label(project, slow, 600)  # 10 minutes for a 1.50 task: 9 USD/h before the floor
    run = snapshot(project, {slow: ("silver", None, None)})
    earnings_release(run=run)
    assert payable(slow) == 1_500  # 90 USD/h x 10 minutes
    transaction = LedgerTransaction.objects.get(idempotency_key__startswith="release:")
    assert transaction.metadata["hourly_floor_top_up"] == 1_350
    assert ledger_verify().is_clean


def test_the_bonus_goes_by_impact_lower_bound_and_nothing_for_noise(
    lab: Lab, lab_owner: User
) -> None:
    project = open_for_work(make_project(lab, lab_owner, redundancy=3))
    project.bonus_pool_percent = 10
    project.pace_adjusted = False
    project.save()
    sure, noisy, negative, on_probation = expert(), expert(), expert(), expert()
    for user in (sure, noisy, negative, on_probation):
        label(project, user, 90)
    run = snapshot(
        project,
        {
            sure: ("gold", 0.03, 0.005),  # lower bound 0.0218
            noisy: ("silver", 0.02, 0.02),  # indistinguishable from zero: nothing
            negative: ("silver", -0.01, 0.002),
            on_probation: ("probation", 0.05, 0.001),  # probation shares no bonus
        },
    )
    escrow_before = escrow(project)
    report = earnings_release(run=run)
    # Pool: 10% of four labels' base (4 x 15); all of it to the one distinguishable impact.
    assert report.bonus == 60
    assert payable(sure) == 172 + 60  # 150 x 1.15 = 172 (rounded down), plus the bonus
    assert payable(noisy) == 150 and payable(negative) == 150 and payable(on_probation) == 75
    bonus = LedgerTransaction.objects.get(kind="bonus")
    assert set(bonus.metadata["shares"]) == {str(sure.pk)}
    assert "lower bound" in bonus.metadata["rule"]
    assert escrow(project) > escrow_before
    assert ledger_verify().is_clean


def test_nothing_is_released_to_a_suspended_expert(lab: Lab, lab_owner: User, staff: User) -> None:
    from contributors.services import expert_suspend

    project = open_for_work(make_project(lab, lab_owner))
    user = expert()
    label(project, user, 90)
    expert_suspend(user=user, reason="looking into it", suspended_by=staff)
    earnings_release(run=snapshot(project, {user: ("gold", None, None)}))
    assert pending(project, user) == 150 and payable(user) == 0


def test_closing_the_project_releases_provisional_work_at_face_value(
    lab: Lab, lab_owner: User
) -> None:
    project = open_for_work(make_project(lab, lab_owner))
    project.pace_adjusted = False
    project.save()
    user = expert()
    label(project, user, 90)
    Project.objects.filter(pk=project.pk).update(status="closed")
    project.refresh_from_db()
    earnings_release(run=snapshot(project, {user: ("provisional", None, None)}))
    assert payable(user) == 150


def test_an_hourly_project_bills_server_time_capped_never_the_clients_number(
    lab: Lab, lab_owner: User, client_for: Any
) -> None:
    """Issue 15: one task on a $100/h project booked $16,800 against a $65 reservation when
    the client claimed 7 days. Now the client's `seconds_spent` is advisory: the server's
    claim-to-submit time is billed, capped by the lease (and later by the project median)."""
    project = make_project(
        lab, lab_owner, pay={"unit": "hour", "base_rate": 10_000, "currency": "usd"}
    )
    project.lease_minutes = 30
    open_for_work(project)
    user = expert()
    client = client_for(user)
    task = client.post("/api/v1/tasks/next/", {"project": project.pk}, format="json").json()
    assignment = project.assignments.get()
    # The lease reserved what the task can cost at most: 30 minutes at $100/h at x1.30.
    assert assignment.reserved_amount == 5_000 + 1_500
    type(assignment).objects.filter(pk=assignment.pk).update(
        served_at=timezone.now() - timedelta(minutes=12)
    )
    response = client.post(
        f"/api/v1/assignments/{task['id']}/submit/",
        {**ANSWER, "seconds_spent": 7 * 24 * 3600},
        format="json",
    )
    assert response.status_code == 201, response.content
    earning = Earning.objects.get()
    assert 12 * 60 <= earning.active_seconds <= 12 * 60 + 5
    assert earning.base == 10_000 * earning.active_seconds // 3600 <= 2_010
    assert earning.base + earning.reserve <= assignment.reserved_amount
    assert escrow(project) >= 0 and ledger_verify().is_clean


def test_a_quality_stop_forfeits_pending_pay_and_an_appeal_can_pay_it_back(
    lab: Lab, lab_owner: User, client_for: Any, staff: User, django_capture_on_commit_callbacks: Any
) -> None:
    project = open_for_work(make_project(lab, lab_owner))
    user = expert()
    for _ in range(3):
        label(project, user, 60)
    escrow_before = escrow(project)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        stop = gate.quality_stop_create(
            project=project, expert=user, reason="near_chance", evidence={"components": {}}
        )
    assert stop is not None and stop.forfeited == 450
    assert pending(project, user) == 0 and escrow(project) == escrow_before + 3 * 195
    assert set(Earning.objects.values_list("status", flat=True)) == {EarningStatus.FORFEITED}
    # Their labels stop counting after the commit (the discount task): each item is back in the
    # pool, once however often the task runs.
    assert set(Submission.objects.values_list("status", flat=True)) == {"accepted"}
    for callback in callbacks:
        callback()
    assert set(Submission.objects.values_list("status", flat=True)) == {"rejected"}
    assert gate.quality_stop_discount(stop_id=stop.pk) == 0
    assert set(Item.objects.values_list("labels_count", flat=True)) == {0}
    assert all(item.is_open for item in Item.objects.all())
    with pytest.raises(routing.NotQualified):
        routing.assignment_claim(expert=user, project=project)
    # The expert reads why, and appeals; an admin with MFA reverses it.
    page = browser(user).get("/expert/earnings/").content.decode()
    assert "random answers would" in page and "Appeal" in page
    mine = client_for(user).get("/api/v1/me/quality-stops/").json()
    assert mine[0]["forfeited"] == 450 and mine[0]["status"] == "stopped"
    assert (
        client_for(user)
        .post(
            f"/api/v1/me/quality-stops/{stop.pk}/appeal/",
            {"reason": "I was careful"},
            format="json",
        )
        .json()["status"]
        == "appealed"
    )
    enable_mfa(staff)
    decided = client_for(staff).post(
        f"/api/v1/admin/quality-stops/{stop.pk}/decide/",
        {"decision": "reverse", "note": "gold item 3 was wrong"},
        format="json",
    )
    assert decided.status_code == 200 and decided.json()["status"] == "reversed"
    assert payable(user) == 450
    assert routing.assignment_claim(expert=user, project=project) is not None
    assert ledger_verify().is_clean


def test_an_appeal_is_for_the_stopped_expert_and_decisions_need_staff_with_mfa(
    lab: Lab, lab_owner: User, client_for: Any, staff: User
) -> None:
    project = open_for_work(make_project(lab, lab_owner))
    user, other = expert(), expert()
    label(project, user, 60)
    stop = gate.quality_stop_create(project=project, expert=user, reason="inverted", evidence={})
    assert (
        client_for(other)
        .post(f"/api/v1/me/quality-stops/{stop.pk}/appeal/", {"reason": "x"}, format="json")
        .status_code
        == 404
    )
    assert (
        client_for(staff)
        .post(
            f"/api/v1/admin/quality-stops/{stop.pk}/decide/", {"decision": "uphold"}, format="json"
        )
        .status_code
        == 403
    )  # staff without MFA
    assert (
        client_for(user)
        .post(
            f"/api/v1/admin/quality-stops/{stop.pk}/decide/", {"decision": "reverse"}, format="json"
        )
        .status_code
        == 403
    )
    enable_mfa(staff)
    # Not appealed yet: nothing to decide.
    assert (
        client_for(staff)
        .post(
            f"/api/v1/admin/quality-stops/{stop.pk}/decide/", {"decision": "uphold"}, format="json"
        )
        .status_code
        == 409
    )
    assert QualityStop.objects.get().status == "stopped" and payable(user) == 0


def test_the_earnings_page_shows_pending_released_and_forfeited_with_reasons(
    lab: Lab, lab_owner: User
) -> None:
    project = open_for_work(make_project(lab, lab_owner, title="Statin safety"))
    project.pace_adjusted = False
    project.save()
    user = expert()
    label(project, user, 90)
    earnings_release(run=snapshot(project, {user: ("gold", None, None)}))
    label(project, user, 90)
    html = browser(user).get("/expert/earnings/").content.decode()
    assert "Statin safety" in html
    assert "Pending: <strong>1.50 USD" in html  # the second label
    assert "released at gold (x1.15)" in html
    assert "/h" in html  # effective hourly pay of released work


def test_the_desk_and_the_lab_see_pay_per_hour_by_tier_and_expert(
    lab: Lab, lab_owner: User, staff: User
) -> None:
    project = open_for_work(make_project(lab, lab_owner, title="Hourly view"))
    project.pace_adjusted = False
    project.save()
    user = expert()
    for _ in range(2):
        label(project, user, 90)
    earnings_release(run=snapshot(project, {user: ("gold", None, None)}))
    enable_mfa(staff)
    desk = browser(staff).get("/desk/pay/").content.decode()
    # 2 x 172 cents for 180 s: 68.80 per hour.
    assert "Hourly view" in desk and user.email in desk and "68.80 USD/h" in desk
    console = browser(lab_owner).get(f"/projects/{project.pk}/").content.decode()
    assert "Pay per hour by tier" in console and "68.80 USD/h" in console
    assert user.email not in console  # the lab sees pseudonyms only
