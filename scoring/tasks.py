from __future__ import annotations

from celery import shared_task

from scoring import services


@shared_task(name="scoring.tasks.scoring_run_execute_task", time_limit=3600, soft_time_limit=3500)
def scoring_run_execute_task(run_id: int) -> str:
    return services.scoring_run_execute(run_id=run_id).status


@shared_task(name="scoring.tasks.scoring_rescore_open_projects_task", time_limit=600)
def scoring_rescore_open_projects_task() -> int:
    return services.scoring_rescore_open_projects()
