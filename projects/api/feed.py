"""Live feed API (docs/API.md, "Live signal"; issue 10)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.http_errors import error_body
from marketplace.permissions import LAB_MANAGE_ROLES, LAB_PIPELINE_ROLES
from projects import calibration, feed
from projects.api.projects import IMPORT_ROLES, lab_project


class FeedSettingsSerializer(serializers.Serializer):
    gray_zone = serializers.ListField(
        child=serializers.FloatField(min_value=0.0, max_value=1.0), min_length=2, max_length=2
    )
    audit_rate = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.0)
    correction_project = serializers.IntegerField(required=False, allow_null=True, default=None)


class ProjectFeedView(APIView):
    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={
            202: OpenApiResponse(description="`{accepted, duplicates}`; routing is queued"),
            400: OpenApiResponse(description="every bad event: index, field, message"),
            429: OpenApiResponse(description="the feed is behind; `Retry-After` says when"),
        },
        summary="Send production model outputs: one event, or `{events: [...]}` (up to 1,000)",
        description=(
            "An event: `prompt`, `response` or `responses`, `model_confidence` in [0, 1], "
            "optional `external_id` (idempotency key), `model_version`, `user_feedback` "
            "(`{rating: up|down, comment}`), `schema` (a JSON Schema the response must meet) "
            "and `context`. Confidence inside the project's gray zone queues an item for "
            "experts; outside it the event is auto-accepted (a sampled share is audited); a "
            "thumbs-down always becomes a bad-case item; a response failing its schema becomes "
            "a correction item. The batch is validated all or nothing."
        ),
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, IMPORT_ROLES)
        body: Any = request.data
        events = body.get("events") if isinstance(body, dict) and "events" in body else [body]
        if not isinstance(events, list):
            events = [events]
        try:
            receipt = feed.feed_accept(project=project, events=events)
        except feed.FeedOverloaded as overloaded:
            retry = str(overloaded.details["retry_after"])
            return Response(
                error_body("feed_overloaded", overloaded.message, overloaded.details),
                status=status.HTTP_429_TOO_MANY_REQUESTS,
                headers={"Retry-After": retry},
            )
        return Response(
            {"accepted": receipt.accepted, "duplicates": receipt.duplicates},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="How the feed's events were routed (counts per decision) and the latest events",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        latest = feed.feed_events_for(project=project, decisions=list(feed.FeedDecision.values))[
            :50
        ]
        return Response(
            {
                "decisions": feed.feed_summary(project=project),
                "gray_zone": [project.feed_gray_low, project.feed_gray_high],
                "audit_rate": project.feed_audit_rate,
                "latest": [
                    {
                        "id": event.pk,
                        "external_id": event.external_id,
                        "decision": event.decision,
                        "reason": event.reason,
                        "item": str(event.item.public_id) if event.item_id and event.item else None,
                        "received_at": event.received_at,
                    }
                    for event in latest.select_related("item")
                ],
            }
        )

    @extend_schema(
        request=FeedSettingsSerializer,
        responses=OpenApiTypes.OBJECT,
        summary="Set the routing rules: gray zone, audit rate, correction project (any status)",
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = FeedSettingsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        correction = None
        if data["correction_project"] is not None:
            correction = lab_project(request, data["correction_project"], LAB_MANAGE_ROLES)
        project = feed.feed_configure(
            project=project,
            gray_low=data["gray_zone"][0],
            gray_high=data["gray_zone"][1],
            audit_rate=data["audit_rate"],
            correction_project=correction,
        )
        return Response(
            {
                "gray_zone": [project.feed_gray_low, project.feed_gray_high],
                "audit_rate": project.feed_audit_rate,
                "correction_project": project.feed_correction_project_id,
            }
        )


class RateSerializer(serializers.Serializer):
    rate = serializers.FloatField()
    n = serializers.IntegerField()
    count = serializers.IntegerField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    method = serializers.ChoiceField(choices=["wilson"])


class SidesSerializer(serializers.Serializer):
    below = RateSerializer(allow_null=True)
    above = RateSerializer(allow_null=True)


class RecommendationSerializer(serializers.Serializer):
    gray_zone = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
    changed = serializers.BooleanField()
    error_rate = RateSerializer()
    auto_accepted_share = serializers.FloatField()


class CalibrationSerializer(serializers.Serializer):
    """The shape of the calibration answer, for the OpenAPI schema (projects.calibration)."""

    target_error_rate = serializers.FloatField()
    gray_zone = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
    audit_rate = serializers.FloatField()
    auto_accepted = serializers.IntegerField()
    audited = serializers.IntegerField()
    judged = serializers.IntegerField()
    pending = serializers.IntegerField()
    error_rate = RateSerializer(allow_null=True)
    by_side = SidesSerializer()
    holds_target = serializers.BooleanField(allow_null=True)
    recommendation = RecommendationSerializer(allow_null=True)
    minimum_audited_for_target = serializers.IntegerField()
    verdict_rule = serializers.CharField()


class FeedTargetSerializer(serializers.Serializer):
    target_error_rate = serializers.FloatField(min_value=0.0001, max_value=0.9999)


class FeedCalibrationView(APIView):
    @extend_schema(
        responses=CalibrationSerializer,
        summary="Gray-zone calibration: the audited error rate of auto-accepted events and the "
        "gray zone that holds it under the target",
        description=(
            "`error_rate` is `{rate, n, count, low, high, method}` (95% Wilson) over the judged "
            "audit sample, also `by_side` (below / above the gray zone); `holds_target` is whether "
            "its upper bound is at most `target_error_rate`; `recommendation` is the gray zone "
            "(only ever wider) whose auto-accepted audits stay under the target at 95% "
            "confidence, auto-accepting the most (null when none does); "
            "`minimum_audited_for_target` is how many error-free audits that needs at least."
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        return Response(calibration.feed_calibration(project=project))

    @extend_schema(
        request=FeedTargetSerializer,
        responses=CalibrationSerializer,
        summary="Set the target error rate of auto-accepted events (0..1, exclusive)",
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = FeedTargetSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        project = calibration.feed_target_set(
            project=project, target_error_rate=payload.validated_data["target_error_rate"]
        )
        return Response(calibration.feed_calibration(project=project))
