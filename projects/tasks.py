from __future__ import annotations

from celery import shared_task

from projects import routing


@shared_task(name="projects.tasks.leases_expire_task", time_limit=300)
def leases_expire_task() -> int:
    return routing.leases_expire()
