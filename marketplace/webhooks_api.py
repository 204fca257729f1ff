"""Outbound webhook endpoints of a lab: create (secret shown once), list, disable, test, and
the delivery log (owners and managers)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import webhooks
from marketplace.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from marketplace.permissions import LAB_MANAGE_ROLES, IsPerson, lab_for_caller, request_person


class EndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), required=False, default=list
    )


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "event_types", "is_active", "created_at"]


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "message_id",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
            "payload",
        ]


def _endpoint(request: Request, lab_id: int, endpoint_id: int) -> WebhookEndpoint:
    lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_MANAGE_ROLES)
    return get_object_or_404(WebhookEndpoint, pk=endpoint_id, lab=lab)


class WebhookEndpointsView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses=EndpointSerializer(many=True), summary="The lab's webhook endpoints")
    def get(self, request: Request, lab_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_MANAGE_ROLES)
        rows = WebhookEndpoint.objects.filter(lab=lab).order_by("-id")
        return Response(EndpointSerializer(rows, many=True).data)

    @extend_schema(
        request=EndpointCreateSerializer,
        responses={201: EndpointSerializer},
        summary="Add an endpoint (https, public address); the signing secret is shown once",
    )
    def post(self, request: Request, lab_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_MANAGE_ROLES)
        payload = EndpointCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        endpoint = webhooks.webhook_endpoint_create(
            lab=lab,
            url=payload.validated_data["url"],
            event_types=payload.validated_data["event_types"],
            created_by=request_person(request),
        )
        data = EndpointSerializer(endpoint).data
        data["secret"] = endpoint.secret
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses={204: None}, summary="Disable an endpoint (its log stays)")
    def delete(self, request: Request, lab_id: int, endpoint_id: int) -> Response:
        webhooks.webhook_endpoint_disable(endpoint=_endpoint(request, lab_id, endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(request=None, responses=DeliverySerializer, summary="Send a test message now")
    def post(self, request: Request, lab_id: int, endpoint_id: int) -> Response:
        delivery = webhooks.webhook_test(endpoint=_endpoint(request, lab_id, endpoint_id))
        return Response(DeliverySerializer(delivery).data)


class WebhookDeliveriesView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses=DeliverySerializer(many=True), summary="The delivery log (latest 100)")
    def get(self, request: Request, lab_id: int, endpoint_id: int) -> Response:
        endpoint = _endpoint(request, lab_id, endpoint_id)
        rows = endpoint.deliveries.order_by("-id")[:100]
        return Response(DeliverySerializer(rows, many=True).data)
