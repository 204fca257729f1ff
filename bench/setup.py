"""Database for benchmarks: PostgreSQL when reachable (the production setting), else SQLite."""

from __future__ import annotations

import os
import shutil
import subprocess

BENCH_DATABASE = "marketplace_bench"


def choose_database() -> str:
    """Point DATABASE_URL at a dedicated benchmark database before Django loads settings."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    psql = shutil.which("psql")
    if psql:
        probe = subprocess.run(
            [
                psql,
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-tAc",
                f"SELECT 1 FROM pg_database WHERE datname='{BENCH_DATABASE}'",  # noqa: S608
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            if probe.stdout.strip() != "1":
                subprocess.run(
                    [
                        psql,
                        "-h",
                        "127.0.0.1",
                        "-U",
                        "postgres",
                        "-c",
                        f"CREATE DATABASE {BENCH_DATABASE}",
                    ],
                    capture_output=True,
                    check=True,
                )
            os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{BENCH_DATABASE}"
            return os.environ["DATABASE_URL"]
    return "sqlite (embedded default)"


def django_ready() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
