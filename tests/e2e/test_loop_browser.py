"""In Chromium: a lab promotes a bad case and sees the re-labelled items and the before/after
trend; tunes the feed's gray zone from its calibration; follows an export job's progress.
Screenshots go to test-output/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects.models import Project, RelabelBatch
from projects.tasks import relabel_batches_advance_task
from tests.e2e.conftest import screenshot
from tests.e2e.test_browser import sign_in
from tests.projects.factories import make_items, make_project, make_submission, open_project
from tests.projects.test_calibration import feed_with_audits
from tests.projects.test_relabel import SAFE, UNSAFE, bad_case, experts, plain_item

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def api_client(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def work_everything(user: User, project: Project, answer: dict[str, Any]) -> int:
    client, done = api_client(user), 0
    while True:
        task = client.post("/api/v1/tasks/next/", {"project": project.pk}, format="json")
        if task.status_code == 204:
            return done
        body = {**answer, "seconds_spent": 40}
        assert (
            client.post(
                f"/api/v1/assignments/{task.json()['id']}/submit/", body, format="json"
            ).status_code
            == 201
        )
        done += 1


def test_a_lab_promotes_a_bad_case_and_sees_the_relabelled_items_and_the_trend(
    new_page: Any, lab: Lab, lab_owner: User
) -> None:
    project = open_project(lab, lab_owner, items=0)
    bad_case(project, "Can I stop my statin?")
    bad_case(project, "Can I stop my statin tablets today?")
    plain_item(project, "Can I stop my statin tomorrow?", ["Sure, stop taking it.", "Ask first."])
    plain_item(project, "Which city is the capital of France?", ["Paris.", "Lyon."])
    for person in experts(3):
        work_everything(person, project, UNSAFE)

    page, watch = new_page("loop")
    sign_in(page, lab_owner.email)
    page.goto(f"/projects/{project.pk}/")
    page.click("text=Bad cases and re-labelling")
    page.fill("#similar", "1")
    page.fill("#labels_per_item", "2")
    page.fill("#key", "deferral")
    page.fill("#label", "Defers to a clinician")
    page.select_option("#kind", "binary")
    page.click("text=Add the dimension and re-label")
    page.wait_for_selector("#batch-status")
    assert page.inner_text("#batch-status") == "relabelling"
    assert "0 of 6 new labels" in page.inner_text("#batch-progress")
    assert page.locator("text=produced the bad case").count() == 2
    assert page.locator("text=similar text").count() == 1
    screenshot(page, "loop-batch-relabelling")

    for person in experts(2):
        assert work_everything(person, project, SAFE) == 3
    relabel_batches_advance_task.apply()
    batch = RelabelBatch.objects.get()
    page.goto(f"/relabel-batches/{batch.pk}/")
    assert page.inner_text("#batch-status") == "done"
    assert "6 of 6 new labels" in page.inner_text("#batch-progress")
    safety = page.locator("table.trend").first.locator("tr[data-dimension=safety]").inner_text()
    # 9 of 18 safe before, 12 of 12 after; the promoted dimension has no before.
    assert "0.500" in safety and "n=18" in safety and "1.000" in safety and "n=12" in safety
    deferral = page.locator("table.trend").first.locator("tr[data-dimension=deferral]")
    assert "n=12" in deferral.inner_text()
    screenshot(page, "loop-batch-done-trend")
    assert not watch.errors and not watch.dialogs


def test_a_lab_tunes_the_gray_zone_from_its_calibration(
    new_page: Any, lab: Lab, lab_owner: User
) -> None:
    project = feed_with_audits(lab, lab_owner)
    page, watch = new_page("calibration")
    sign_in(page, lab_owner.email)
    page.goto(f"/projects/{project.pk}/")
    page.click("text=Live feed and calibration")
    # By hand: 2 of 7 judged audits wrong.
    assert page.inner_text("#error-rate") == "28.6%"
    assert "73 judged audits" in page.inner_text("#recommendation")
    page.fill("#target_error_rate", "0.5")
    page.click("text=Save target")
    assert "From 0.2 to 0.85" in page.inner_text("#recommendation")
    screenshot(page, "feed-calibration")
    page.click("text=Use this gray zone")
    project.refresh_from_db()
    assert (project.feed_gray_low, project.feed_gray_high) == (0.2, 0.85)
    assert not watch.errors and not watch.dialogs


def test_a_lab_follows_an_export_job_to_its_download(
    new_page: Any, lab: Lab, lab_owner: User, settings: Any, tmp_path: Any
) -> None:
    settings.EXPORT_DIR = str(tmp_path)
    project = make_project(lab, lab_owner)
    answer = {"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}}
    for item in make_items(project, 3):
        make_submission(item, lab_owner, answer)
    page, watch = new_page("exports")
    sign_in(page, lab_owner.email)
    page.goto(f"/projects/{project.pk}/")
    page.click("text=Export jobs")
    page.select_option("#format", "dpo")
    page.click("text=Start an export job")
    # Without a broker the job runs right after the request's commit; the page shows it done.
    row = page.locator("tbody tr").first
    assert "ready" in row.inner_text()
    assert "3 of 3 items (100%)" in row.inner_text()
    assert row.locator("progress").get_attribute("value") == "3"
    screenshot(page, "export-job-progress")
    with page.expect_download() as download:
        row.locator("text=Download").click()
    assert download.value.suggested_filename.endswith(".jsonl")
    assert not watch.errors and not watch.dialogs


def test_a_lab_adds_a_webhook_endpoint_and_presses_the_test_button(
    new_page: Any, lab: Lab, lab_owner: User, settings: Any
) -> None:
    from tests.marketplace.test_webhooks import Receiver

    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_UNSAFE_ALLOWED_HOSTS = ["127.0.0.1"]
    receiver = Receiver()
    try:
        page, watch = new_page("webhooks")
        sign_in(page, lab_owner.email)
        page.goto(f"/labs/{lab.pk}/settings/")
        page.click("text=Outbound webhooks")
        page.fill("#url", receiver.url)
        page.check("input[value='export.ready']")
        page.click("text=Add endpoint")
        assert "whsec_" in page.inner_text("#new-secret")
        page.click(f"text={receiver.url}")
        page.click("text=Send test")
        assert "Test message delivered (HTTP 200)" in page.inner_text(".messages")
        row = page.locator("#deliveries tbody tr").first.inner_text()
        assert "webhook.test" in row and "succeeded" in row
        assert len(receiver.requests) == 1
        screenshot(page, "webhook-test-button")
        assert not watch.errors and not watch.dialogs
    finally:
        receiver.server.shutdown()
