"""Every Celery task's soft time limit is below its hard limit: Celery refuses to run a task
whose soft limit (the settings' default when unset) exceeds its hard one."""

from __future__ import annotations

from django.conf import settings

from marketplace.celery import app


def test_soft_limits_are_below_hard_limits() -> None:
    app.loader.import_default_modules()
    ours = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert len(ours) >= 10
    for task in ours:
        hard = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        soft = task.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT
        assert soft < hard, task.name
