"""Experts API: skills, profile, applications, exams, certifications, and the admin side."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contributors import selectors, services
from contributors.exams import public_question
from contributors.models import (
    Application,
    ApplicationStatus,
    Certification,
    Exam,
    ExamAttempt,
    Skill,
)
from contributors.serializers import (
    AdminApplicationSerializer,
    AdminCertificationCreateSerializer,
    ApplicationCreateSerializer,
    ApplicationSerializer,
    AttemptResultSerializer,
    AttemptSerializer,
    AttemptSubmitSerializer,
    CertificationSerializer,
    DecisionSerializer,
    ExamSerializer,
    ExpertStatusSerializer,
    ProfileSerializer,
    ProfileUpdateSerializer,
    RejectionSerializer,
    SkillSerializer,
    SuspensionSerializer,
)
from marketplace.models import User
from marketplace.permissions import IsPerson, IsStaff, IsStaffWithMfa, request_person
from projects import selectors as project_selectors


class SkillListView(APIView):
    @extend_schema(responses=SkillSerializer(many=True), summary="The skill taxonomy")
    def get(self, request: Request) -> Response:
        skills = Skill.objects.select_related("parent").order_by("key")
        return Response(SkillSerializer(skills, many=True).data)


class MyProfileView(APIView):
    permission_classes = [IsPerson]

    def _render(self, user: User) -> Response:
        return Response(ProfileSerializer(selectors.expert_profile(expert=user)).data)

    @extend_schema(responses=ProfileSerializer, summary="Your expert profile")
    def get(self, request: Request) -> Response:
        person = request_person(request)
        services.profile_get_or_create(user=person)
        return self._render(person)

    @extend_schema(
        request=ProfileUpdateSerializer,
        responses=ProfileSerializer,
        summary="Edit your profile (allow-listed fields only; others are refused)",
    )
    def patch(self, request: Request) -> Response:
        payload = ProfileUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        person = request_person(request)
        services.profile_update(user=person, data=dict(payload.validated_data))
        return self._render(person)


class ApplicationListCreateView(GenericAPIView):
    permission_classes = [IsPerson]
    serializer_class = ApplicationSerializer
    queryset = Application.objects.none()

    @extend_schema(responses=ApplicationSerializer(many=True), summary="Your applications")
    def get(self, request: Request) -> Response:
        rows = selectors.applications_of(expert=request_person(request))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ApplicationSerializer(page, many=True).data)

    @extend_schema(
        request=ApplicationCreateSerializer,
        responses={201: ApplicationSerializer},
        summary="Apply for a skill (optionally for a project)",
    )
    def post(self, request: Request) -> Response:
        payload = ApplicationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        person = request_person(request)
        project = None
        if data.get("project") is not None:
            # As for claiming: an open project, else 404 (qualified or not: that is the point).
            project = project_selectors.project_for_work(project_id=data["project"])
        application = services.application_create(
            user=person,
            skill=data["skill"],
            level=data["level"],
            statement=data["statement"],
            links=data["links"],
            project=project,
        )
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)


class ExamListView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        responses=ExamSerializer(many=True),
        summary="Published exams, with your attempts used, left and the next allowed start",
    )
    def get(self, request: Request) -> Response:
        rows = selectors.exams_for(expert=request_person(request))
        return Response(ExamSerializer(rows, many=True).data)


def _attempt_body(attempt: ExamAttempt) -> dict[str, Any]:
    questions = {q.id: q for q in attempt.exam.questions.filter(id__in=attempt.question_ids)}
    return {
        "id": attempt.id,
        "exam": attempt.exam_id,
        "started_at": attempt.started_at,
        "deadline": attempt.deadline,
        "submitted_at": attempt.submitted_at,
        "questions": [
            public_question(questions[question_id])
            for question_id in attempt.question_ids
            if question_id in questions
        ],
    }


class ExamAttemptStartView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=None,
        responses={201: AttemptSerializer},
        summary="Start a timed attempt: a random sample of questions (no answers) and a deadline",
    )
    def post(self, request: Request, exam_id: int) -> Response:
        exam = get_object_or_404(Exam, pk=exam_id, is_published=True)
        attempt = services.exam_attempt_start(exam=exam, user=request_person(request))
        return Response(
            AttemptSerializer(_attempt_body(attempt)).data, status=status.HTTP_201_CREATED
        )


def _own_attempt(request: Request, attempt_id: int) -> ExamAttempt:
    return get_object_or_404(
        ExamAttempt.objects.select_related("exam"), pk=attempt_id, user=request_person(request)
    )


class ExamAttemptDetailView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses=AttemptSerializer, summary="One of your attempts (to resume it)")
    def get(self, request: Request, attempt_id: int) -> Response:
        return Response(AttemptSerializer(_attempt_body(_own_attempt(request, attempt_id))).data)


class ExamAttemptSubmitView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=AttemptSubmitSerializer,
        responses=AttemptResultSerializer,
        summary="Submit answers: the score, pass or fail, and (if the exam allows) what was wrong",
    )
    def post(self, request: Request, attempt_id: int) -> Response:
        attempt = _own_attempt(request, attempt_id)
        payload = AttemptSubmitSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        attempt = services.exam_attempt_submit(
            attempt=attempt, answers=dict(payload.validated_data["answers"])
        )
        certification = (
            Certification.objects.filter(exam_attempt=attempt).select_related("skill").first()
        )
        body = {
            "id": attempt.id,
            "score": attempt.score,
            "passed": attempt.has_passed,
            "wrong_questions": attempt.wrong_question_ids if attempt.exam.allows_feedback else None,
            "certification": certification,
            "pending_review": bool(attempt.has_passed and not attempt.exam.auto_certify),
        }
        return Response(AttemptResultSerializer(body, context={"now": timezone.now()}).data)


class MyCertificationsView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(responses=CertificationSerializer(many=True), summary="Your certifications")
    def get(self, request: Request) -> Response:
        rows = selectors.certifications_of(expert=request_person(request))
        return Response(
            CertificationSerializer(rows, many=True, context={"now": timezone.now()}).data
        )


class AdminApplicationListView(GenericAPIView):
    permission_classes = [IsStaff]
    serializer_class = AdminApplicationSerializer
    queryset = Application.objects.none()

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=ApplicationStatus.values)],
        responses=AdminApplicationSerializer(many=True),
        summary="The vetting queue (oldest first)",
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in ApplicationStatus.values:
            raise exceptions.ValidationError({"status": f"one of {ApplicationStatus.values}"})
        page = self.paginate_queryset(selectors.application_queue(status=wanted))
        return self.get_paginated_response(AdminApplicationSerializer(page, many=True).data)


class AdminApplicationApproveView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=DecisionSerializer,
        responses=AdminApplicationSerializer,
        summary="Approve: verifies the skill level; `certify` also issues a certification",
    )
    def post(self, request: Request, application_id: int) -> Response:
        application = get_object_or_404(Application, pk=application_id)
        payload = DecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        application = services.application_decide(
            application=application,
            decided_by=request_person(request),
            approve=True,
            reason=payload.validated_data["reason"],
            certify=payload.validated_data["certify"],
        )
        return Response(AdminApplicationSerializer(application).data)


class AdminApplicationRejectView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=RejectionSerializer,
        responses=AdminApplicationSerializer,
        summary="Reject with a reason (the expert is emailed)",
    )
    def post(self, request: Request, application_id: int) -> Response:
        application = get_object_or_404(Application, pk=application_id)
        payload = RejectionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        application = services.application_decide(
            application=application,
            decided_by=request_person(request),
            approve=False,
            reason=payload.validated_data["reason"],
        )
        return Response(AdminApplicationSerializer(application).data)


class AdminCertificationCreateView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=AdminCertificationCreateSerializer,
        responses={201: CertificationSerializer},
        summary="Certify an expert by hand",
    )
    def post(self, request: Request) -> Response:
        payload = AdminCertificationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        expert = User.objects.filter(pk=data["user"]).first()
        if expert is None:
            raise exceptions.ValidationError({"user": "no such user"})
        certification = services.certification_issue(
            user=expert,
            skill=data["skill"],
            level=data["level"],
            issued_by=request_person(request),
            days=data["days"],
            role=data["role"],
        )
        return Response(
            CertificationSerializer(certification, context={"now": timezone.now()}).data,
            status=status.HTTP_201_CREATED,
        )


class AdminCertificationRevokeView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=RejectionSerializer,
        responses=CertificationSerializer,
        summary="Revoke a certification with a reason (effective at the next claim)",
    )
    def post(self, request: Request, certification_id: int) -> Response:
        certification = get_object_or_404(
            Certification.objects.select_related("skill", "user"), pk=certification_id
        )
        payload = RejectionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        certification = services.certification_revoke(
            certification=certification,
            revoked_by=request_person(request),
            reason=payload.validated_data["reason"],
        )
        return Response(
            CertificationSerializer(certification, context={"now": timezone.now()}).data
        )


def _expert_status(user: User) -> dict[str, Any]:
    profile = selectors.expert_profile(expert=user)
    return {
        "id": user.pk,
        "email": user.email,
        "is_suspended": profile.is_suspended,
        "suspended_at": profile.suspended_at,
        "suspension_reason": profile.suspension_reason,
    }


class AdminExpertSuspendView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=SuspensionSerializer,
        responses=ExpertStatusSerializer,
        summary="Suspend an expert: no more tasks from the next claim on",
    )
    def post(self, request: Request, user_id: int) -> Response:
        expert = get_object_or_404(User, pk=user_id)
        payload = SuspensionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.expert_suspend(
            user=expert,
            reason=payload.validated_data["reason"],
            suspended_by=request_person(request),
        )
        return Response(ExpertStatusSerializer(_expert_status(expert)).data)


class AdminExpertReinstateView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=SuspensionSerializer,
        responses=ExpertStatusSerializer,
        summary="Lift a suspension",
    )
    def post(self, request: Request, user_id: int) -> Response:
        expert = get_object_or_404(User, pk=user_id)
        payload = SuspensionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.expert_reinstate(
            user=expert,
            reinstated_by=request_person(request),
            reason=payload.validated_data["reason"],
        )
        return Response(ExpertStatusSerializer(_expert_status(expert)).data)
