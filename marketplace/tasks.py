from __future__ import annotations

from celery import shared_task

from marketplace import services


@shared_task(
    name="marketplace.tasks.sessions_clear_expired_task", time_limit=600, soft_time_limit=540
)
def sessions_clear_expired_task() -> int:
    return services.sessions_clear_expired()
