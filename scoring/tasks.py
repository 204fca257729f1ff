from __future__ import annotations

from celery import shared_task

from projects.models import Project
from scoring import services
from scoring.ai import ai_judge_run
from scoring.services.gate import quality_stop_discount


@shared_task(
    name="scoring.tasks.scoring_run_execute_task",
    time_limit=3600,
    soft_time_limit=3500,
)
def scoring_run_execute_task(run_id: int) -> str:
    return services.scoring_run_execute(run_id=run_id).status


@shared_task(
    name="scoring.tasks.scoring_rescore_open_projects_task", time_limit=600, soft_time_limit=540
)
def scoring_rescore_open_projects_task() -> int:
    return services.scoring_rescore_open_projects()


@shared_task(
    name="scoring.tasks.shapley_batch_task",
    time_limit=3600,
    soft_time_limit=3500,
)
def shapley_batch_task(run_id: int, seed: int, pairs: int) -> dict[str, object]:
    return services.shapley_batch(run_id=run_id, seed=seed, pairs=pairs)


@shared_task(
    name="scoring.tasks.scoring_run_merge_task",
    time_limit=3600,
    soft_time_limit=3500,
)
def scoring_run_merge_task(batches: list[dict[str, object]], run_id: int) -> str:
    return services.scoring_run_merge(run_id=run_id, batches=batches).status


@shared_task(name="scoring.tasks.ai_judge_run_task", time_limit=3600, soft_time_limit=3500)
def ai_judge_run_task(project_id: int) -> dict[str, int]:
    report = ai_judge_run(project=Project.objects.get(pk=project_id))
    return {"labeled": report.labeled, "invalid": report.invalid}


@shared_task(name="scoring.tasks.quality_stop_discount_task", time_limit=600, soft_time_limit=540)
def quality_stop_discount_task(stop_id: int) -> int:
    return quality_stop_discount(stop_id=stop_id)
