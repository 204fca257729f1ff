"""Reputation that works for the lab: invite a past project's best experts, see how experts
did on a capability. The lab sees pseudonyms and evidence, never who the experts are."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contributors.selectors import expert_pseudonym
from marketplace.fields import StrictIntegerField
from marketplace.permissions import LAB_MANAGE_ROLES, LAB_READ_ROLES, IsPerson, request_person
from projects.api import lab_project
from projects.capabilities import selectors as capability_selectors
from projects.invitations import selectors as invitation_selectors
from projects.models import ProjectInvitation
from scoring import lab_selectors
from scoring.services.invitations import invitations_from_past_project

MAX_INVITATIONS = 100


class InvitationCreateSerializer(serializers.Serializer):
    from_project = StrictIntegerField(min_value=1, help_text="a past project of the same lab")
    top = StrictIntegerField(min_value=1, max_value=MAX_INVITATIONS)


class LabInvitationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    pseudonym = serializers.SerializerMethodField()
    rank = serializers.IntegerField()
    status = serializers.CharField()
    from_project = serializers.IntegerField(source="from_project_id", allow_null=True)
    evidence = serializers.DictField(
        help_text="the past project's scoring run: composite, tier, gold, agreement, labels"
    )
    created_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)

    def get_pseudonym(self, invitation: ProjectInvitation) -> str:
        return expert_pseudonym(expert=invitation.expert, lab_id=self.context["lab_id"])


class ProjectInvitationsView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        responses=LabInvitationSerializer(many=True),
        summary="A project's invitations, best first (pseudonyms and evidence)",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_READ_ROLES)
        rows = invitation_selectors.invitations_of_project(project=project)
        return Response(
            LabInvitationSerializer(rows, many=True, context={"lab_id": project.lab_id}).data
        )

    @extend_schema(
        request=InvitationCreateSerializer,
        responses={201: LabInvitationSerializer(many=True)},
        summary="Invite the n best experts of a past project of the same lab",
        description=(
            "Ranked by the past project's latest scoring run (composite, then gold's lower "
            "bound); suspended, quality-stopped and automatic contributors are left out. An "
            "expert already invited keeps the first invitation. With `priority: reputation` "
            "the accepted invitees get the project's scarce work first."
        ),
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = InvitationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        invitations = invitations_from_past_project(
            project=project,
            from_project_id=payload.validated_data["from_project"],
            top=payload.validated_data["top"],
            invited_by=request_person(request),
        )
        return Response(
            LabInvitationSerializer(
                invitations, many=True, context={"lab_id": project.lab_id}
            ).data,
            status=status.HTTP_201_CREATED,
        )


class PerformanceSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    projects = serializers.IntegerField()
    n_labels = serializers.IntegerField()
    gold = serializers.DictField(allow_null=True)
    agreement = serializers.DictField(allow_null=True)
    composite = serializers.FloatField(allow_null=True)
    tier = serializers.CharField()


class CapabilityPerformanceView(APIView):
    @extend_schema(
        responses=PerformanceSerializer(many=True),
        summary="How experts did on a capability across the projects built on it (its lab)",
    )
    def get(self, request: Request, capability_id: int) -> Response:
        capability = capability_selectors.capability_for_caller(
            caller=request.user, capability_id=capability_id
        )
        if capability is None or not capability_selectors.capability_is_own(
            caller=request.user, capability=capability
        ):
            raise exceptions.NotFound()
        rows: list[dict[str, Any]] = lab_selectors.capability_performance(capability=capability)
        return Response(PerformanceSerializer(rows, many=True).data)
