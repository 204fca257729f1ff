"""A claim's and a submit's database work does not grow with the project (issue 6: an indexed
`SKIP LOCKED ... LIMIT 1`, never a scan), and stays within a fixed number of queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketplace.models import Lab, User
from projects.models import Project
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.factories import make_items, open_project
from tests.projects.test_routing import Client, claim, submit

pytestmark = pytest.mark.django_db


def _cycle_queries(client: Any, project: Project) -> tuple[list[str], list[str]]:
    with CaptureQueriesContext(connection) as claimed:
        task = claim(client, project)
    assert task.status_code == 200, task.content
    with CaptureQueriesContext(connection) as submitted:
        assert submit(client, task.json()).status_code == 201
    return _statements(claimed), _statements(submitted)


def _statements(context: CaptureQueriesContext) -> list[str]:
    # Savepoints stand for BEGIN/COMMIT here (the test runs inside a transaction).
    return [
        query["sql"]
        for query in context.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]


def test_claim_and_submit_cost_the_same_queries_on_a_small_and_a_large_project(
    lab: Lab, lab_owner: User, client_for: Client, settings: Any
) -> None:
    settings.ROUTING_LEASE_SWEEP_SECONDS = 3600  # the sweep is its own query, tested apart
    small = open_project(lab, lab_owner, gold_rate=0.0, onboarding_gold=0)
    large = open_project(lab, lab_owner, gold_rate=0.0, onboarding_gold=0)
    make_items(large, 2000, prefix="bulk")
    counts = []
    for project in (small, large):
        client = _qualified_client(client_for)
        _cycle_queries(client, project)  # the first claim also creates and caches
        claim_sql, submit_sql = _cycle_queries(client, project)
        counts.append((len(claim_sql), len(submit_sql)))
        # Requirements and rubric come from the process's cache, not from the database.
        tables = ('"projects_projectrequiredskill"', '"projects_dimension"')
        assert not [sql for sql in claim_sql if any(table in sql for table in tables)]
        assert not [sql for sql in submit_sql if '"projects_dimension"' in sql]
    assert counts[0] == counts[1]
    claim_count, submit_count = counts[0]
    # Session (2) and user (1) of authentication included; with Redis the session is cached.
    assert claim_count <= 11, claim_count
    assert submit_count <= 18, submit_count


def _qualified_client(client_for: Client) -> Any:
    expert = UserFactory()
    qualify_for_cardiology(expert)
    return client_for(expert)


def test_a_new_rubric_version_reaches_the_next_claim(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    from projects.services import rubric_version_create

    project = open_project(lab, lab_owner, gold_rate=0.0, onboarding_gold=0)
    client = _qualified_client(client_for)
    first = claim(client, project).json()
    rubric = {
        "instructions": "v2",
        "dimensions": [
            {"key": "clarity", "label": "Clarity", "kind": "likert", "min": 1, "max": 5}
        ],
    }
    rubric_version_create(project=project, rubric=rubric, created_by=lab_owner)
    second = claim(client, project).json()
    assert second["rubric"]["version"] == first["rubric"]["version"] + 1
    assert [d["key"] for d in second["rubric"]["dimensions"]] == ["clarity"]
    # The first task is still judged by the version it was served with.
    assert submit(client, first).status_code == 201


def test_expired_leases_are_swept_at_most_once_per_interval_then_by_the_beat(
    lab: Lab, lab_owner: User, client_for: Client, settings: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from projects.models import Assignment
    from projects.tasks import leases_expire_task

    settings.ROUTING_LEASE_SWEEP_SECONDS = 3600
    project = open_project(lab, lab_owner, items=1, redundancy=1, gold_rate=0.0, onboarding_gold=0)
    first, second = _qualified_client(client_for), _qualified_client(client_for)
    assert claim(first, project).status_code == 200
    Assignment.objects.update(leased_until=timezone.now() - timedelta(seconds=1))
    # Swept a moment ago by the first claim: the expired lease still holds the only slot.
    assert claim(second, project).status_code == 204
    leases_expire_task()
    assert claim(second, project).status_code == 200


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="commit durability is PostgreSQL's (CI runs it)"
)
def test_a_claim_commits_without_a_wal_flush_and_a_submit_with_one(
    lab: Lab, lab_owner: User, client_for: Client
) -> None:
    project = open_project(lab, lab_owner, gold_rate=0.0, onboarding_gold=0)
    claim_sql, submit_sql = _cycle_queries(_qualified_client(client_for), project)
    relaxed = "SET LOCAL synchronous_commit TO OFF"
    assert relaxed in claim_sql
    assert relaxed not in submit_sql
