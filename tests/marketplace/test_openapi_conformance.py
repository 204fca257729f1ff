"""The served OpenAPI schema against the running API (issue 17): schemathesis generates
requests for every operation from `/api/v1/schema/` and sends each, in-process over WSGI, as a
lab owner, an expert and a staff member. Any 5xx, and any answer whose status, content type,
headers or body the schema does not describe, fails the test.

Bounded: a few examples per operation (SCHEMA_FUZZ_EXAMPLES, default 5), valid and invalid
requests mixed, no shrinking, so the whole file stays well under a minute on two cores. Ids
in paths are either generated or, for half of the generated values, the fixtures' real lab
and project, so the role-specific shapes (a project as its lab sees it, as a qualified expert
sees it) are exercised too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from marketplace.models import Lab, User
from projects.models import Project
from tests.conftest import headless_login
from tests.contributors.factories import qualify_for_cardiology
from tests.projects.factories import open_project

EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "5"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _load_schema() -> Any:
    """The schema `/api/v1/schema/` serves, generated the same way (loading it over WSGI at
    collection time would need the database, and the fixture-based loader of this schemathesis
    version does not run under this pytest)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded


SCHEMA = _load_schema()
# These call Stripe (the local server does not run in this test); tests/payouts covers them
# with the local Stripe-compatible server.
EXCLUDED = {"POST /api/v1/projects/{project_id}/fund/", "POST /api/v1/me/payout-account/"}
OPERATIONS = sorted(
    result.ok().label for result in SCHEMA.get_all_operations() if result.ok().label not in EXCLUDED
)


@pytest.fixture
def world(lab_owner: User, lab: Lab, expert: User, staff: User) -> Iterator[dict[str, Any]]:
    from rest_framework.test import APIClient

    project = open_project(lab, lab_owner)
    qualify_for_cardiology(expert)
    tokens = {
        name: headless_login(APIClient(), person.email)
        for name, person in (("lab_owner", lab_owner), ("expert", expert), ("staff", staff))
    }
    # schemathesis calls the WSGI application itself, whose request signals would close the
    # test's database connection inside its transaction; Django's test client disconnects
    # them the same way around each of its requests.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield {"tokens": tokens, "ids": {"lab_id": lab.pk, "project_id": project.pk}}
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _with_known_ids(case: Any, ids: dict[str, int]) -> None:
    for name, known in ids.items():
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = known


@pytest.mark.django_db
@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_conforms_to_the_schema(label: str, world: dict[str, Any]) -> None:
    operation = SCHEMA.find_operation_by_label(label)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )
    )
    def check(case: Any) -> None:
        _with_known_ids(case, world["ids"])
        for token in world["tokens"].values():
            case.call_and_validate(headers={"X-Session-Token": token}, checks=CHECKS)

    check()


def test_the_project_shape_depends_on_the_caller(
    client_for: Any, lab_owner: User, lab: Lab, expert: User
) -> None:
    """The detail and list answers follow the schema's per-role shapes: an expert's view of
    an open project carries the public fields only (no budget, no created_at)."""
    project: Project = open_project(lab, lab_owner)
    qualify_for_cardiology(expert)
    public = client_for(expert).get(f"/api/v1/projects/{project.pk}/").json()
    own = client_for(lab_owner).get(f"/api/v1/projects/{project.pk}/").json()
    assert public["access"] == "public" and own["access"] == "lab"
    assert "created_at" not in public and "budget" not in public
    assert {"created_at", "budget", "rubric"} <= set(own)
    listed = client_for(expert).get("/api/v1/projects/").json()["results"]
    assert [row["access"] for row in listed] == ["public"]


@pytest.mark.django_db
def test_a_bad_page_number_is_400_naming_the_parameter(client_for: Any, staff: User) -> None:
    for page in ("0", "x", "99"):
        response = client_for(staff).get(f"/api/v1/admin/applications/?page={page}")
        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == "page"


@schemathesis.serializer("application/x-ndjson")
def _ndjson(context: Any, value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")


def _responses(method: str, path: str) -> dict[str, Any]:
    return dict(SCHEMA.raw_schema["paths"][path][method.lower()]["responses"])


def test_the_schema_documents_the_error_answers() -> None:
    """Findings of the conformance run: answers the API gave that the schema did not list."""
    error = "#/components/schemas/Error"
    for path, item in SCHEMA.raw_schema["paths"].items():
        for method, operation in item.items():
            body = operation["responses"]["400"]["content"]["application/json"]["schema"]
            assert body == {"$ref": error}, (method, path)
    expected = {
        ("PATCH", "/api/v1/projects/{project_id}/"): {"400", "401", "403", "404", "409", "413"},
        ("POST", "/api/v1/projects/{project_id}/items/import/"): {"409", "413", "415"},
        ("POST", "/api/v1/tasks/next/"): {"403", "404"},
        ("POST", "/api/v1/reviews/next/"): {"404"},
        ("POST", "/api/v1/assignments/{assignment_id}/submit/"): {"409", "410"},
        ("POST", "/api/v1/attempts/{attempt_id}/submit/"): {"409", "410"},
        ("POST", "/api/v1/exams/{exam_id}/attempts/"): {"403", "409", "429"},
        ("POST", "/api/v1/projects/{project_id}/feed/"): {"409", "429"},
        ("POST", "/api/v1/me/quality-stops/{stop_id}/appeal/"): {"409"},
        ("POST", "/api/v1/admin/quality-stops/{stop_id}/decide/"): {"409"},
        ("POST", "/api/v1/projects/{project_id}/fund/"): {"503"},
        ("POST", "/api/v1/me/payout-account/"): {"503"},
        ("POST", "/api/v1/admin/payout-lines/{line_id}/retry/"): {"503"},
    }
    for (method, path), codes in expected.items():
        assert codes <= set(_responses(method, path)), (method, path)
    assert "401" not in _responses("POST", "/api/v1/webhooks/stripe/")  # anyone may call it


def test_the_forfeit_of_held_money_is_not_described_as_a_release() -> None:
    paths = SCHEMA.raw_schema["paths"]
    release = paths["/api/v1/admin/experts/{user_id}/held/release/"]["post"]["summary"]
    forfeit = paths["/api/v1/admin/experts/{user_id}/held/forfeit/"]["post"]["summary"]
    assert release.startswith("Release")
    assert forfeit.startswith("Forfeit")
