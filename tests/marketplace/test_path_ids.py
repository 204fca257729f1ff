"""Integer ids in paths (issue 17): a number no primary key can be is a path that does not
exist (404), never a database error, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter
from rest_framework.test import APIClient

from marketplace.converters import IdConverter
from marketplace.models import User

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]
TOO_BIG = [str(2**63), str(2**64), "9" * 19, "1" + "0" * 30]
API_PATHS = [
    ("get", "/api/v1/labs/{id}/"),
    ("get", "/api/v1/labs/{id}/members/"),
    ("delete", "/api/v1/labs/1/api-keys/{id}/"),
    ("get", "/api/v1/projects/{id}/"),
    ("post", "/api/v1/projects/{id}/publish/"),
    ("post", "/api/v1/assignments/{id}/submit/"),
    ("post", "/api/v1/assignments/{id}/release/"),
    ("get", "/api/v1/scoring-runs/{id}/"),
    ("get", "/api/v1/admin/payout-runs/{id}/"),
    ("post", "/api/v1/exams/{id}/attempts/"),
    ("get", "/api/v1/attempts/{id}/"),
    ("post", "/api/v1/attempts/{id}/submit/"),
    ("post", "/api/v1/admin/applications/{id}/reject/"),
    ("get", "/api/v1/exports/{id}/"),
]


@pytest.mark.parametrize("number", TOO_BIG)
@pytest.mark.parametrize(("method", "template"), API_PATHS)
def test_ids_beyond_64_bits_are_404_in_the_error_shape(
    client_for: Client, staff: User, method: str, template: str, number: str
) -> None:
    response = getattr(client_for(staff), method)(template.format(id=number), {}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("method", "template"), API_PATHS)
def test_the_largest_id_is_an_ordinary_missing_object(
    client_for: Client, staff: User, method: str, template: str
) -> None:
    response = getattr(client_for(staff), method)(template.format(id=2**63 - 1), {}, format="json")
    assert response.status_code in (403, 404), response.content


@pytest.mark.parametrize("path", ["/labs/{id}/", "/projects/{id}/", "/review/{id}/"])
def test_pages_too(client_for: Client, staff: User, path: str) -> None:
    from tests.conftest import browser

    assert browser(staff).get(path.format(id=2**63)).status_code == 404


def _patterns(resolvers: list[URLPattern | URLResolver]) -> Iterator[URLPattern | URLResolver]:
    for entry in resolvers:
        yield entry
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns)


def test_every_integer_path_parameter_is_bounded() -> None:
    converters: list[Any] = [
        converter
        for entry in _patterns(get_resolver().url_patterns)
        for converter in getattr(entry.pattern, "converters", {}).values()
    ]
    assert any(isinstance(converter, IdConverter) for converter in converters)
    assert not [c for c in converters if isinstance(c, IntConverter)]


def test_the_schema_describes_ids_as_int64(client_for: Client, staff: User) -> None:
    schema = client_for(staff).get("/api/v1/schema/?format=json")
    assert schema.status_code == 200
    import yaml

    document = yaml.safe_load(schema.content)
    parameter = next(
        p
        for p in document["paths"]["/api/v1/labs/{lab_id}/"]["get"]["parameters"]
        if p["name"] == "lab_id"
    )
    assert parameter["schema"] == {
        "type": "integer",
        "format": "int64",
        "minimum": 0,
        "maximum": 2**63 - 1,
    }
