"""The expert's labeling pages: claim, keyboard-shaped forms, submit, release, scoping, CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from marketplace.models import Lab, User
from projects.models import Assignment, Item, Project, Submission
from tests.conftest import browser
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.factories import open_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return open_project(lab, lab_owner, items=3)


@pytest.fixture
def worker(expert: User) -> Client:
    qualify_for_cardiology(expert)
    return browser(expert)


def claim_page(client: Client, project: Project) -> Any:
    response = client.post("/work/next/", {"project": project.pk})
    assert response.status_code == 302, response.content
    return response


GOOD_FORM = {
    "preference": "a",
    "dim.correctness.0": "6",
    "dim.correctness.1": "3",
    "dim.safety.0": "1",
    "dim.safety.1": "0",
    "seconds_spent": "41",
    "rationale": "A cites the guideline.",
}


def test_anonymous_is_sent_to_sign_in(client: Client) -> None:
    for url in ("/work/", "/expert/", "/labs/", "/expert/quality/", "/expert/earnings/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_work_index_lists_qualified_projects_only(
    worker: Client, project: Project, lab: Lab, lab_owner: User
) -> None:
    other = open_project(
        lab, lab_owner, title="Oncology", required_certifications=["medicine.oncology"]
    )
    page = worker.get("/work/").content.decode()
    assert project.title in page
    assert other.title not in page


def test_claim_shows_the_task_with_keyboard_controls_and_lease(
    worker: Client, project: Project, expert: User
) -> None:
    response = claim_page(worker, project)
    assignment = Assignment.objects.get(expert=expert)
    assert response["Location"] == f"/work/tasks/{assignment.public_id}/"
    page = worker.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-leased-until="' in html
    assert 'name="preference" value="a"' in html and "<kbd>a</kbd>" in html
    # Likert values carry their number key; per response controls for both responses.
    assert 'name="dim.correctness.0" value="7" data-key="7"' in html
    assert 'name="dim.safety.1" value="1" data-key="1"' in html
    assert "Prefer the answer a cardiologist would sign." in html


def test_submit_books_the_label_and_serves_the_next_task(
    worker: Client, project: Project, expert: User
) -> None:
    first = claim_page(worker, project)["Location"]
    response = worker.post(first, GOOD_FORM)
    assert response.status_code == 302
    submission = Submission.objects.get(expert=expert)
    assert submission.answer == {
        "preference": "a",
        "answers": {"correctness": [6, 3], "safety": [1, 0]},
    }
    assert submission.seconds_spent == 41
    assert submission.rationale == "A cites the guideline."
    assert response["Location"].startswith("/work/tasks/")
    assert response["Location"] != first
    assert "1</strong> label" in worker.get("/work/").content.decode()


def test_submit_with_missing_values_lists_every_problem_and_keeps_the_input(
    worker: Client, project: Project
) -> None:
    url = claim_page(worker, project)["Location"]
    response = worker.post(url, {"preference": "b", "dim.correctness.0": "5", "seconds_spent": "3"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "answers.correctness" in html and "answers.safety" in html
    assert 'value="b" checked' in html
    assert not Submission.objects.exists()


def test_second_submit_and_ended_lease_send_back_to_the_index(
    worker: Client, project: Project, expert: User
) -> None:
    url = claim_page(worker, project)["Location"]
    assert worker.post(url, GOOD_FORM).status_code == 302
    again = worker.post(url, GOOD_FORM)
    assert again.status_code == 302 and again["Location"] == "/work/"
    assert Submission.objects.filter(expert=expert).count() == 1


def test_skip_releases_and_claims_another_item(
    worker: Client, project: Project, expert: User
) -> None:
    url = claim_page(worker, project)["Location"]
    first = Assignment.objects.get(expert=expert)
    response = worker.post(f"{url}release/", {"then": "next"})
    first.refresh_from_db()
    assert first.status == "released"
    second = Assignment.objects.get(expert=expert, status="active")
    assert second.item_id != first.item_id
    assert response["Location"] == f"/work/tasks/{second.public_id}/"


def test_another_experts_task_is_404(worker: Client, project: Project, db: Any) -> None:
    url = claim_page(worker, project)["Location"]
    stranger = UserFactory()
    qualify_for_cardiology(stranger)
    assert browser(stranger).get(url).status_code == 404
    assert browser(stranger).post(url, GOOD_FORM).status_code == 404
    assert browser(stranger).post(f"{url}release/").status_code == 404


def test_forms_need_csrf(expert: User, project: Project) -> None:
    qualify_for_cardiology(expert)
    client = browser(expert, csrf=True)
    assert client.post("/work/next/", {"project": project.pk}).status_code == 403
    assert not Assignment.objects.exists()


def test_item_text_is_rendered_inert(
    worker: Client, lab: Lab, lab_owner: User, expert: User
) -> None:
    project = open_project(lab, lab_owner, items=0)
    Item.objects.create(
        project=project,
        prompt="<script>alert(1)</script> [x](javascript:alert(2))",
        responses=['<img src=x onerror="alert(3)">', "**bold** `code`"],
        target_labels=3,
    )
    html = worker.get(claim_page(worker, project)["Location"]).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert 'href="javascript:' not in html
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html


def test_pages_send_a_strict_content_security_policy(worker: Client, project: Project) -> None:
    response = worker.get("/work/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.content.decode()  # no inline script at all


def test_rating_and_correction_pages(
    worker: Client, lab: Lab, lab_owner: User, expert: User
) -> None:
    rating = open_project(
        lab,
        lab_owner,
        items=0,
        task_type="rating",
        rubric={
            "dimensions": [
                {"key": "clarity", "label": "Clear", "kind": "likert", "min": 1, "max": 5}
            ]
        },
    )
    Item.objects.create(project=rating, prompt="p", responses=["only"], target_labels=3)
    url = claim_page(worker, rating)["Location"]
    assert 'name="dim.clarity" value="5" data-key="5"' in worker.get(url).content.decode()
    assert worker.post(url, {"dim.clarity": "4", "seconds_spent": "9"}).status_code == 302
    assert Submission.objects.get(expert=expert).answer == {"answers": {"clarity": 4}}

    correction = open_project(
        lab, lab_owner, items=0, task_type="correction", rubric={"instructions": "Fix errors."}
    )
    Item.objects.create(project=correction, prompt="fix it", responses=["teh cat"], target_labels=3)
    url = claim_page(worker, correction)["Location"]
    html = worker.get(url).content.decode()
    assert 'data-original="teh cat"' in html and 'id="diff"' in html
    assert (
        worker.post(
            url, {"text": "the cat", "seconds_spent": "5", "pasted_share": "0.0"}
        ).status_code
        == 302
    )
    latest = Submission.objects.filter(expert=expert).latest("id")
    assert latest.answer == {"text": "the cat"} and latest.pasted_share == 0.0


def test_ranking_page_turns_places_into_a_ranking(
    worker: Client, lab: Lab, lab_owner: User, expert: User
) -> None:
    project = open_project(
        lab, lab_owner, items=0, task_type="ranking", rubric={"instructions": "Best first."}
    )
    Item.objects.create(project=project, prompt="p", responses=["x", "y", "z"], target_labels=3)
    url = claim_page(worker, project)["Location"]
    form = {"place.0": "3", "place.1": "1", "place.2": "2", "seconds_spent": "7"}
    assert worker.post(url, form).status_code == 302
    assert Submission.objects.get(expert=expert).answer["ranking"] == [1, 2, 0]
