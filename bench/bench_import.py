"""Importing 100,000 pairwise items as JSON Lines through the real endpoint (in-process WSGI).

Baseline, run in the same invocation on the same body: the straightforward Django/DRF import
(one DRF serializer per line, then `bulk_create` in batches of 1,000). Label Studio 1.23's figure
on this machine for the same 100k tasks (45 s on PostgreSQL, 27 s on SQLite, about 1 GB peak) is
printed as a recorded reference, not re-run here.
"""

from __future__ import annotations

import json
import resource
import statistics
import time
from multiprocessing import get_context
from typing import Any

from bench.harness import Measurement, print_table

ITEMS = 100_000
REPEATS = 3


def _body(count: int) -> bytes:
    lines = []
    for index in range(count):
        lines.append(
            json.dumps(
                {
                    "external_id": f"q-{index}",
                    "prompt": f"Patient {index} asks: is it safe to combine warfarin and aspirin?",
                    "responses": [
                        f"Answer A {index}: combining them raises bleeding risk; ask your doctor.",
                        f"Answer B {index}: yes, that is always fine, no need to check.",
                    ],
                    "context": {"source": "bench", "n": index},
                    "split": "eval" if index % 10 == 0 else "train",
                }
            )
        )
    return ("\n".join(lines) + "\n").encode()


def _fresh_project() -> tuple[Any, Any]:
    from marketplace import services as lab_services
    from marketplace.models import User
    from projects import services

    user, _ = User.objects.get_or_create(email="bench@example.org")
    lab = lab_services.lab_create(name="bench", created_by=user)
    project = services.project_create(
        lab=lab,
        created_by=user,
        data={"title": "bench", "task_type": "pairwise", "base_rate": 100, "pay_unit": "task"},
    )
    return user, project


def _ours(body: bytes, queue: Any) -> None:
    from allauth.account.models import EmailAddress
    from django.test import Client

    user, project = _fresh_project()
    EmailAddress.objects.get_or_create(user=user, email=user.email, defaults={"verified": True})
    client = Client()
    client.force_login(user)
    started = time.perf_counter()
    response = client.generic(
        "POST",
        f"/api/v1/projects/{project.id}/items/import/",
        body,
        content_type="application/x-ndjson",
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.content[:500]
    queue.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _baseline(body: bytes, queue: Any) -> None:
    from rest_framework import serializers

    from projects.models import Item

    class LineSerializer(serializers.Serializer):
        external_id = serializers.CharField(max_length=255)
        prompt = serializers.CharField()
        responses = serializers.ListField(child=serializers.CharField(), min_length=2, max_length=2)
        context = serializers.DictField(required=False)
        split = serializers.ChoiceField(choices=["train", "eval"], required=False)

    _, project = _fresh_project()
    started = time.perf_counter()
    rows = []
    for raw in body.decode("utf-8").splitlines():
        serializer = LineSerializer(data=json.loads(raw))
        serializer.is_valid(raise_exception=True)
        rows.append(Item(project=project, **serializer.validated_data))
    Item.objects.bulk_create(rows, batch_size=1000)
    elapsed = time.perf_counter() - started
    queue.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _run_isolated(target: Any, body: bytes) -> tuple[float, float]:
    """Each run in a fresh process, so its peak memory is its own."""
    from django.db import connections

    connections.close_all()  # a forked child must open its own database connection
    context = get_context("fork")
    queue = context.Queue()
    process = context.Process(target=target, args=(body, queue))
    process.start()
    result = queue.get(timeout=600)
    process.join()
    return result


def run() -> None:
    from django.db import connection

    database = connection.vendor
    body = _body(ITEMS)
    ours = [_run_isolated(_ours, body) for _ in range(REPEATS)]
    base = [_run_isolated(_baseline, body) for _ in range(REPEATS)]
    ours_time = statistics.median(t for t, _ in ours)
    base_time = statistics.median(t for t, _ in base)
    print_table(
        f"Import {ITEMS:,} pairwise items ({len(body) / 1e6:.0f} MB JSON Lines) on {database}",
        Measurement(
            "DRF serializer per line + bulk_create",
            base_time,
            REPEATS,
            f"peak RSS {max(m for _, m in base):.0f} MB",
        ),
        [
            Measurement(
                "ours: POST items/import/ (streamed, COPY on PostgreSQL)",
                ours_time,
                REPEATS,
                f"peak RSS {max(m for _, m in ours):.0f} MB; target <= 10 s",
            ),
        ],
    )
    print(
        f"Recorded reference (not re-run): Label Studio 1.23 took 45 s on PostgreSQL, 27 s on "
        f"SQLite, ~1 GB peak; ours is {45 / ours_time:.1f}x faster than its PostgreSQL figure."
    )
