"""Export jobs: the same export as the streaming endpoint, written to a file by a worker with
its manifest, then announced with the `export.ready` webhook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketplace.models import User
from marketplace.webhooks import webhook_emit
from projects import exports
from projects.models import ExportJob, ExportJobStatus, Project


def export_directory() -> Path:
    directory = Path(settings.EXPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def export_job_create(
    *, project: Project, filters: exports.ExportFilters, created_by: User | None
) -> ExportJob:
    job = ExportJob.objects.create(
        project=project, filters=filters.as_dict(), created_by=created_by
    )
    transaction.on_commit(lambda: _queue(job.pk))
    return job


def _queue(job_id: int) -> None:
    # Cycle broken here: tasks.py wraps this module's services.
    from projects.tasks import export_job_run_task  # noqa: PLC0415

    export_job_run_task.delay(job_id)


def export_job_run(*, job_id: int) -> ExportJob:
    job = ExportJob.objects.select_related("project").get(pk=job_id)
    if job.status != ExportJobStatus.QUEUED:
        return job
    filters = exports.ExportFilters(**job.filters)
    path = export_directory() / f"project-{job.project_id}-export-{job.pk}.jsonl"
    try:
        context = exports.export_context(project=job.project, filters=filters)
        total = exports.export_item_count(context)
        ExportJob.objects.filter(pk=job.pk).update(items_total=total, items_done=0)

        def progress(done: int) -> None:
            # Autocommit, outside any transaction: a page polling the job sees it move.
            ExportJob.objects.filter(pk=job.pk).update(items_done=min(done, total))

        with path.open("wb") as sink:
            manifest = exports.export_manifest(context, sink=sink, progress=progress)
    except Exception as error:
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJobStatus.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    with transaction.atomic():
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJobStatus.READY,
            items_done=total,
            manifest=manifest,
            path=str(path),
            finished_at=timezone.now(),
        )

        data: dict[str, Any] = {
            "project": job.project_id,
            "export_job": job.pk,
            "download_url": f"{settings.SITE_URL}/api/v1/exports/{job.pk}/download/",
            "manifest": manifest,
        }
        webhook_emit(lab_id=job.project.lab_id, event_type="export.ready", data=data)
    return ExportJob.objects.get(pk=job.pk)
