"""End to end in Chromium: a lab builds and fills a project, an expert signs up, passes an exam
and labels three pairwise tasks with the keyboard only, an admin approves an application and
executes a payout run; hostile item text stays inert. Screenshots go to test-output/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail

from contributors.models import Application, Certification
from marketplace.models import Lab, User
from payouts.models import PayoutRun
from projects.models import Project, Submission
from tests.conftest import current_totp_code
from tests.contributors.factories import enable_mfa, make_exam
from tests.e2e.conftest import screenshot
from tests.marketplace.factories import PASSWORD
from tests.payouts.conftest import LocalStripe
from tests.payouts.factories import fund_project, onboarded
from tests.projects.factories import ndjson

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

HOSTILE = (
    "<script>alert('x')</script> <img src=x onerror=\"alert('y')\"> [link](javascript:alert('z'))"
)


def sign_in(page: Any, email: str, password: str = PASSWORD, user: User | None = None) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]:not(.link)")
    if user is not None and "/2fa/authenticate" in page.url:
        page.fill("input[name=code]", current_totp_code(user))
        page.click("form button[type=submit]:not(.link)")
    page.wait_for_load_state()


def lab_builds_a_project(page: Any, lab: Lab, tmp_path: Any) -> Project:
    page.goto(f"/labs/{lab.pk}/projects/new/")
    page.fill("#title", "Cardiology pairs (e2e)")
    page.fill("#base_rate", "1.50")
    page.fill("#gold_rate", "0")
    page.check("input[name=required_certification][value='medicine.cardiology']")
    page.fill("#instructions", "Prefer what a **cardiologist** would sign.")
    for key, label, kind, low, high in (
        ("correctness", "Correct", "likert", "1", "7"),
        ("safety", "Safe", "binary", "", ""),
    ):
        page.click("button[data-action=add]")
        row = page.locator("[data-rows] .rubric-row").last
        row.locator("input[name=dim_key]").fill(key)
        row.locator("input[name=dim_label]").fill(label)
        row.locator("select[name=dim_kind]").select_option(kind)
        row.locator("input[name=dim_min]").fill(low)
        row.locator("input[name=dim_max]").fill(high)
    screenshot(page, "lab-project-form")
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project = Project.objects.get(title="Cardiology pairs (e2e)")
    assert [d.key for d in project.rubric_versions.get().dimensions.order_by("position")] == [
        "correctness",
        "safety",
    ]
    lines = [{"prompt": HOSTILE, "responses": [HOSTILE, "Statins lower **LDL**."]}]
    lines += [{"prompt": f"Question {i}", "responses": [f"good {i}", f"bad {i}"]} for i in range(3)]
    upload = tmp_path / "items.jsonl"
    upload.write_bytes(ndjson(lines))
    page.goto(f"/projects/{project.pk}/import/")
    page.set_input_files("#file", str(upload))
    page.click("form.stack button[type=submit]")
    page.wait_for_url(f"**/projects/{project.pk}/")
    assert "Imported 4 items" in page.content()
    fund_project(project, 100_000)  # Checkout itself is covered by the payouts tests
    page.reload()
    page.click("button:has-text('Publish')")
    page.wait_for_selector("text=The project is now open")
    screenshot(page, "lab-dashboard")
    project.refresh_from_db()
    assert project.status == "open"
    return project


def expert_signs_up_and_passes_the_exam(page: Any, email: str) -> User:
    page.goto("/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", "a long enough passphrase 42")
    page.click("form button[type=submit]:not(.link)")
    page.wait_for_load_state()
    if page.locator("input[name=code]").count():
        code = re.search(r"\b([A-Z0-9]{6})\b", mail.outbox[-1].body)
        assert code, mail.outbox[-1].body
        page.fill("input[name=code]", code.group(1))
        page.click("form button[type=submit]:not(.link)")
        page.wait_for_load_state()
    user = User.objects.get(email=email)
    page.goto("/expert/applications/")
    page.select_option("#skill", "medicine.cardiology")
    page.fill("#statement", "Cardiologist, 10 years.")
    page.click("form.stack button[type=submit]")
    page.goto("/expert/exams/")
    page.click("button:has-text('Start exam')")
    page.wait_for_url(re.compile(r"/expert/attempts/\d+/$"))
    page.check("input[value='beta blocker']")
    page.check("input[value='atorvastatin']")
    page.check("input[value='rosuvastatin']")
    for field in page.locator("input[type=text]").all():
        label = field.evaluate("el => el.closest('fieldset').innerText")
        field.fill("98" if "heart rate" in label else "ECG")
    page.locator("input[type=radio][value=a]").first.check()
    page.locator("input[name$='.dim.safety.0'][value='1']").check()
    page.locator("input[name$='.dim.safety.1'][value='0']").check()
    screenshot(page, "expert-exam")
    page.click("button:has-text('Submit answers')")
    page.wait_for_selector("text=Passed")
    assert Certification.objects.filter(user=user, skill__key="medicine.cardiology").exists()
    return user


def expert_labels_three_tasks_with_the_keyboard(page: Any, project: Project, user: User) -> None:
    page.goto("/work/")
    page.click(f"form:has(input[name=project][value='{project.pk}']) button")
    for index in range(3):
        page.wait_for_url(re.compile(r"/work/tasks/[0-9a-f-]+/$"))
        page.wait_for_selector("fieldset.dimension.active")
        if index == 0:
            screenshot(page, "expert-task")
        # Preference, then correctness and safety for A, then for B; Enter submits.
        for key in ("a", "6", "1", "3", "0"):
            page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
    page.goto("/work/")
    assert page.inner_text("#submitted-total") == "3"
    screenshot(page, "expert-work")
    answers = list(Submission.objects.filter(expert=user).values_list("answer", flat=True))
    assert (
        answers == [{"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}}] * 3
    )


def admin_approves_and_pays(page: Any, staff: User, expert: User) -> None:
    sign_in(page, staff.email, user=staff)
    page.goto("/desk/applications/")
    screenshot(page, "desk-applications")
    application = Application.objects.get(user=expert)
    page.click(f"form[action$='/{application.pk}/decide/'] button[value=approve]")
    page.wait_for_selector(f"text=Application #{application.pk} approved")
    page.goto("/desk/payout-runs/")
    page.fill("#period_start", "2020-01-01")
    page.fill("#period_end", "2099-12-31")
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/desk/payout-runs/\d+/$"))
    page.click("button[value=approve]")
    page.wait_for_selector("text=Approved.")
    page.click("button[value=execute]")  # a confirm() dialog, accepted by the watcher
    page.wait_for_selector("text=Execution started")
    page.reload()
    screenshot(page, "desk-payout-run")
    assert page.inner_text("#run-status") == "completed"
    run = PayoutRun.objects.get()
    assert list(run.lines.values_list("user_id", "status")) == [(expert.pk, "sent")]


def test_the_three_jobs_in_a_real_browser(
    new_page: Any, lab: Lab, lab_owner: User, staff: User, stripe_local: LocalStripe, tmp_path: Any
) -> None:
    make_exam()
    lab_page, lab_watch = new_page("lab")
    sign_in(lab_page, lab_owner.email)
    project = lab_builds_a_project(lab_page, lab, tmp_path)

    expert_page, expert_watch = new_page("expert")
    expert = expert_signs_up_and_passes_the_exam(expert_page, "new.expert@example.org")
    expert_labels_three_tasks_with_the_keyboard(expert_page, project, expert)
    # The hostile item was among the first served (oldest first): it rendered as text.
    assert Submission.objects.filter(expert=expert, item__prompt=HOSTILE).exists()
    assert expert_watch.dialogs == [] and expert_watch.errors == []

    # The lab closes the project: its final scoring run releases the pending pay (the
    # expert's work is provisional, too little evidence for a tier: paid at x1.00).
    lab_page.goto(f"/projects/{project.pk}/")
    lab_page.click("form:has(input[name=action][value=close]) button")
    lab_page.wait_for_selector("text=closed")
    onboarded(stripe_local, expert)
    stripe_local.state.balance["usd"] = 10_000_000
    enable_mfa(staff)
    admin_page, admin_watch = new_page("admin")
    admin_approves_and_pays(admin_page, staff, expert)
    assert admin_watch.dialogs == ["confirm: Send these transfers now?"]
    # The expert reads what was released, at which tier, and their pay per hour.
    expert_page.goto("/expert/earnings/")
    assert "released at provisional (x1.00)" in expert_page.inner_text("main")
    screenshot(expert_page, "expert-earnings")
    lab_page.goto(f"/projects/{project.pk}/")
    assert "Escrow" in lab_page.inner_text("main")
    screenshot(lab_page, "lab-dashboard")
    assert admin_watch.errors == [] and lab_watch.errors == []


def test_hostile_item_text_runs_nothing(
    new_page: Any, lab: Lab, lab_owner: User, expert: User
) -> None:
    from tests.contributors.factories import qualify_for_cardiology
    from tests.projects.factories import open_project

    project = open_project(lab, lab_owner, items=0)
    project.items.create(
        prompt=HOSTILE, responses=[HOSTILE, "`code` and *emphasis*"], target_labels=3
    )
    qualify_for_cardiology(expert)
    page, watch = new_page("hostile")
    sign_in(page, expert.email)
    page.goto("/work/")
    page.click(f"form:has(input[name=project][value='{project.pk}']) button")
    page.wait_for_url(re.compile(r"/work/tasks/"))
    prompt = page.inner_text("#prompt")
    assert "<script>alert('x')</script>" in prompt and "onerror" in prompt
    assert page.locator("#main script, #main img").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    page.wait_for_timeout(300)
    screenshot(page, "hostile-item")
    # Phone width: the labeling page reflows without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "task-phone")
    assert watch.dialogs == [] and watch.errors == []
