from __future__ import annotations

from celery import shared_task

from contributors import services


@shared_task(
    name="contributors.tasks.certifications_expiry_task", time_limit=600, soft_time_limit=540
)
def certifications_expiry_task() -> dict[str, int]:
    report = services.certifications_process_expiry()
    return {"reminded": report.reminded, "expired": report.expired}
