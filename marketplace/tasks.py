from __future__ import annotations

from celery import shared_task

from marketplace import services
from marketplace.idempotency import idempotency_records_purge
from marketplace.webhooks import webhook_deliver, webhook_deliver_due


@shared_task(
    name="marketplace.tasks.sessions_clear_expired_task", time_limit=600, soft_time_limit=540
)
def sessions_clear_expired_task() -> int:
    return services.sessions_clear_expired()


@shared_task(name="marketplace.tasks.webhook_deliver_task", time_limit=120, soft_time_limit=100)
def webhook_deliver_task(delivery_id: int) -> str:
    return webhook_deliver(delivery_id=delivery_id).status


@shared_task(name="marketplace.tasks.webhook_deliver_due_task", time_limit=900, soft_time_limit=840)
def webhook_deliver_due_task() -> int:
    return webhook_deliver_due()


@shared_task(
    name="marketplace.tasks.idempotency_records_purge_task", time_limit=600, soft_time_limit=540
)
def idempotency_records_purge_task() -> int:
    return idempotency_records_purge()
