"""The lab's outbound webhooks page (owners and managers, as the API): endpoints with their
event filter, the signing secret shown once at creation, disable, the test button and each
endpoint's delivery log. Same services as `marketplace/webhooks_api.py`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from marketplace import webhooks
from marketplace.models import DeliveryStatus, WebhookEndpoint, WebhookEvent
from marketplace.pages.common import REFUSALS, flash_errors, lab_for_page, page_user
from marketplace.permissions import LAB_MANAGE_ROLES

DELIVERIES_SHOWN = 100
# The test button's event is sent by the button only; an endpoint cannot subscribe to it.
SUBSCRIBABLE = [(value, label) for value, label in WebhookEvent.choices if value != "webhook.test"]


@login_required
def webhooks_page(request: HttpRequest, lab_id: int) -> HttpResponse:
    lab, _ = lab_for_page(request, lab_id, LAB_MANAGE_ROLES)
    created = None
    if request.method == "POST":
        chosen = request.POST.getlist("event_types")
        known = {value for value, _ in SUBSCRIBABLE}
        if any(value not in known for value in chosen):
            messages.error(request, "Choose event types from the list.")
            return redirect("console-webhooks", lab_id=lab.pk)
        try:
            created = webhooks.webhook_endpoint_create(
                lab=lab,
                url=request.POST.get("url", "").strip(),
                event_types=chosen,
                created_by=page_user(request),
            )
        except REFUSALS as error:
            flash_errors(request, error)
            return redirect("console-webhooks", lab_id=lab.pk)
    return render(
        request,
        "marketplace/webhooks.html",
        {
            "lab": lab,
            "endpoints": WebhookEndpoint.objects.filter(lab=lab).order_by("-id"),
            "events": SUBSCRIBABLE,
            # Rendered on the creating POST's own answer, never stored in the session.
            "created": created,
        },
    )


def _endpoint(request: HttpRequest, lab_id: int, endpoint_id: int) -> WebhookEndpoint:
    lab, _ = lab_for_page(request, lab_id, LAB_MANAGE_ROLES)
    return get_object_or_404(WebhookEndpoint, pk=endpoint_id, lab=lab)


@login_required
def webhook_endpoint_page(request: HttpRequest, lab_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, lab_id, endpoint_id)
    return render(
        request,
        "marketplace/webhook_endpoint.html",
        {
            "lab": endpoint.lab,
            "endpoint": endpoint,
            "deliveries": endpoint.deliveries.order_by("-id")[:DELIVERIES_SHOWN],
        },
    )


@login_required
@require_POST
def webhook_test_page(request: HttpRequest, lab_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, lab_id, endpoint_id)
    try:
        delivery = webhooks.webhook_test(endpoint=endpoint)
    except REFUSALS as error:
        flash_errors(request, error)
    else:
        if delivery.status == DeliveryStatus.SUCCEEDED:
            messages.success(request, f"Test message delivered (HTTP {delivery.last_status_code}).")
        else:
            reason = delivery.last_error or f"HTTP {delivery.last_status_code}"
            later = " It is retried later." if delivery.status == DeliveryStatus.PENDING else ""
            messages.error(request, f"The test message was not delivered: {reason}.{later}")
    return redirect("console-webhook", lab_id=endpoint.lab_id, endpoint_id=endpoint.pk)


@login_required
@require_POST
def webhook_disable_page(request: HttpRequest, lab_id: int, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(request, lab_id, endpoint_id)
    webhooks.webhook_endpoint_disable(endpoint=endpoint)
    messages.success(request, "Endpoint disabled; its log stays.")
    return redirect("console-webhooks", lab_id=endpoint.lab_id)
