"""The bad-case loop and rubric evolution API (issue 10)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.permissions import LAB_MANAGE_ROLES, LAB_PIPELINE_ROLES, IsPerson, request_person
from projects import evolution
from projects.api.projects import lab_project
from projects.models import Item
from projects.serializers import DimensionInSerializer, RubricVersionSerializer


class BadCasesView(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="Bad cases grouped by the rubric dimension experts blamed, with their reasons",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        return Response(
            {
                "bad_case_items": Item.objects.filter(
                    project=project, context__bad_case=True
                ).count(),
                "by_dimension": evolution.bad_cases_by_dimension(project=project),
            }
        )


class PromoteDimensionSerializer(serializers.Serializer):
    dimension = DimensionInSerializer()


class PromoteDimensionView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=PromoteDimensionSerializer,
        responses={201: RubricVersionSerializer},
        summary="Promote a recurring failure to a new rubric dimension (a new rubric version)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = PromoteDimensionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        version = evolution.rubric_promote_dimension(
            project=project,
            dimension=dict(payload.validated_data["dimension"]),
            created_by=request_person(request),
        )
        return Response(RubricVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class PromoteGoldSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=500)


class PromoteGoldView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=PromoteGoldSerializer,
        responses={201: OpenApiTypes.OBJECT},
        summary="Turn bad-case items into new gold items: `{items: [{item, gold}]}`",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = PromoteGoldSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        created = evolution.gold_promote_items(
            project=project,
            promotions=payload.validated_data["items"],
            created_by=request_person(request),
        )
        return Response({"created": len(created)}, status=status.HTTP_201_CREATED)


class DimensionTrendsView(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="Per-dimension means by rubric and model version, changes and trade-offs",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        return Response(evolution.dimension_trends(project=project))
