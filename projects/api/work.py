"""Work API (docs/API.md, "Work"): claim the next task, submit, release."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.fields import StrictFloatField, StrictIntegerField
from marketplace.permissions import IsPerson, request_person
from projects import reviews, routing, selectors
from projects.models import Assignment, Review, ReviewStatus
from projects.serializers import RubricVersionSerializer

MAX_RATIONALE = 20_000


class ClaimRequestSerializer(serializers.Serializer):
    project = StrictIntegerField(required=False, min_value=1)


class TaskItemSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    prompt = serializers.CharField()
    responses = serializers.ListField(child=serializers.CharField())
    # A declared field leaves the class (DRF's metaclass): Serializer.context is untouched.
    context = serializers.DictField()  # type: ignore[assignment]


class TaskSerializer(serializers.Serializer):
    """The same shape and fields for every task: nothing says whether it is gold."""

    id = serializers.UUIDField(source="assignment.public_id")
    project = serializers.IntegerField(source="assignment.project_id")
    task_type = serializers.CharField(source="assignment.project.task_type")
    item = TaskItemSerializer(source="assignment.item")
    rubric = RubricVersionSerializer()
    served_at = serializers.DateTimeField(source="assignment.served_at")
    leased_until = serializers.DateTimeField(source="assignment.leased_until")


class SubmitSerializer(serializers.Serializer):
    """An answer (docs/API.md, "Answers"), plus rationale and seconds_spent. The answer's own
    fields are checked against the rubric version the task was served with."""

    preference = serializers.JSONField(required=False)
    ranking = serializers.JSONField(required=False)
    answers = serializers.JSONField(required=False)
    text = serializers.JSONField(required=False)
    rationale = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_RATIONALE, default=""
    )
    seconds_spent = StrictIntegerField(min_value=0, max_value=7 * 24 * 3600)
    pasted_share = StrictFloatField(
        required=False, min_value=0.0, max_value=1.0, allow_null=True, default=None
    )
    blame = serializers.DictField(
        required=False,
        allow_null=True,
        default=None,
        help_text="optional: `{dimension, reason}`, the rubric dimension the response failed",
    )


class SubmittedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.UUIDField(source="assignment.public_id")
    submitted_at = serializers.DateTimeField()


class TaskNextView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=ClaimRequestSerializer,
        responses={
            200: TaskSerializer,
            204: OpenApiResponse(description="nothing available right now"),
            403: OpenApiResponse(
                description="not qualified (skills, certification, suspension, lease cap)"
            ),
        },
        summary="Lease the next task (of a project, or the best fit across your projects)",
    )
    def post(self, request: Request) -> Response:
        payload = ClaimRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        expert = request_person(request)
        project_id = payload.validated_data.get("project")
        if project_id is None:
            claim = routing.assignment_claim_any(expert=expert)
        else:
            project = selectors.project_for_work(project_id=project_id)
            claim = routing.assignment_claim(expert=expert, project=project)
        if claim is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(TaskSerializer(claim).data)


def _own_assignment(request: Request, assignment_id: Any) -> Assignment:
    return get_object_or_404(
        Assignment.objects.select_related("item", "project", "expert"),
        public_id=assignment_id,
        expert=request_person(request),
    )


class AssignmentSubmitView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=SubmitSerializer,
        responses={201: SubmittedSerializer},
        summary="Submit your answer (validated against the rubric version you were served)",
    )
    def post(self, request: Request, assignment_id: Any) -> Response:
        assignment = _own_assignment(request, assignment_id)
        payload = SubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        raw: dict[str, Any] = request.data if isinstance(request.data, dict) else {}
        answer = {
            key: value
            for key, value in raw.items()
            if key not in ("rationale", "seconds_spent", "pasted_share", "blame")
        }
        submission = routing.assignment_submit(
            assignment=assignment,
            answer=answer,
            rationale=data["rationale"],
            seconds_spent=data["seconds_spent"],
            pasted_share=data["pasted_share"],
            blame=data["blame"],
        )
        return Response(SubmittedSerializer(submission).data, status=status.HTTP_201_CREATED)


class AssignmentReleaseView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(request=None, responses={204: None}, summary="Give a task back at once")
    def post(self, request: Request, assignment_id: Any) -> Response:
        routing.assignment_release(assignment=_own_assignment(request, assignment_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReviewRequestSerializer(serializers.Serializer):
    project = StrictIntegerField(min_value=1)


class ReviewTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    item = TaskItemSerializer(source="submission.item")
    rubric = RubricVersionSerializer(source="submission.rubric_version")
    answer = serializers.JSONField(source="submission.answer")
    rationale = serializers.CharField(source="submission.rationale")


class ReviewDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=[ReviewStatus.ACCEPTED, ReviewStatus.REJECTED, ReviewStatus.FIXED]
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    answer = serializers.JSONField(required=False, default=None, help_text="for `fixed`")


class ReviewResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    reason = serializers.CharField()
    note = serializers.CharField()
    decided_at = serializers.DateTimeField()


class ReviewNextView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=ReviewRequestSerializer,
        responses={200: ReviewTaskSerializer, 204: None, 403: None},
        summary="Take the next submission to review (reviewer certification required)",
    )
    def post(self, request: Request) -> Response:
        payload = ReviewRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        project = selectors.project_for_work(project_id=payload.validated_data["project"])
        review = reviews.review_claim(reviewer=request_person(request), project=project)
        if review is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewTaskSerializer(review).data)


class ReviewDecideView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=ReviewDecisionSerializer,
        responses=ReviewResultSerializer,
        summary="Accept, reject (with a reason) or fix a submission you are reviewing",
    )
    def post(self, request: Request, review_id: int) -> Response:
        reviewer = request_person(request)
        review = get_object_or_404(
            Review.objects.select_related(
                "submission__item", "submission__rubric_version", "project"
            ),
            pk=review_id,
            reviewer=reviewer,
        )
        payload = ReviewDecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        review = reviews.review_decide(
            review=review,
            reviewer=reviewer,
            decision=data["decision"],
            reason=data["reason"],
            fixed_answer=data["answer"],
        )
        return Response(ReviewResultSerializer(review).data)
