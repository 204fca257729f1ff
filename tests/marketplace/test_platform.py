"""What every app relies on: the error body, health, the OpenAPI schema, settings and Celery."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from marketplace import tasks
from marketplace.celery import app as celery_app
from marketplace.http_errors import flatten_validation_errors

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404() -> None:
    response = APIClient().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_wrong_method_uses_the_error_body(client_for: Any, lab_owner: Any) -> None:
    response = client_for(lab_owner).put("/api/v1/labs/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db
def test_malformed_json_is_a_400_not_a_500(client_for: Any, lab_owner: Any) -> None:
    response = client_for(lab_owner).post(
        "/api/v1/labs/", data=b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_nested_validation_errors_are_flattened_with_paths() -> None:
    from rest_framework.exceptions import ErrorDetail

    detail = {
        "rubric": {"dimensions": [{}, {"key": [ErrorDetail("must be a slug", code="invalid")]}]},
        "non_field_errors": [ErrorDetail("budget too small", code="budget")],
    }
    assert flatten_validation_errors(detail) == [
        {"field": "rubric.dimensions[1].key", "message": "must be a slug", "code": "invalid"},
        {"field": None, "message": "budget too small", "code": "budget"},
    ]


@pytest.mark.django_db
def test_healthz_checks_the_database_and_configured_services() -> None:
    response = APIClient().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    if django_settings.CELERY_BROKER_URL:
        assert body["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_healthz_reports_an_unreachable_broker_as_503(settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = APIClient().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_openapi_schema_generates_without_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    for path in ("/api/v1/labs/", "/api/v1/labs/{lab_id}/api-keys/"):
        assert path in text


@pytest.mark.django_db
def test_schema_and_docs_are_served() -> None:
    client = APIClient()
    assert client.get("/api/v1/schema/").status_code == 200
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    # Swagger UI comes from the installed sidecar package, never from a CDN.
    assert b"cdn" not in docs.content.lower()


@pytest.mark.django_db
def test_database_engine_follows_the_environment() -> None:
    expected = (
        "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    )
    assert connection.vendor == expected


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    clean.pop("DATABASE_URL", None)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "DJANGO_PRODUCTION": "true",
    "DJANGO_SECRET_KEY": "k" * 20 + "-production-secret-with-enough-entropy-0123456789",
    "DJANGO_ALLOWED_HOSTS": "marketplace.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def test_production_mode_passes_the_deploy_check(tmp_path: Path) -> None:
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION, "DJANGO_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_mode_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {**PRODUCTION, "DJANGO_SECRET_KEY": "", "DJANGO_DATA_DIR": str(tmp_path)}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_production_mode_makes_email_verification_mandatory(tmp_path: Path) -> None:
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.ACCOUNT_EMAIL_VERIFICATION)",
        env={**PRODUCTION, "DJANGO_DATA_DIR": str(tmp_path)},
    )
    assert result.stdout.strip().splitlines()[-1] == "mandatory", result.stderr


def test_deploy_check_warns_without_a_shared_cache(tmp_path: Path) -> None:
    env = {**PRODUCTION, "REDIS_URL": "", "DJANGO_DATA_DIR": str(tmp_path)}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "marketplace.W001" in result.stdout + result.stderr


def test_embedded_default_generates_and_keeps_a_secret_key(tmp_path: Path) -> None:
    script = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = _manage("shell", "-c", script, env={"DJANGO_DATA_DIR": str(tmp_path)})
    second = _manage("shell", "-c", script, env={"DJANGO_DATA_DIR": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.strip().splitlines()[-1]) >= 50
    assert first.stdout.splitlines()[-1] == second.stdout.splitlines()[-1]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


SHOW = (
    "from django.conf import settings as s; print(s.DEBUG, s.ALLOWED_HOSTS, "
    "s.ACCOUNT_EMAIL_VERIFICATION, s.WEBHOOK_ALLOW_HTTP, s.SESSION_COOKIE_SECURE)"
)


def test_debug_is_off_unless_asked_for_and_the_development_defaults_stay(tmp_path: Path) -> None:
    result = _manage("shell", "-c", SHOW, env={"DJANGO_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "False ['127.0.0.1', 'localhost', 'testserver'] optional True False"
    )
    asked = _manage(
        "shell", "-c", SHOW, env={"DJANGO_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "true"}
    )
    assert asked.stdout.strip().splitlines()[-1].startswith("True ['127.0.0.1'")


def test_production_mode_refuses_debug(tmp_path: Path) -> None:
    env = {**PRODUCTION, "DJANGO_DEBUG": "true", "DJANGO_DATA_DIR": str(tmp_path)}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_DEBUG=true is refused in production mode" in result.stderr


def test_deploy_check_warns_about_the_development_defaults(tmp_path: Path) -> None:
    env = {**PRODUCTION, "DJANGO_PRODUCTION": "false", "DJANGO_DATA_DIR": str(tmp_path)}
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "marketplace.W003" in result.stdout + result.stderr


def test_beat_schedule_names_registered_tasks() -> None:
    celery_app.loader.import_default_modules()
    for entry in celery_app.conf.beat_schedule.values():
        assert entry["task"] in celery_app.tasks, entry["task"]


@pytest.mark.django_db
def test_expired_sessions_are_cleared_by_the_periodic_task() -> None:
    stale = SessionStore()
    stale.create()
    Session.objects.filter(session_key=stale.session_key).update(
        expire_date=timezone.now() - timedelta(days=1)
    )
    live = SessionStore()
    live.create()
    result = tasks.sessions_clear_expired_task.apply()
    assert result.get() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]
