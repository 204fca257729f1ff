"""The lab console: labs, the project form with its rubric editor, imports with line errors,
funding, the dashboard; every page scoped like the API (404 outside the caller's labs)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from marketplace.models import Lab, User
from projects.models import Item, Project
from tests.conftest import browser
from tests.projects.factories import make_project, make_submission, ndjson, open_project

pytestmark = pytest.mark.django_db


PROJECT_FORM: dict[str, Any] = {
    "title": "Dermatology pairs",
    "description": "Which answer would a dermatologist sign?",
    "domain": "medicine",
    "task_type": "pairwise",
    "pay_unit": "task",
    "base_rate": "1.25",
    "currency": "usd",
    "redundancy": "3",
    "max_redundancy": "5",
    "gold_rate": "0.1",
    "lease_minutes": "30",
    "budget": "",
    "bonus_pool_percent": "10",
    "review_rate": "0",
    "required_certification": ["medicine.cardiology"],
    "instructions": "Be strict.",
    "dim_key": ["correctness", "tone"],
    "dim_label": ["Correct", "Tone"],
    "dim_kind": ["likert", "choice"],
    "dim_min": ["1", ""],
    "dim_max": ["7", ""],
    "dim_options": ["", "warm, neutral, cold"],
    "dim_weight": ["2", "1"],
    "dim_description": ["Facts right", ""],
}


def test_lab_owner_creates_a_lab_and_a_project_with_a_two_dimension_rubric(
    lab_owner: User,
) -> None:
    client = browser(lab_owner)
    response = client.post("/labs/", {"name": "Skin Lab"})
    lab_url = response["Location"]
    lab_id = int(lab_url.strip("/").split("/")[-1])
    response = client.post(f"/labs/{lab_id}/projects/new/", PROJECT_FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    project = Project.objects.get(title="Dermatology pairs")
    assert project.base_rate == 125 and project.max_redundancy == 5
    rubric = project.rubric_versions.get()
    dims = list(rubric.dimensions.order_by("position"))
    assert [d.key for d in dims] == ["correctness", "tone"]
    assert dims[0].min_value == 1 and dims[0].max_value == 7 and dims[0].weight == 2.0
    assert dims[1].options == ["warm", "neutral", "cold"]
    assert rubric.instructions == "Be strict."
    assert [r.skill.key for r in project.required_certifications.all()] == ["medicine.cardiology"]
    page = client.get(response["Location"]).content.decode()
    assert "Dermatology pairs" in page and "Before publishing" in page


def test_project_form_shows_every_problem_and_keeps_rows(lab: Lab, lab_owner: User) -> None:
    form = {
        **PROJECT_FORM,
        "base_rate": "",
        "dim_key": ["Bad Key", "tone"],
        "dim_max": ["0", ""],
        "dim_options": ["", ""],
    }
    response = browser(lab_owner).post(f"/labs/{lab.pk}/projects/new/", form)
    assert response.status_code == 200
    html = response.content.decode()
    assert "lowercase letters" in html  # the key
    assert "a choice dimension needs at least 2 options" in html
    assert "base_rate" in html
    assert 'value="Bad Key"' in html  # the row stays for fixing
    assert not Project.objects.filter(title="Dermatology pairs").exists()


def test_edit_of_an_open_project_creates_a_new_rubric_version_only_when_changed(
    lab: Lab, lab_owner: User
) -> None:
    project = open_project(lab, lab_owner)
    client = browser(lab_owner)
    page = client.get(f"/projects/{project.pk}/edit/").content.decode()
    assert 'value="correctness"' in page and "rubric version" in page
    form = {
        **PROJECT_FORM,
        "title": project.title,
        "dim_key": ["correctness", "safety"],
        "dim_label": ["Medically correct", "Safe advice"],
        "dim_kind": ["likert", "binary"],
        "dim_min": ["1", ""],
        "dim_max": ["7", ""],
        "dim_options": ["", ""],
        "dim_weight": ["2.0", "1.0"],
        "dim_description": ["", ""],
        "instructions": "Prefer the answer a cardiologist would sign.",
        "base_rate": "1.50",
    }
    assert client.post(f"/projects/{project.pk}/edit/", form).status_code == 302
    assert project.rubric_versions.count() == 1
    form["dim_key"] = ["safety", "correctness"]  # reordered
    form["dim_label"] = ["Safe advice", "Medically correct"]
    form["dim_kind"] = ["binary", "likert"]
    form["dim_min"], form["dim_max"] = ["", "1"], ["", "7"]
    form["dim_weight"] = ["1.0", "2.0"]
    assert client.post(f"/projects/{project.pk}/edit/", form).status_code == 302
    latest = project.rubric_versions.order_by("-number").first()
    assert latest.number == 2
    assert [d.key for d in latest.dimensions.order_by("position")] == ["safety", "correctness"]


def test_import_by_upload_reports_bad_lines_and_imports_good_files(
    lab: Lab, lab_owner: User
) -> None:
    project = make_project(lab, lab_owner)
    client = browser(lab_owner)
    bad = ndjson(
        [
            {"prompt": "ok", "responses": ["a", "b"]},
            {"prompt": "one response", "responses": ["a"]},
            "not an object",
        ]
    )
    response = client.post(
        f"/projects/{project.pk}/import/",
        {"kind": "items", "file": SimpleUploadedFile("items.jsonl", bad)},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert '<td class="num">2</td>' in html and '<td class="num">3</td>' in html
    assert not Item.objects.filter(project=project).exists()
    good = ndjson([{"prompt": f"p{i}", "responses": ["a", "b"]} for i in range(4)])
    response = client.post(
        f"/projects/{project.pk}/import/",
        {"kind": "items", "file": SimpleUploadedFile("items.jsonl", good)},
    )
    assert response.status_code == 302
    assert Item.objects.filter(project=project).count() == 4


def test_dashboard_shows_progress_distributions_contributors_and_export_links(
    lab: Lab, lab_owner: User, expert: User
) -> None:
    project = open_project(lab, lab_owner, items=2)
    item = project.items.first()
    make_submission(
        item, expert, {"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}}
    )
    html = browser(lab_owner).get(f"/projects/{project.pk}/").content.decode()
    assert "<svg" in html and "Answers for correctness" in html
    assert "Accepted labels per day" in html
    assert f"/api/v1/projects/{project.pk}/export/" in html
    assert expert.email not in html  # contributors are pseudonymous to labs


def test_dashboard_export_form_blank_filters_mean_no_filter(
    lab: Lab, lab_owner: User, expert: User
) -> None:
    project = open_project(lab, lab_owner, items=1)
    make_submission(
        project.items.first(),
        expert,
        {"preference": "a", "answers": {"correctness": [6, 3], "safety": [1, 0]}},
    )
    response = browser(lab_owner).get(
        f"/api/v1/projects/{project.pk}/export/",
        {"format": "dpo", "min_tier": "", "min_confidence": "", "split": ""},
    )
    assert response.status_code == 200
    assert b"chosen" in b"".join(response.streaming_content)


def test_console_pages_are_404_outside_the_callers_labs(
    lab: Lab, lab_owner: User, other_lab_owner: User, lab_viewer: User
) -> None:
    project = make_project(lab, lab_owner)
    outsider = browser(other_lab_owner)
    for url in (
        f"/labs/{lab.pk}/",
        f"/labs/{lab.pk}/projects/new/",
        f"/projects/{project.pk}/",
        f"/projects/{project.pk}/edit/",
        f"/projects/{project.pk}/preview/",
        f"/projects/{project.pk}/import/",
    ):
        assert outsider.get(url).status_code == 404, url
    for url in ("fund", "status", "score"):
        assert (
            outsider.post(f"/projects/{project.pk}/{url}/", {"action": "publish"}).status_code
            == 404
        )
    viewer = browser(lab_viewer)
    assert viewer.get(f"/projects/{project.pk}/").status_code == 200
    assert viewer.get(f"/projects/{project.pk}/edit/").status_code == 403
    assert viewer.post(f"/projects/{project.pk}/status/", {"action": "close"}).status_code == 403
    project.refresh_from_db()
    assert project.status == "draft"


def test_console_forms_need_csrf(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner)
    client = browser(lab_owner, csrf=True)
    assert client.post(f"/labs/{lab.pk}/projects/new/", PROJECT_FORM).status_code == 403
    assert client.post(f"/projects/{project.pk}/status/", {"action": "close"}).status_code == 403


def test_preview_renders_the_expert_view_inertly(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner)
    Item.objects.create(project=project, prompt="<script>x()</script>", responses=["a", "b"])
    html = browser(lab_owner).get(f"/projects/{project.pk}/preview/").content.decode()
    assert "&lt;script&gt;x()&lt;/script&gt;" in html
    assert 'name="dim.correctness.1"' in html


def test_publish_from_the_dashboard_reports_problems(lab: Lab, lab_owner: User) -> None:
    project = make_project(lab, lab_owner)
    client = browser(lab_owner)
    response = client.post(f"/projects/{project.pk}/status/", {"action": "publish"}, follow=True)
    assert "cannot be published" in response.content.decode()
    project.refresh_from_db()
    assert project.status == "draft"


def test_dashboard_sets_feed_rules_and_the_ai_judge(
    lab: Lab, lab_owner: User, lab_viewer: User, django_capture_on_commit_callbacks: Any
) -> None:
    from projects.models import Submission

    project = open_project(lab, lab_owner, items=2)
    client = browser(lab_owner)
    html = client.get(f"/projects/{project.pk}/").content.decode()
    assert "Save feed rules" in html and "AI reviewer" in html
    client.post(
        f"/projects/{project.pk}/feed-rules/",
        {"gray_low": "0.3", "gray_high": "0.7", "audit_rate": "0.1"},
    )
    project.refresh_from_db()
    assert (project.feed_gray_low, project.feed_gray_high, project.feed_audit_rate) == (
        0.3,
        0.7,
        0.1,
    )
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/projects/{project.pk}/ai-judge/", {"judge": "heuristic"})
    project.refresh_from_db()
    assert project.ai_judge == "heuristic"
    assert (
        Submission.objects.filter(
            project=project, expert__email="ai-judge+heuristic@ai.invalid"
        ).count()
        == 2
    )
    assert (
        browser(lab_viewer)
        .post(f"/projects/{project.pk}/ai-judge/", {"judge": "random"})
        .status_code
        == 403
    )


def test_preview_without_items_shows_placeholders_for_the_task_type(
    lab: Lab, lab_owner: User
) -> None:
    rating = make_project(
        lab,
        lab_owner,
        task_type="rating",
        rubric={
            "dimensions": [
                {"key": "clarity", "label": "Clear", "kind": "likert", "min": 1, "max": 5}
            ]
        },
    )
    html = browser(lab_owner).get(f"/projects/{rating.pk}/preview/").content.decode()
    assert "(response A shows here)" in html and "(response B shows here)" not in html
    assert 'name="dim.clarity"' in html
