"""Start the site under gunicorn for load benchmarks, and small helpers for their numbers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def start_gunicorn(workers: int = 4, **environment: str) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn on a free port with production settings; returns once it accepts connections."""
    from django.conf import settings

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        # Sessions and keys made by the benchmark process must verify in the server.
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_CONN_MAX_AGE": "60",
        "OPENBLAS_NUM_THREADS": "1",
        **environment,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "marketplace.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    return server, port
