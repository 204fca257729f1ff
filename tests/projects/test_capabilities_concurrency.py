"""Capabilities and shared gold under concurrency, on real PostgreSQL with threads."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from marketplace.models import Lab, User
from projects.capabilities import services
from projects.models import Capability, CapabilityGold, GoldAnswer, Project
from projects.routing import assignment_claim
from tests.contributors.factories import qualify_for_cardiology
from tests.marketplace.factories import UserFactory
from tests.projects.factories import open_project

pytestmark = pytest.mark.django_db(transaction=True)


def _run(targets: list[threading.Thread], errors: list[BaseException]) -> None:
    for thread in targets:
        thread.start()
    for thread in targets:
        thread.join()
    assert not errors, errors[:3]


def test_saving_one_name_at_once_numbers_every_version_once(lab: Lab, lab_owner: User) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    project = open_project(lab, lab_owner, items=1, gold=3)
    errors: list[BaseException] = []

    def save() -> None:
        try:
            services.capability_create(
                lab=lab, name="Prefs", from_project=project, created_by=lab_owner
            )
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    _run([threading.Thread(target=save) for _ in range(6)], errors)
    versions = sorted(Capability.objects.values_list("version", flat=True))
    assert versions == [1, 2, 3, 4, 5, 6]
    # The gold became shared rows once, whatever the order the saves ran in.
    assert CapabilityGold.objects.count() == 3
    assert all(capability.gold.count() == 3 for capability in Capability.objects.all())


def test_claims_in_two_projects_count_every_exposure_of_shared_gold(
    lab: Lab, lab_owner: User
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    project_a = open_project(
        lab, lab_owner, items=30, gold=1, gold_rate=1.0, gold_max_exposures=0, redundancy=3
    )
    capability = services.capability_create(
        lab=lab, name="Prefs", from_project=project_a, created_by=lab_owner
    )
    project_b = services.project_create_from_capability(
        lab=lab, created_by=lab_owner, capability=capability, data={"title": "B"}, given=set()
    )
    from tests.payouts.factories import fund_project
    from tests.projects.factories import make_items

    make_items(project_b, 30)
    fund_project(project_b, 1_000_000)
    Project.objects.filter(pk=project_b.pk).update(status="open")
    project_b.refresh_from_db()
    experts = [UserFactory() for _ in range(8)]
    for expert in experts:
        qualify_for_cardiology(expert)
    errors: list[BaseException] = []

    def claim(expert: User, project: Project) -> None:
        try:
            assignment_claim(expert=expert, project=project)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=claim, args=(expert, project_a if index % 2 else project_b))
        for index, expert in enumerate(experts)
    ]
    _run(threads, errors)
    shared = CapabilityGold.objects.get()
    served = GoldAnswer.objects.filter(shared=shared)
    # Every expert saw the one gold item once, in one of the two projects: eight exposures.
    assert shared.exposures == sum(served.values_list("exposures", flat=True)) == 8
