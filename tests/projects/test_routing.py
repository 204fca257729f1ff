"""Work routing through the HTTP API: claims, blind redundancy, gold, leases, budgets, submits."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from contributors.models import Certification
from marketplace.models import Lab, User
from payouts.models import AccountKind
from payouts.services.ledger import balance_of, ledger_verify
from projects import routing
from projects.models import Assignment, Item, Project, Submission
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.payouts.factories import fund_project
from tests.projects.factories import make_items, make_project, open_project

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
GOOD = {
    "preference": "a",
    "answers": {"correctness": [6, 3], "safety": [1, 0]},
    "seconds_spent": 40,
}


@pytest.fixture
def project(lab: Lab, lab_owner: User) -> Project:
    return open_project(lab, lab_owner)


@pytest.fixture
def worker(client_for: Client, expert: User) -> APIClient:
    qualify_for_cardiology(expert)
    return client_for(expert)


def claim(client: APIClient, project: Project | None = None) -> Any:
    body = {} if project is None else {"project": project.id}
    return client.post("/api/v1/tasks/next/", body, format="json")


def submit(client: APIClient, task: dict[str, Any], body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/api/v1/assignments/{task['id']}/submit/", body or GOOD, format="json")


def test_claim_serves_a_task_with_the_served_rubric_and_a_lease(
    worker: APIClient, project: Project
) -> None:
    response = claim(worker, project)
    assert response.status_code == 200, response.content
    task = response.json()
    assert set(task) == {
        "id",
        "project",
        "task_type",
        "item",
        "rubric",
        "served_at",
        "leased_until",
    }
    assert set(task["item"]) == {"id", "prompt", "responses", "context"}
    assert task["rubric"]["version"] == 1
    assert [d["key"] for d in task["rubric"]["dimensions"]] == ["correctness", "safety"]
    leased = timezone.datetime.fromisoformat(task["leased_until"].replace("Z", "+00:00"))
    assert timedelta(minutes=29) < leased - timezone.now() <= timedelta(minutes=30)


def test_submit_records_the_label_and_books_the_base_earning(
    worker: APIClient, project: Project, expert: User
) -> None:
    task = claim(worker, project).json()
    response = submit(worker, task)
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert submission.answer == {
        "preference": "a",
        "answers": {"correctness": [6, 3], "safety": [1, 0]},
    }
    assert submission.seconds_spent == 40 and submission.rubric_version.number == 1
    # The base waits in pending for quality evidence; the highest tier's uplift is set aside.
    pending = balance_of(
        kind=AccountKind.EXPERT_PENDING, currency="usd", project=project, user=expert
    )
    assert pending == 150
    assert balance_of(kind=AccountKind.PROJECT_RESERVE, currency="usd", project=project) == 45
    assert balance_of(kind=AccountKind.EXPERT_PAYABLE, currency="usd", user=expert) == 0
    assert submission.earning.status == "pending" and submission.earning.base == 150
    assert ledger_verify().is_clean


def test_validation_lists_every_problem_and_records_nothing(
    worker: APIClient, project: Project
) -> None:
    task = claim(worker, project).json()
    response = submit(
        worker,
        task,
        {
            "preference": "maybe",
            "answers": {"correctness": [9], "kindness": [1, 1]},
            "seconds_spent": -1,
        },
    )
    assert response.status_code == 400
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert fields == {"seconds_spent"}  # request-level problems first
    response = submit(
        worker,
        task,
        {
            "preference": "maybe",
            "answers": {"correctness": [9], "kindness": [1, 1]},
            "seconds_spent": 5,
        },
    )
    fields = {problem["field"] for problem in response.json()["error"]["details"]}
    assert fields == {"preference", "answers.correctness", "answers.safety", "answers.kindness"}
    assert not Submission.objects.exists()


def test_second_submit_is_409_and_late_submit_is_410(worker: APIClient, project: Project) -> None:
    task = claim(worker, project).json()
    assert submit(worker, task).status_code == 201
    assert submit(worker, task).status_code == 409
    late = claim(worker, project).json()
    Assignment.objects.filter(public_id=late["id"]).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    response = submit(worker, late)
    assert response.status_code == 410
    assert Submission.objects.count() == 1


def test_others_cannot_submit_or_release_my_task(
    worker: APIClient, client_for: Client, project: Project, lab_owner: User
) -> None:
    task = claim(worker, project).json()
    other = client_for(lab_owner)
    assert submit(other, task).status_code == 404
    assert other.post(f"/api/v1/assignments/{task['id']}/release/").status_code == 404
    assert (
        APIClient()
        .post(f"/api/v1/assignments/{task['id']}/submit/", GOOD, format="json")
        .status_code
        == 401
    )


def test_release_gives_the_task_back_at_once(worker: APIClient, project: Project) -> None:
    task = claim(worker, project).json()
    item = Item.objects.get(public_id=task["item"]["id"])
    assert item.assigned_count == 1
    assert worker.post(f"/api/v1/assignments/{task['id']}/release/").status_code == 204
    item.refresh_from_db()
    assert item.assigned_count == 0 and item.is_open
    assert worker.post(f"/api/v1/assignments/{task['id']}/release/").status_code == 409


def test_blind_redundancy_never_twice_never_over(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    project = open_project(lab, lab_owner, items=4, redundancy=2)
    experts = [UserFactory() for _ in range(5)]
    seen: dict[int, set[str]] = {}
    for expert in experts:
        qualify_for_cardiology(expert)
        client = client_for(expert)
        seen[expert.pk] = set()
        while (response := claim(client, project)).status_code == 200:
            task = response.json()
            assert task["item"]["id"] not in seen[expert.pk]
            seen[expert.pk].add(task["item"]["id"])
            assert submit(client, task).status_code == 201
    per_item = Counter(Submission.objects.values_list("item_id", flat=True))
    assert sorted(per_item.values()) == [2, 2, 2, 2]
    assert routing.routing_verify(project=project) == []


def test_closest_to_completion_first(lab: Lab, lab_owner: User, client_for: Client) -> None:
    project = open_project(lab, lab_owner, items=3)
    first, second = UserFactory(), UserFactory()
    for user in (first, second):
        qualify_for_cardiology(user)
    task = claim(client_for(first), project).json()
    assert claim(client_for(second), project).json()["item"]["id"] == task["item"]["id"]


def test_lease_expiry_returns_the_item(lab: Lab, lab_owner: User, client_for: Client) -> None:
    project = open_project(lab, lab_owner, items=1, redundancy=1)
    first, second = UserFactory(), UserFactory()
    for user in (first, second):
        qualify_for_cardiology(user)
    task = claim(client_for(first), project).json()
    assert claim(client_for(second), project).status_code == 204
    Assignment.objects.filter(public_id=task["id"]).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    again = claim(client_for(second), project)
    assert again.status_code == 200 and again.json()["item"]["id"] == task["item"]["id"]
    assert Assignment.objects.get(public_id=task["id"]).status == "expired"


def test_the_beat_task_expires_leases(worker: APIClient, project: Project) -> None:
    from projects.tasks import leases_expire_task

    task = claim(worker, project).json()
    Assignment.objects.filter(public_id=task["id"]).update(
        leased_until=timezone.now() - timedelta(minutes=1)
    )
    assert leases_expire_task.apply().get() == 1
    assert Item.objects.get(public_id=task["item"]["id"]).assigned_count == 0


def test_unqualified_suspended_and_revoked_experts_are_refused_at_the_next_claim(
    client_for: Client, project: Project, expert: User, staff: User
) -> None:
    client = client_for(expert)
    assert claim(client, project).status_code == 403
    qualify_for_cardiology(expert)
    assert claim(client, project).status_code == 200
    Certification.objects.filter(user=expert).update(revoked_at=timezone.now())
    refused = claim(client, project)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_qualified"


def test_unknown_or_closed_projects_are_404(worker: APIClient, project: Project) -> None:
    assert claim(worker, Project(id=987654)).status_code == 404
    project.status = "paused"
    project.save()
    assert claim(worker, project).status_code == 404


def test_without_a_project_the_best_fit_is_chosen(worker: APIClient, project: Project) -> None:
    task = claim(worker).json()
    assert task["project"] == project.id


def test_the_lease_cap_per_expert(worker: APIClient, project: Project) -> None:
    project.max_active_leases = 2
    project.save()
    assert claim(worker, project).status_code == 200
    assert claim(worker, project).status_code == 200
    assert claim(worker, project).status_code == 403


def test_budget_exhaustion_stops_claims_and_nothing_is_overspent(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    project = make_project(lab, lab_owner, gold_rate=0.0)
    project.onboarding_gold = 0
    project.max_active_leases = 10
    project.save()
    make_items(project, 20, target_labels=3)
    fund_project(project, 625)  # escrow 500 = two tasks at 150 x 1.3 = 195, not three
    project.status = "open"
    project.save()
    expert = UserFactory()
    qualify_for_cardiology(expert)
    client = client_for(expert)
    tasks = [claim(client, project) for _ in range(3)]
    assert [t.status_code for t in tasks] == [200, 200, 204]
    for task in tasks[:2]:
        assert submit(client, task.json()).status_code == 201
    # A submit books what the lease reserved: base to pending, the uplift to the reserve.
    escrow = balance_of(kind=AccountKind.PROJECT_ESCROW, currency="usd", project=project)
    reserve = balance_of(kind=AccountKind.PROJECT_RESERVE, currency="usd", project=project)
    assert (escrow, reserve) == (110, 90)
    assert claim(client, project).status_code == 204
    assert ledger_verify().is_clean


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value[:1]]
    return type(value).__name__


def test_gold_tasks_look_exactly_like_other_tasks_and_onboarding_is_gold(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    project = open_project(lab, lab_owner, items=10, gold=10, onboarding_gold=3)
    project.onboarding_gold = 3
    project.max_active_leases = 20
    project.save()
    expert = UserFactory()
    qualify_for_cardiology(expert)
    client = client_for(expert)
    tasks = [claim(client, project).json() for _ in range(6)]
    gold_ids = {
        str(pid) for pid in Item.objects.filter(is_gold=True).values_list("public_id", flat=True)
    }
    kinds = [task["item"]["id"] in gold_ids for task in tasks]
    # Onboarding: exactly 3 gold among the first 6 tasks, at random positions.
    assert sum(kinds) == 3
    gold_task = tasks[0]
    normal_task = next(task for task, is_gold in zip(tasks, kinds, strict=True) if not is_gold)
    assert _shape(gold_task) == _shape(normal_task)
    assert "gold" not in str(gold_task).lower()


def test_gold_rate_is_observed_within_tolerance(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    project = open_project(lab, lab_owner, items=120, gold=120, gold_rate=0.3, redundancy=1)
    project.max_active_leases = 200
    project.save()
    expert = UserFactory()
    qualify_for_cardiology(expert)
    served = [routing.assignment_claim(expert=expert, project=project) for _ in range(100)]
    gold_share = sum(1 for claim_ in served if claim_ and claim_.assignment.item.is_gold) / 100
    assert 0.17 <= gold_share <= 0.43  # 0.3 +- ~3 standard errors


def test_low_agreement_escalates_one_label_at_a_time(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    project = open_project(lab, lab_owner, items=1, redundancy=2, max_redundancy=4)
    answers = ["a", "b", "a", "a"]
    statuses = []
    for preference in answers:
        expert = UserFactory()
        qualify_for_cardiology(expert)
        client = client_for(expert)
        response = claim(client, project)
        statuses.append(response.status_code)
        if response.status_code == 200:
            submit(client, response.json(), {**GOOD, "preference": preference})
    item = Item.objects.get(project=project)
    assert statuses == [200, 200, 200, 204]  # 1:1 after two labels -> a third; 2:1 meets 0.6
    assert (item.target_labels, item.labels_count, item.is_open) == (3, 3, False)


@pytest.mark.django_db(transaction=True)
def test_many_experts_claiming_at_once_never_exceed_redundancy(lab: Lab, lab_owner: User) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED concurrency needs PostgreSQL")
    project = open_project(lab, lab_owner, items=200, redundancy=3)
    project.max_active_leases = 1
    project.save()
    experts = [UserFactory() for _ in range(20)]
    for expert in experts:
        qualify_for_cardiology(expert)
    errors: list[BaseException] = []

    def work(expert: User) -> None:
        # "Nothing right now" can be momentary: SKIP LOCKED passes over an item another
        # transaction holds (a claim or a submit of it). A worker gives up after 20 empty
        # answers in a row, as a client polling the API would.
        empty = 0
        try:
            while empty < 20:
                claimed = routing.assignment_claim(expert=expert, project=project)
                if claimed is None:
                    empty += 1
                    time.sleep(0.01)
                    continue
                empty = 0
                routing.assignment_submit(
                    assignment=claimed.assignment,
                    answer={
                        "preference": "a",
                        "answers": {"correctness": [5, 4], "safety": [1, 1]},
                    },
                    rationale="",
                    seconds_spent=1,
                )
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    # 40 threads over 20 experts: two threads per expert compete for that expert's lease too.
    threads = [threading.Thread(target=work, args=(experts[index % 20],)) for index in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    unexpected = [
        error
        for error in errors
        if "not_qualified" not in getattr(error, "default_code", "")
        and "already hold" not in str(error)
    ]
    assert not unexpected, unexpected[:3]
    per_item = Counter(Submission.objects.values_list("item_id", flat=True))
    assert len(per_item) == 200 and set(per_item.values()) == {3}
    pairs = Counter(Submission.objects.values_list("item_id", "expert_id"))
    assert max(pairs.values()) == 1
    assert routing.routing_verify(project=project) == []
    assert ledger_verify().is_clean


def test_onboarding_gold_sits_at_random_positions_never_as_a_block(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    """Issue 17: an expert's first 5 claims were always gold, so a gamer labelled those
    carefully and spammed after. Now 5 gold sit at uniformly random positions among the first
    10 tasks: every position is sometimes gold and sometimes not, and the count is exact."""
    project = open_project(lab, lab_owner, items=30, gold=30, onboarding_gold=5, redundancy=30)
    project.max_active_leases = 50
    project.save()
    gold_ids = {
        str(pid) for pid in Item.objects.filter(is_gold=True).values_list("public_id", flat=True)
    }
    positions = []
    for _ in range(12):
        expert = UserFactory()
        qualify_for_cardiology(expert)
        client = client_for(expert)
        kinds = [claim(client, project).json()["item"]["id"] in gold_ids for _ in range(10)]
        assert sum(kinds) == 5
        positions.append(kinds)
    first_five_all_gold = sum(all(kinds[:5]) for kinds in positions)
    assert first_five_all_gold <= 2  # 1 in 252 by chance per expert
    for position in range(10):
        column = [kinds[position] for kinds in positions]
        assert any(column) or position > 7  # the early positions are not a fixed block
    assert not all(kinds[0] for kinds in positions)


def test_gold_retires_after_its_exposures_and_eval_pairs_are_never_served(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    from projects.models import GoldAnswer

    project = open_project(lab, lab_owner, items=20, gold=2, onboarding_gold=1, redundancy=20)
    project.gold_max_exposures = 2
    project.max_active_leases = 50
    project.save()
    eval_only = Item.objects.create(
        project=project, prompt="eval", responses=["x", "y"], is_gold=True, split="eval"
    )
    GoldAnswer.objects.create(
        item=eval_only, answer={"preference": "a"}, rubric_version=project.rubric_versions.get()
    )
    served = []
    for _ in range(5):
        expert = UserFactory()
        qualify_for_cardiology(expert)
        client = client_for(expert)
        served += [claim(client, project).json()["item"]["id"] for _ in range(2)]
    gold = GoldAnswer.objects.filter(item__project=project, item__split="train")
    assert sorted(gold.values_list("exposures", flat=True)) == [2, 2]
    assert all(answer.retired_at is not None for answer in gold)
    assert str(eval_only.public_id) not in served
