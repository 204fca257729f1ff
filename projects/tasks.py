from __future__ import annotations

from celery import shared_task

from projects import routing
from projects.export_jobs import export_job_run
from projects.feed import feed_route, feed_route_all_pending
from projects.relabel import relabel_batches_advance_all


@shared_task(name="projects.tasks.leases_expire_task", time_limit=300, soft_time_limit=240)
def leases_expire_task() -> int:
    return routing.leases_expire()


@shared_task(name="projects.tasks.feed_route_task", time_limit=600, soft_time_limit=540)
def feed_route_task(project_id: int) -> int:
    return feed_route(project_id=project_id)


@shared_task(name="projects.tasks.feed_route_pending_task", time_limit=900, soft_time_limit=840)
def feed_route_pending_task() -> int:
    return feed_route_all_pending()


@shared_task(name="projects.tasks.export_job_run_task", time_limit=3600, soft_time_limit=3500)
def export_job_run_task(job_id: int) -> str:
    return export_job_run(job_id=job_id).status


@shared_task(
    name="projects.tasks.relabel_batches_advance_task", time_limit=600, soft_time_limit=540
)
def relabel_batches_advance_task() -> int:
    return relabel_batches_advance_all()
