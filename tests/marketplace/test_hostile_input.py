"""Hostile JSON input (issue 17): deep nesting, text and numbers no column can hold, oversized
bodies. Every one answers a 4xx in the error shape and writes nothing, on every backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from rest_framework.test import APIClient

from marketplace import safejson
from marketplace.models import Lab, User
from tests.conftest import HEADLESS

pytestmark = pytest.mark.django_db
Client = Callable[[User], APIClient]

DEEP_ARRAYS = "[" * 100_000 + "]" * 100_000
DEEP_OBJECTS = '{"a":' * 100_000 + "1" + "}" * 100_000


def post_raw(client: APIClient, path: str, body: str | bytes, content_type: str = "") -> Any:
    return client.post(path, body, content_type=content_type or "application/json")


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}, body
    return dict(body["error"])


# --- the validator itself -------------------------------------------------------------------


def test_nesting_is_counted_outside_strings_only() -> None:
    assert not safejson.nesting_exceeds("[" * 64 + "]" * 64)
    assert safejson.nesting_exceeds("[" * 65 + "]" * 65)
    # Brackets in strings, escaped quotes and escaped backslashes do not count.
    inside = json.dumps({"text": "[" * 500 + '\\"' + "{" * 500, "more": "\\"})
    assert not safejson.nesting_exceeds(inside)
    assert safejson.nesting_exceeds(json.dumps({"a": ']]]\\"'}) + "[" * 65)
    # An unterminated string cannot hide brackets from the count.
    assert safejson.nesting_exceeds('"' + "[" * 1000)


def test_values_are_checked_with_every_path_named() -> None:
    value = {
        "ok": ["plain", "emoji \U0001f600", 2**63 - 1, -(2**63), 1e308],
        "nul": "a\x00b",
        "list": [0, {"deep": "\ud800"}],
        "big": 2**63,
        "inf": float("inf"),
        "bad\x00key": 1,
    }
    problems = {problem.field: problem.code for problem in safejson.value_problems(value)}
    assert problems == {
        "nul": "null_character",
        "list[1].deep": "lone_surrogate",
        "big": "number_out_of_range",
        "inf": "number_out_of_range",
        "bad\\u0000key": "null_character",
    }


def test_loads_refuses_escapes_the_database_cannot_store() -> None:
    assert safejson.loads('{"smile": "\\ud83d\\ude00"}') == {"smile": "\U0001f600"}
    assert safejson.loads('"a\\\\u0000"') == "a\\u0000"  # an escaped backslash, not a NUL
    for text, code in [
        ('{"a": "\\u0000"}', "validation_error"),
        ('{"a": "\\udc00"}', "validation_error"),
        ('{"a": 1e400}', "validation_error"),
        ('{"a": ' + "9" * 400 + "}", "validation_error"),
        ('{"a": NaN}', "invalid_json"),
        ("[" * 65 + "]" * 65, "json_too_deep"),
    ]:
        with pytest.raises(safejson.JsonRefused) as refused:
            safejson.loads(text)
        assert refused.value.code == code, text
    with pytest.raises(safejson.JsonRefused) as refused:
        safejson.loads(b'"\xed\xa0\x80"')  # a surrogate encoded in UTF-8 is not UTF-8
    assert refused.value.code == "invalid_encoding"


# --- allauth's headless API -----------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])
@pytest.mark.parametrize("action", ["login", "signup"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_deep_json_to_headless_auth_is_400(
    anonymous: APIClient, body: str, action: str, content_type: str
) -> None:
    response = post_raw(anonymous, f"{HEADLESS}/auth/{action}", body, content_type)
    assert response.status_code == 400
    assert error_of(response)["code"] == "json_too_deep"
    # allauth's own clients read `status` and `errors`.
    assert response.json()["status"] == 400
    assert response.json()["errors"][0]["code"] == "json_too_deep"
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "new@example.org", "password": "fine password \ud800 42"},
        {"email": "new@example.org", "password": "fine password \x00 42"},
        {"email": "new\x00@example.org", "password": "correct horse battery staple"},
    ],
    ids=["surrogate-password", "nul-password", "nul-email"],
)
def test_unstorable_text_in_headless_signup_is_400(
    anonymous: APIClient, fields: dict[str, str]
) -> None:
    response = post_raw(anonymous, f"{HEADLESS}/auth/signup", json.dumps(fields))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [problem["field"] for problem in error["details"]] in (["password"], ["email"])
    assert not User.objects.exists() and not EmailAddress.objects.exists()


def test_encoded_surrogates_are_not_utf8(anonymous: APIClient) -> None:
    body = b'{"email": "a@example.org", "password": "x\xed\xa0\x80yyyyyyyyyyyy"}'
    response = post_raw(anonymous, f"{HEADLESS}/auth/signup", body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_encoding"
    assert not User.objects.exists()


# --- DRF endpoints --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAYS, DEEP_OBJECTS], ids=["arrays", "objects"])
def test_deep_json_to_a_signed_in_endpoint_is_400(
    client_for: Client, lab_owner: User, body: str
) -> None:
    labs_before = Lab.objects.count()
    response = post_raw(client_for(lab_owner), "/api/v1/labs/", body)
    assert response.status_code == 400
    assert error_of(response)["code"] == "json_too_deep"
    assert Lab.objects.count() == labs_before


def test_nesting_up_to_the_limit_reaches_the_endpoint(client_for: Client, lab_owner: User) -> None:
    body = json.dumps({"name": "Nested Lab", "extra": json.loads("[" * 63 + "]" * 63)})
    response = post_raw(client_for(lab_owner), "/api/v1/labs/", body)
    assert response.status_code == 201, response.content


def test_unstorable_values_in_a_drf_body_name_their_fields(
    client_for: Client, lab_owner: User
) -> None:
    body = '{"name": "Lab \\u0000", "extra": {"note": "\\udfff", "size": 1e999}}'
    labs_before = Lab.objects.count()
    response = post_raw(client_for(lab_owner), "/api/v1/labs/", body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert {problem["field"]: problem["code"] for problem in error["details"]} == {
        "name": "null_character",
        "extra.note": "lone_surrogate",
        "extra.size": "number_out_of_range",
    }
    assert Lab.objects.count() == labs_before


def test_a_body_over_the_memory_limit_is_413_in_the_error_shape(
    client_for: Client, lab_owner: User
) -> None:
    body = json.dumps({"name": "x" * (3 * 1024 * 1024)})
    labs_before = Lab.objects.count()
    response = post_raw(client_for(lab_owner), "/api/v1/labs/", body)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"max_bytes": 2621440}
    assert Lab.objects.count() == labs_before


def test_an_oversized_form_body_is_413_in_the_error_shape(
    client_for: Client, lab_owner: User
) -> None:
    body = "name=" + "x" * (3 * 1024 * 1024)
    response = post_raw(
        client_for(lab_owner), "/api/v1/labs/", body, "application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_api_paths_answer_the_json_error_body(
    client_for: Client, lab_owner: User, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    client = client_for(lab_owner)
    for path in ("/api/v1/nothing-here/", "/api/v2/", "/api/v1/labs/1/nothing/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/json"
        assert error_of(response) == {"code": "not_found", "message": "Not found.", "details": None}
    anonymous = APIClient().get("/api/v1/nothing-here/")
    assert anonymous.status_code == 404 and error_of(anonymous)["code"] == "not_found"
    # Every method, paths that do not match a converter, `/api` itself, and a POST missing
    # the trailing slash (which Django's slash redirect answered with a 500 in debug mode).
    for method in ("get", "post", "put", "patch", "delete", "options"):
        for path in (
            "/api",
            "/api/v1/projects/abc/",
            "/api/v1/projects/99999999999999999999999/",
            "/api/v1/relabel-batches/x/trend/",
            "/api/v1/exports/1/download/x",
            "/api/v1/labs" if method not in ("get", "options") else "/api/v1/nothing-here/",
        ):
            response = getattr(client, method)(path)
            assert response.status_code == 404, (method, path, response.status_code)
            assert response["Content-Type"] == "application/json", (method, path)
            assert error_of(response)["code"] == "not_found"
    assert client.post("/api/v1/labs", {"name": "x"}, format="json").json()["error"]["details"] == {
        "path": "/api/v1/labs/"
    }


def test_wrong_methods_on_api_paths_answer_405_in_the_error_shape(
    client_for: Client, lab_owner: User
) -> None:
    response = client_for(lab_owner).delete("/api/v1/labs/")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "POST" in response["Allow"]


def test_nul_in_a_query_parameter_is_400_naming_it(client_for: Client, expert: User) -> None:
    response = client_for(expert).get("/api/v1/skills/?status=pending%00")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert [problem["field"] for problem in error["details"]] == ["status"]


@pytest.mark.parametrize(
    ("path", "header", "value"),
    [
        ("/api/v1/labs/", "HTTP_X_SESSION_TOKEN", "abcdefghij\x00k"),
        ("/api/v1/labs/", "HTTP_AUTHORIZATION", "Bearer mk_abc\x00_secret"),
        (f"{HEADLESS}/auth/session", "HTTP_X_SESSION_TOKEN", "abcdefghij\x00k"),
    ],
    ids=["session-token", "api-key", "headless-session"],
)
def test_nul_in_a_credential_header_is_400(
    anonymous: APIClient, path: str, header: str, value: str
) -> None:
    response = anonymous.get(path, **{header: value})
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_header"


def test_a_multipart_body_without_a_boundary_is_400(client_for: Client, lab_owner: User) -> None:
    from tests.conftest import browser

    body = b'--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nLab\r\n--x--\r\n'
    labs_before = Lab.objects.count()
    response = post_raw(client_for(lab_owner), "/api/v1/labs/", body, "multipart/form-data")
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"
    page = browser(lab_owner).post("/work/next/", body, content_type="multipart/form-data")
    assert page.status_code == 400
    assert Lab.objects.count() == labs_before
