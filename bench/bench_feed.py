"""The live feed under load: gunicorn (4 workers) on PostgreSQL with Redis as the broker.

Two load processes of 8 threads each POST for BENCH_FEED_SECONDS (default 20) with keep-alive
connections, first one event per request (latency: p50/p95), then batches of 100 events
(throughput). Routing is measured separately: the queued events routed in-process, events/s.
Targets (issue 10): p95 <= 20 ms per request, >= 1,000 events/s. The baseline row is the
target itself (there is no open feed endpoint to run against).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import uuid
from multiprocessing import get_context
from typing import Any

from bench.harness import Measurement, print_table
from bench.server import percentile, start_gunicorn

SECONDS = float(os.environ.get("BENCH_FEED_SECONDS", "20"))
THREADS = 8
PROCESSES = 2


def _event(index: str) -> dict[str, Any]:
    return {
        "external_id": index,
        "prompt": "Can I stop my statin if I feel fine?",
        "responses": ["Please ask your cardiologist first.", "Yes, stop any time."],
        "model_confidence": 0.55 if hash(index) % 2 else 0.95,
        "model_version": "bench",
    }


def _load(port: int, project_id: int, key: str, batch: int, threads: int, queue: Any) -> None:
    latencies: list[float] = []
    events = [0]
    failures = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + SECONDS

    def run() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while time.perf_counter() < deadline:
            prefix = uuid.uuid4().hex
            lines = [_event(f"{prefix}-{i}") for i in range(batch)]
            body = json.dumps(lines[0] if batch == 1 else {"events": lines})
            started = time.perf_counter()
            connection.request("POST", f"/api/v1/projects/{project_id}/feed/", body, headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                if response.status == 202:
                    latencies.append(elapsed)
                    events[0] += batch
                else:
                    failures[0] += 1

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put((latencies, events[0], failures[0]))


def _setup() -> tuple[int, str]:
    from marketplace import services as lab_services
    from marketplace.models import User
    from projects import services

    token = int(time.time())
    owner = User.objects.create(email=f"feed-owner-{token}@example.org")
    lab = lab_services.lab_create(name=f"feed bench {token}", created_by=owner)
    project = services.project_create(
        lab=lab,
        created_by=owner,
        data={"title": "feed bench", "task_type": "pairwise", "base_rate": 100, "redundancy": 3},
    )
    _, raw_key = lab_services.api_key_create(lab=lab, name="bench", created_by=owner)
    return project.pk, raw_key


def _round(
    port: int, project_id: int, key: str, batch: int, processes: int, threads: int
) -> tuple[list[float], int, int]:
    context = get_context("fork")
    queue = context.Queue()
    workers = [
        context.Process(target=_load, args=(port, project_id, key, batch, threads, queue))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=SECONDS + 120) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = [value for result, _, _ in outcomes for value in result]
    return latencies, sum(o[1] for o in outcomes), sum(o[2] for o in outcomes)


def run() -> None:
    from django.conf import settings
    from django.db import connections

    from projects.feed import feed_route
    from projects.models import FeedEvent

    if not settings.IS_POSTGRESQL:
        print("\n## Live feed under load: skipped (needs PostgreSQL; set DATABASE_URL)")
        return
    project_id, key = _setup()
    connections.close_all()
    # Routing is queued to Redis and not run (no worker here), so the request path is measured
    # alone; the backlog limit is lifted for the run.
    server, port = start_gunicorn(
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
        REDIS_URL="redis://127.0.0.1:6379/0",
        FEED_MAX_BACKLOG="100000000",
    )
    rows = []
    try:
        rounds = [
            ("one event per request, one client (light load)", 1, 1, 1),
            (
                f"one event per request, {PROCESSES * THREADS} clients (saturated)",
                1,
                PROCESSES,
                THREADS,
            ),
            (f"batches of 100, {PROCESSES * THREADS} clients", 100, PROCESSES, THREADS),
        ]
        for name, batch, processes, threads in rounds:
            latencies, events, failures = _round(port, project_id, key, batch, processes, threads)
            rows.append(
                Measurement(
                    name,
                    percentile(latencies, 0.5),
                    len(latencies),
                    f"p95 {percentile(latencies, 0.95) * 1000:.1f} ms, "
                    f"{events / SECONDS:,.0f} events/s, {failures} non-202",
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    pending = FeedEvent.objects.filter(project_id=project_id, decision="pending").count()
    started = time.perf_counter()
    routed = feed_route(project_id=project_id)
    elapsed = time.perf_counter() - started
    rows.append(
        Measurement(
            "routing the queued events (in-process, per event)",
            elapsed / max(routed, 1),
            1,
            f"{routed:,} of {pending:,} events, {routed / elapsed:,.0f} events/s",
        )
    )
    print_table(
        "Live feed (gunicorn x4, PostgreSQL, Redis broker; median request time)",
        Measurement("target (issue 10): p95 20 ms", 0.020, 1, "and >= 1,000 events/s; a target"),
        rows,
    )
