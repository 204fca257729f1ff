"""The Celery app. Tasks live in each app's `tasks.py`; the beat schedule lives here, in code."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

app = Celery("marketplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One place for everything periodic. Each entry names a thin task that calls one service.
app.conf.beat_schedule = {
    "certifications-expiry": {
        "task": "contributors.tasks.certifications_expiry_task",
        "schedule": crontab(hour=6, minute=5),
    },
    "leases-expire": {
        "task": "projects.tasks.leases_expire_task",
        "schedule": 60.0,
    },
    # A safety net: routing is queued after each accepted feed batch (at most once a second
    # per project); this picks up anything a lost task or a restart left pending.
    # Retries are queued with a countdown; this catches deliveries a restart left behind.
    "webhooks-due": {
        "task": "marketplace.tasks.webhook_deliver_due_task",
        "schedule": 60.0,
    },
    "feed-route-pending": {
        "task": "projects.tasks.feed_route_pending_task",
        "schedule": 60.0,
    },
    # Re-label batches whose items have their new labels start their scoring run.
    "relabel-batches-advance": {
        "task": "projects.tasks.relabel_batches_advance_task",
        "schedule": 60.0,
    },
    "scoring-rescore": {
        "task": "scoring.tasks.scoring_rescore_open_projects_task",
        "schedule": crontab(minute="*/10"),
    },
    "ledger-verify": {
        "task": "payouts.tasks.ledger_verify_task",
        "schedule": crontab(hour=4, minute=30),
    },
    "payout-runs-reconcile": {
        "task": "payouts.tasks.payout_runs_reconcile_task",
        "schedule": crontab(minute=15),
    },
    "idempotency-records-purge": {
        "task": "marketplace.tasks.idempotency_records_purge_task",
        "schedule": crontab(hour=3, minute=47),
    },
    # Verified Stripe events that could not be read back from Stripe when they arrived.
    "stripe-events-retry": {
        "task": "payouts.tasks.stripe_events_retry_task",
        "schedule": 300.0,
    },
    "sessions-clear-expired": {
        "task": "marketplace.tasks.sessions_clear_expired_task",
        "schedule": crontab(hour=3, minute=17),
    },
}
