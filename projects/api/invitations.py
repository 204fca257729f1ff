"""An expert's invitations: see them, accept one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.permissions import IsPerson, request_person
from projects.invitations import selectors, services
from projects.models import ProjectInvitation
from projects.serializers import PayOutSerializer


class ExpertInvitationSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id")
    project_title = serializers.CharField(source="project.title")
    lab_name = serializers.CharField(source="project.lab.name")
    task_type = serializers.CharField(source="project.task_type")
    project_status = serializers.CharField(source="project.status")
    pay = serializers.SerializerMethodField()
    from_project_title = serializers.SerializerMethodField()

    class Meta:
        model = ProjectInvitation
        fields = [
            "id",
            "project",
            "project_title",
            "lab_name",
            "task_type",
            "project_status",
            "pay",
            "from_project_title",
            "status",
            "created_at",
            "accepted_at",
        ]

    @extend_schema_field(PayOutSerializer)
    def get_pay(self, invitation: ProjectInvitation) -> dict[str, object]:
        project = invitation.project
        return {
            "unit": project.pay_unit,
            "base_rate": project.base_rate,
            "currency": project.currency,
        }

    def get_from_project_title(self, invitation: ProjectInvitation) -> str | None:
        return invitation.from_project.title if invitation.from_project else None


class MyInvitationsView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        responses=ExpertInvitationSerializer(many=True),
        summary="Your invitations to labs' projects, newest first",
    )
    def get(self, request: Request) -> Response:
        rows = selectors.invitations_of_expert(expert=request_person(request))
        return Response(ExpertInvitationSerializer(rows, many=True).data)


class MyInvitationAcceptView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=None,
        responses=ExpertInvitationSerializer,
        summary="Accept an invitation (accepting again changes nothing)",
    )
    def post(self, request: Request, invitation_id: int) -> Response:
        invitation = services.invitation_accept(
            invitation_id=invitation_id, expert=request_person(request)
        )
        row = selectors.invitations_of_expert(expert=request_person(request)).get(pk=invitation.pk)
        return Response(ExpertInvitationSerializer(row).data)
