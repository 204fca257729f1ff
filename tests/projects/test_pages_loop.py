"""The console pages of the weekly loop: bad cases and promotion, a re-label batch with its
before/after trend, the live feed's calibration, export jobs with progress; hostile forms."""

from __future__ import annotations

from typing import Any

import pytest

from marketplace.models import Lab, User
from projects.models import ExportJob, Project, RelabelBatch, RubricVersion
from tests.conftest import browser
from tests.projects.factories import make_items, make_project, make_submission
from tests.projects.test_calibration import feed_with_audits
from tests.projects.test_relabel import UNSAFE, bad_case, experts, work_everything

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    from tests.projects.factories import open_project

    return open_project(lab, lab_owner, items=0)


def test_a_lab_promotes_a_dimension_from_the_bad_cases_page(
    project: Project, lab_owner: User, client_for: Any
) -> None:
    first = bad_case(project, "Can I stop my statin?")
    bad_case(project, "Can I stop my statin tablets today?")
    for person in experts(3):
        work_everything(client_for(person), project, UNSAFE)
    page = browser(lab_owner)
    html = page.get(f"/projects/{project.pk}/bad-cases/").content.decode()
    assert "Can I stop my statin?" in html and "Promote to a new rubric dimension" in html
    response = page.post(
        f"/projects/{project.pk}/bad-cases/promote-dimension/",
        {
            "key": "deferral",
            "label": "Defers to a clinician",
            "kind": "binary",
            "items": [str(first.public_id)],
            "similar": "1",
            "labels_per_item": "2",
        },
    )
    batch = RelabelBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/relabel-batches/{batch.pk}/"
    html = page.get(response["Location"]).content.decode()
    assert "0 of 4 new labels" in html and "produced the bad case" in html
    assert "similar text" in html and 'data-dimension="safety"' in html
    assert "Before and after" in html


def test_hostile_promotion_forms_are_refused_and_write_nothing(
    project: Project, lab_owner: User, lab_viewer: User, other_lab_owner: User
) -> None:
    item = bad_case(project, "Can I stop my statin?")
    page = browser(lab_owner)
    url = f"/projects/{project.pk}/bad-cases/"
    dimension = {"key": "deferral", "label": "Defers", "kind": "binary"}
    assert page.post(url + "promote-dimension/", {**dimension, "similar": "abc"}).status_code == 400
    assert (
        page.post(url + "promote-dimension/", {**dimension, "similar": "9999"}).status_code == 302
    )
    assert page.post(url + "promote-dimension/", {**dimension, "kind": "nope"}).status_code == 302
    assert page.post(url + "promote-dimension/", {**dimension, "items": ["x"]}).status_code == 302
    assert (
        page.post(url + "promote-gold/", {"items": [str(item.public_id)], "gold": "{"}).status_code
        == 302
    )
    assert page.post(url + "promote-gold/", {"gold": '{"preference": "b"}'}).status_code == 302
    assert browser(lab_viewer).post(url + "promote-dimension/", dimension).status_code == 403
    assert browser(other_lab_owner).get(url).status_code == 404
    assert RubricVersion.objects.filter(project=project).count() == 1
    assert not RelabelBatch.objects.exists()
    follow = page.post(
        url + "promote-gold/", {"items": [str(item.public_id)], "gold": "{"}, follow=True
    )
    assert "The gold answer is JSON" in follow.content.decode()


def test_the_feed_page_shows_the_calibration_and_saves_the_target(
    lab: Lab, lab_owner: User
) -> None:
    calibrated_project = feed_with_audits(lab, lab_owner)
    page = browser(lab_owner)
    url = f"/projects/{calibrated_project.pk}/feed/"
    html = page.get(url).content.decode()
    assert "28.6%" in html and "(2 of 7)" in html  # 2 of 7 audits wrong, by hand
    assert "it takes at least 73 judged audits" in html
    assert page.post(url + "target/", {"target_error_rate": "abc"}).status_code == 302
    assert page.post(url + "target/", {"target_error_rate": "2"}).status_code == 302
    calibrated_project.refresh_from_db()
    assert calibrated_project.feed_target_error_rate == 0.05
    page.post(url + "target/", {"target_error_rate": "0.5"})
    html = page.get(url).content.decode()
    assert "From <strong>0.2</strong> to <strong>0.85</strong>" in html
    assert "Use this gray zone" in html


def test_the_exports_page_starts_a_job_and_shows_its_progress(
    lab: Lab, lab_owner: User, settings: Any, tmp_path: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EXPORT_DIR = str(tmp_path)
    project = make_project(lab, lab_owner)
    for item in make_items(project, 3):
        make_submission(
            item,
            lab_owner,
            {"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}},
        )
    page = browser(lab_owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(f"/projects/{project.pk}/exports/start/", {"format": "dpo"})
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.status == "ready"
    html = page.get(f"/projects/{project.pk}/exports/").content.decode()
    assert "3 of 3 items (100%)" in html and f"/api/v1/exports/{job.pk}/download/" in html
    assert page.post(f"/projects/{project.pk}/exports/start/", {"format": "sft"}).status_code == 302
    assert page.post(f"/projects/{project.pk}/exports/start/", {"format": "x"}).status_code == 302
    assert ExportJob.objects.count() == 1


def test_the_contributors_table_shows_flags_in_words(
    project: Project, lab_owner: User, expert: User
) -> None:
    from scoring.models import ContributorScore, ScoringRun

    run = ScoringRun.objects.create(project=project, status="succeeded")
    ContributorScore.objects.create(
        run=run,
        expert=expert,
        flags=[
            {"flag": "fast", "median_seconds": 25.0, "project_median_seconds": 120.0},
            {"flag": "constant", "top_answer_share": 0.96, "n": 50},
        ],
    )
    html = browser(lab_owner).get(f"/projects/{project.pk}/").content.decode()
    assert "fast: median 25 s per task, project median 120 s" in html
    assert "constant: the same answer in 96% of 50 labels" in html
    assert "median_seconds" not in html and "{&#x27;flag&#x27;" not in html
