"""Server time of the labeling page on a 100,000-item project (PostgreSQL when reachable).

Issue 8's budget: a labeling page renders in under 100 ms of server time with 100k items in the
project. Measured in-process with Django's test client (no network, no browser), the median of
the GET of a freshly claimed task page and of the work index; the baseline row is the budget
itself (a target, not a measurement).
"""

from __future__ import annotations

import statistics
import time

from bench.harness import Measurement, print_table

SAMPLES = 30


def run() -> None:
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import SESSION_KEY
    from django.test import Client
    from django.test.utils import override_settings

    from bench.bench_routing import _setup
    from marketplace.models import User
    from projects import routing
    from projects.models import Project

    project_id, tokens = _setup()
    project = Project.objects.get(pk=project_id)
    page_times, index_times = [], []
    with override_settings(ALLOWED_HOSTS=["testserver"], DEBUG=False):
        for sample in range(SAMPLES):
            token = tokens[sample % len(tokens)]
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = token
            # The token's own session says whose it is (earlier runs left look-alike emails).
            session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=token)
            user = User.objects.get(pk=session[SESSION_KEY])
            claim = routing.assignment_claim(expert=user, project=project)
            assert claim is not None
            url = f"/work/tasks/{claim.assignment.public_id}/"
            started = time.perf_counter()
            response = client.get(url)
            page_times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
            started = time.perf_counter()
            assert client.get("/work/").status_code == 200
            index_times.append(time.perf_counter() - started)
            routing.assignment_release(assignment=claim.assignment)
    items = project.items.count()
    print_table(
        f"Labeling page server time ({items} items, {SAMPLES} samples)",
        Measurement("budget (issue 8): 100 ms", 0.100, 1, "target, not a measurement"),
        [
            Measurement(
                "GET /work/tasks/<id>/ (pairwise, 2 dimensions)",
                statistics.median(page_times),
                SAMPLES,
                f"p95 {sorted(page_times)[int(SAMPLES * 0.95) - 1] * 1000:.1f} ms",
            ),
            Measurement(
                "GET /work/ (projects open to the expert)", statistics.median(index_times), SAMPLES
            ),
        ],
    )
