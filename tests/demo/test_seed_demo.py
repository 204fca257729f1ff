"""`seed_demo` makes the demo browsable: accounts, the lab owner in the simulated lab, desk MFA."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command

from marketplace import services
from marketplace.models import Membership, User
from tests.marketplace.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_seed_demo_joins_the_simulated_lab_and_sets_up_desk_mfa() -> None:
    sim_owner = UserFactory(email="sim-lab-1@demo.local")
    from allauth.account.models import EmailAddress

    simulated = services.lab_create(name="Simulated Cardiology Lab 1", created_by=sim_owner)
    UserFactory(email="sim-careful-1-1@demo.local")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)  # idempotent
    owner = User.objects.get(email="lab@demo.local")
    assert EmailAddress.objects.filter(user=owner, verified=True).exists()
    assert Membership.objects.get(lab=simulated, user=owner).role == "manager"
    staff = User.objects.get(email="admin@demo.local")
    assert Authenticator.objects.filter(user=staff, type="totp").count() == 1
    text = out.getvalue()
    assert "sim-careful-1-1@demo.local" in text and "authenticator app" in text


def test_demo_emails_follow_the_site_address_and_go_to_files_not_the_terminal(
    settings: Any, tmp_path: Path, django_capture_on_commit_callbacks: Any, capsys: Any
) -> None:
    settings.SITE_URL = "http://127.0.0.1:8431"
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "emails")
    services.lab_create(name="Simulated Cardiology Lab 1", created_by=UserFactory())
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)
    written = "".join(path.read_text() for path in (tmp_path / "emails").iterdir())
    assert "Sign in at http://127.0.0.1:8431/ with this address" in written
    assert "127.0.0.1:8000" not in written
    assert "Sign in at" not in out.getvalue() + capsys.readouterr().out


def test_make_demo_passes_host_port_and_the_email_directory_to_every_step() -> None:
    root = Path(__file__).resolve().parents[2]
    plan = subprocess.run(
        ["make", "-n", "demo", "HOST=127.0.0.1", "PORT=8431"],  # noqa: S607
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    steps = [line for line in plan.splitlines() if "manage.py" in line and "migrate" not in line]
    assert [step for step in steps if "simulate" in step or "seed_demo" in step]
    for step in steps:
        if "simulate" in step or "seed_demo" in step:
            assert "SITE_URL=http://127.0.0.1:8431" in step
            assert "EMAIL_FILE_PATH=demo-output/emails" in step
    assert "export SITE_URL=http://127.0.0.1:8431 EMAIL_FILE_PATH=demo-output/emails;" in plan


def test_email_file_path_selects_the_file_backend() -> None:
    root = Path(__file__).resolve().parents[2]
    code = (
        "import django; django.setup(); "
        "from django.conf import settings as s; print(s.EMAIL_BACKEND)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "marketplace.settings"}
    env.pop("EMAIL_URL", None)
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**env, "EMAIL_FILE_PATH": "demo-output/emails"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert chosen == "django.core.mail.backends.filebased.EmailBackend"
