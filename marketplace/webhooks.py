"""Outbound webhooks for labs (issue 10): Standard Webhooks signing, retries with backoff, a
delivery log and a test button. Other apps emit events through `webhook_emit`; delivery runs
in Celery after the emitting transaction commits, never inside it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from marketplace.errors import DomainError
from marketplace.models import (
    DeliveryStatus,
    Lab,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from marketplace.safe_http import UnsafeTarget, check_target, safe_post

MAX_ENDPOINTS_PER_LAB = 20


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def webhook_endpoint_create(
    *, lab: Lab, url: str, event_types: list[str], created_by: User
) -> WebhookEndpoint:
    unknown = sorted(set(event_types) - set(WebhookEvent.values))
    if unknown:
        raise DomainError(f"Unknown event types: {', '.join(unknown)}.", code="invalid_event_types")
    try:
        check_target(url)
    except UnsafeTarget as error:
        raise DomainError(f"The URL is refused: {error}.", code="unsafe_url") from error
    if WebhookEndpoint.objects.filter(lab=lab, is_active=True).count() >= MAX_ENDPOINTS_PER_LAB:
        raise DomainError("A lab may have at most 20 active endpoints.", code="too_many_endpoints")
    return WebhookEndpoint.objects.create(
        lab=lab, url=url, secret=new_secret(), event_types=event_types, created_by=created_by
    )


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)


def webhook_emit(*, lab_id: int, event_type: str, data: dict[str, Any]) -> int:
    """Record one delivery per interested endpoint and queue them after commit."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(lab_id=lab_id, is_active=True)
        if endpoint.wants(event_type)
    ]
    if not endpoints:
        return 0
    now = timezone.now()
    payload = json.loads(
        json.dumps(
            {"type": event_type, "timestamp": now.isoformat(), "data": data}, cls=DjangoJSONEncoder
        )
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=endpoint,
            message_id=f"msg_{uuid.uuid4().hex}",
            event_type=event_type,
            payload=payload,
            next_attempt_at=now,
        )
        for endpoint in endpoints
    )
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _queue(ids))
    return len(ids)


def _queue(delivery_ids: list[int], countdown: float = 0) -> None:
    # Cycle broken here: tasks.py wraps this module's services.
    from marketplace.tasks import webhook_deliver_task  # noqa: PLC0415

    for delivery_id in delivery_ids:
        webhook_deliver_task.apply_async((delivery_id,), countdown=countdown)


def _attempt(
    endpoint: WebhookEndpoint, message_id: str, payload: dict[str, Any]
) -> tuple[int | None, str]:
    """One POST; returns (status code or None, error text)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "expert-marketplace-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(endpoint.secret, message_id, timestamp, body),
    }
    try:
        reply = safe_post(endpoint.url, body, headers, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)
    except UnsafeTarget as error:
        return None, f"refused: {error}"
    except (OSError, http.client.HTTPException) as error:  # refused, timeout, TLS, bad reply
        return None, f"{type(error).__name__}: {error}"[:500]
    if 200 <= reply.status < 300:
        return reply.status, ""
    return reply.status, f"HTTP {reply.status}"


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery:
    """Attempt a pending delivery once; on failure schedule the next retry or give up.

    The row is claimed by moving `next_attempt_at` forward first, so two workers never send
    the same attempt (a message may still arrive twice after a crash: receivers dedupe on
    `webhook-id`, as the standard says).
    """
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(seconds=settings.WEBHOOK_TIMEOUT_SECONDS * 3))
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if not claimed:
        return delivery
    code, error = _attempt(delivery.endpoint, delivery.message_id, delivery.payload)
    attempts = delivery.attempts + 1
    fields: dict[str, Any] = {"attempts": attempts, "last_status_code": code, "last_error": error}
    retry_in = None
    if not error:
        fields.update(
            status=DeliveryStatus.SUCCEEDED, delivered_at=timezone.now(), next_attempt_at=None
        )
    elif attempts > len(settings.WEBHOOK_RETRY_SCHEDULE) or error.startswith("refused"):
        fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    else:
        retry_in = settings.WEBHOOK_RETRY_SCHEDULE[attempts - 1]
        fields["next_attempt_at"] = timezone.now() + timedelta(seconds=retry_in)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    if retry_in is not None:
        _queue([delivery.pk], countdown=retry_in)
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery.pk)


def webhook_deliver_due() -> int:
    """Beat safety net: attempt every pending delivery whose time has come."""
    due = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
        ).values_list("pk", flat=True)[:500]
    )
    for delivery_id in due:
        webhook_deliver(delivery_id=delivery_id)
    return len(due)


def webhook_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """The test button: a `webhook.test` message sent now, logged like any other."""
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        message_id=f"msg_{uuid.uuid4().hex}",
        event_type=WebhookEvent.WEBHOOK_TEST,
        payload={
            "type": WebhookEvent.WEBHOOK_TEST,
            "timestamp": timezone.now().isoformat(),
            "data": {"lab": endpoint.lab_id, "endpoint": endpoint.pk},
        },
        next_attempt_at=timezone.now(),
    )
    return webhook_deliver(delivery_id=delivery.pk)
