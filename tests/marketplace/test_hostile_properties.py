"""Property tests (issue 17): whatever JSON a client sends, the answer is a 2xx or a 4xx in the
error shape, never a 5xx, and a refused request writes nothing. Arbitrary JSON values, text
with NUL and lone surrogates, numbers beyond every column, and deep nesting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from marketplace.models import Lab, User
from projects.models import Item, Project, Submission
from tests.conftest import HEADLESS
from tests.contributors.factories import qualify_for_cardiology
from tests.projects.factories import make_project, open_project, pairwise_line

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as a hostile client writes it: any code point, NUL and lone surrogates included.
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=()),
        st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", '"', "\\", "[", "{"]),
    ),
    max_size=20,
)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([2**63, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


def deep(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "[" else '{"a":' * depth + "1" + "}" * depth


DEEP = st.builds(deep, st.integers(min_value=60, max_value=3000), st.sampled_from(["[", "{"]))


def encode(value: Any) -> str:
    # ensure_ascii writes surrogates and NUL as \u escapes, as JSON allows; 1e400 needs text.
    return json.dumps(value).replace("Infinity", "1e400")


def as_lines(values: list[Any]) -> str:
    return "".join(
        (value if isinstance(value, str) and value[:1] in "[{" else encode(value)) + "\n"
        for value in values
    )


ITEM_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "external_id": st.one_of(TEXT, JSON_VALUES),
        "prompt": st.one_of(TEXT, JSON_VALUES),
        "responses": st.one_of(st.lists(TEXT, min_size=2, max_size=2), JSON_VALUES),
        "context": st.one_of(st.dictionaries(TEXT, JSON_VALUES, max_size=3), JSON_VALUES),
        "features": JSON_VALUES,
        "split": st.one_of(st.sampled_from(["train", "eval"]), TEXT),
    },
)
LINES = st.lists(
    st.one_of(
        st.builds(
            lambda index, fields: {**pairwise_line(index), **fields},
            st.integers(0, 10**6),
            ITEM_FIELDS,
        ),
        JSON_VALUES,
        DEEP.map(lambda text: text),
    ),
    min_size=1,
    max_size=5,
)


def assert_error_shape(body: dict[str, Any]) -> None:
    assert set(body["error"]) == {"code", "message", "details"}, body


@pytest.fixture
def import_target(lab: Lab, lab_owner: User, key_client_for: Any, lab_api_key: str) -> Any:
    return make_project(lab, lab_owner), key_client_for(lab_api_key)


@given(lines=LINES)
@SETTINGS
def test_an_import_answers_201_or_400_and_a_400_writes_nothing(
    import_target: tuple[Project, APIClient], lines: list[Any]
) -> None:
    project, client = import_target
    before = Item.objects.filter(project=project).count()
    response = client.generic(
        "POST",
        f"/api/v1/projects/{project.pk}/items/import/",
        as_lines(lines).encode("utf-8", "surrogatepass"),
        content_type="application/x-ndjson",
    )
    assert response.status_code in (201, 400), response.content
    after = Item.objects.filter(project=project).count()
    if response.status_code == 400:
        body = response.json()
        assert_error_shape(body)
        assert after == before
        for row in body["error"]["details"]["errors"]:
            assert 1 <= row["line"] <= len(lines)
    else:
        assert after == before + response.json()["created"] == before + len(lines)


BODIES = st.one_of(JSON_VALUES.map(encode), DEEP)


@given(body=BODIES)
@SETTINGS
def test_signup_never_answers_5xx(anonymous: APIClient, body: str, settings: Any) -> None:
    settings.ACCOUNT_RATE_LIMITS = False
    before = User.objects.count()
    response = anonymous.post(f"{HEADLESS}/auth/signup", body, content_type="application/json")
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert User.objects.count() == before


@pytest.fixture
def claimed(lab: Lab, lab_owner: User, expert: User, client_for: Client) -> tuple[APIClient, str]:
    project = open_project(lab, lab_owner, items=3)
    qualify_for_cardiology(expert)
    client = client_for(expert)
    task = client.post("/api/v1/tasks/next/", {"project": project.pk}, format="json").json()
    return client, str(task["id"])


SUBMITS = st.one_of(
    BODIES,
    st.fixed_dictionaries(
        {"preference": st.sampled_from(["a", "b", "tie"])},
        optional={
            "answers": JSON_VALUES,
            "rationale": st.one_of(TEXT, JSON_VALUES),
            "seconds_spent": st.one_of(NUMBERS, JSON_VALUES),
            "blame": st.one_of(
                st.fixed_dictionaries({"dimension": TEXT, "reason": TEXT}), JSON_VALUES
            ),
        },
    ).map(encode),
)


@given(body=SUBMITS)
@SETTINGS
def test_submit_never_answers_5xx_and_a_refusal_writes_nothing(
    claimed: tuple[APIClient, str], body: str
) -> None:
    client, assignment_id = claimed
    before = Submission.objects.count()
    response = client.post(
        f"/api/v1/assignments/{assignment_id}/submit/", body, content_type="application/json"
    )
    assert response.status_code in (201, 400, 409), response.content
    if response.status_code != 201:
        assert_error_shape(response.json())
        assert Submission.objects.count() == before
