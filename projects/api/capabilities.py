"""Capabilities API: save a project as a capability, list the library and the catalogue,
publish."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import selectors as marketplace_selectors
from marketplace.fields import StrictIntegerField
from marketplace.permissions import LAB_MANAGE_ROLES, IsPerson, request_person
from projects import selectors as project_selectors
from projects.capabilities import selectors, services
from projects.models import Capability


class CapabilityCreateSerializer(serializers.Serializer):
    lab = StrictIntegerField(min_value=1)
    name = serializers.CharField(max_length=200)
    from_project = StrictIntegerField(min_value=1)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class CapabilityExamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    skill = serializers.CharField(source="skill.key")


class CapabilitySerializer(serializers.ModelSerializer):
    """A capability as its lab and the catalogue read it: never a gold answer; another lab's
    capability shows no source project (an id of someone else's project)."""

    lab_name = serializers.CharField(source="lab.name")
    rubric = serializers.SerializerMethodField()
    exams = CapabilityExamSerializer(many=True)
    certification_exam = CapabilityExamSerializer(
        allow_null=True,
        help_text="published: the capability's own exam; a pass qualifies for every lab's "
        "project built on it",
    )
    gold_items = serializers.IntegerField(help_text="shared gold items (answers never shown)")
    project_count = serializers.IntegerField(help_text="projects built on this version")
    is_own = serializers.SerializerMethodField()
    source_project = serializers.SerializerMethodField()

    class Meta:
        model = Capability
        fields = [
            "id",
            "name",
            "version",
            "lab",
            "lab_name",
            "description",
            "is_own",
            "source_project",
            "task_type",
            "instructions",
            "rubric",
            "rubric_versions",
            "pay",
            "terms",
            "required_skills",
            "required_certifications",
            "exams",
            "gold_items",
            "project_count",
            "certification_exam",
            "is_published",
            "published_at",
            "created_at",
        ]

    @extend_schema_field({"type": "object", "nullable": True})
    def get_rubric(self, capability: Capability) -> dict[str, Any] | None:
        versions = capability.rubric_versions or []
        return versions[-1] if versions else None

    def get_is_own(self, capability: Capability) -> bool:
        return capability.lab_id in self.context.get("own_lab_ids", set())

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_source_project(self, capability: Capability) -> int | None:
        return capability.source_project_id if self.get_is_own(capability) else None


def _context(request: Request) -> dict[str, Any]:
    return {"own_lab_ids": set(selectors.caller_lab_ids(caller=request.user))}


def _capability(request: Request, capability_id: int) -> Capability:
    capability = selectors.capability_for_caller(caller=request.user, capability_id=capability_id)
    if capability is None:
        raise exceptions.NotFound()
    return capability


class CapabilityListCreateView(GenericAPIView):
    serializer_class = CapabilitySerializer
    queryset = Capability.objects.none()

    @extend_schema(
        summary="The capability library: your labs' capabilities and the published catalogue",
        responses=CapabilitySerializer(many=True),
        parameters=[
            OpenApiParameter(
                "scope", str, enum=["all", "own", "catalogue"], description="default all"
            )
        ],
    )
    def get(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "all")
        if scope not in {"all", "own", "catalogue"}:
            raise serializers.ValidationError({"scope": "one of all, own, catalogue"})
        rows = selectors.capability_list_for_caller(caller=request.user, scope=scope)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            CapabilitySerializer(page, many=True, context=_context(request)).data
        )

    @extend_schema(
        request=CapabilityCreateSerializer,
        responses={201: CapabilitySerializer},
        summary="Save a project's rubric, terms, exam and gold as a named, versioned capability",
        description=(
            "The same name again in the same lab saves the next version. Lab owners and "
            "managers; `from_project` must be a project of `lab` with a rubric."
        ),
    )
    def post(self, request: Request) -> Response:
        if not IsPerson().has_permission(request, self):
            self.permission_denied(request, message=IsPerson.message)
        payload = CapabilityCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        role = marketplace_selectors.lab_role_for_caller(caller=request.user, lab_id=data["lab"])
        if role is None:
            raise serializers.ValidationError({"lab": "no lab with this id among yours"})
        if role not in LAB_MANAGE_ROLES:
            raise exceptions.PermissionDenied("Only lab owners and managers save capabilities.")
        access = project_selectors.project_access(
            caller=request.user, project_id=data["from_project"]
        )
        if access is None or not access.is_lab or access.project.lab_id != data["lab"]:
            raise serializers.ValidationError(
                {"from_project": "no project with this id in this lab"}
            )
        capability = services.capability_create(
            lab=marketplace_selectors.lab_get(lab_id=data["lab"]),
            name=data["name"],
            from_project=access.project,
            created_by=request_person(request),
            description=data["description"],
        )
        return Response(
            CapabilitySerializer(
                _capability(request, capability.pk), context=_context(request)
            ).data,
            status=status.HTTP_201_CREATED,
        )


class CapabilityDetailView(APIView):
    @extend_schema(responses=CapabilitySerializer, summary="A capability (own or published)")
    def get(self, request: Request, capability_id: int) -> Response:
        capability = _capability(request, capability_id)
        return Response(CapabilitySerializer(capability, context=_context(request)).data)


class CapabilityPublishView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=None,
        responses=CapabilitySerializer,
        summary="Publish a capability to the catalogue (its gold answers stay with the lab)",
    )
    def post(self, request: Request, capability_id: int) -> Response:
        capability = _capability(request, capability_id)
        role = marketplace_selectors.lab_role_for_caller(
            caller=request.user, lab_id=capability.lab_id
        )
        if role is None:
            raise exceptions.NotFound()
        if role not in LAB_MANAGE_ROLES:
            raise exceptions.PermissionDenied("Only lab owners and managers publish.")
        services.capability_publish(capability=capability)
        return Response(
            CapabilitySerializer(
                _capability(request, capability_id), context=_context(request)
            ).data
        )
