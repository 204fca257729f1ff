"""The bad-case loop and rubric evolution API (issue 10)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.permissions import LAB_MANAGE_ROLES, LAB_PIPELINE_ROLES, IsPerson, request_person
from projects import evolution, relabel, relabel_trend
from projects.api.projects import lab_project
from projects.models import Item, RelabelBatch
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


# The shapes of the re-label answers, for the OpenAPI schema (the bodies are built by
# projects.relabel; these serializers only describe them).
class RelabelProgressSerializer(serializers.Serializer):
    labels_needed = serializers.IntegerField()
    labels_done = serializers.IntegerField()
    items = serializers.IntegerField()
    items_done = serializers.IntegerField()
    share = serializers.FloatField()


class RelabelRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)


class RelabelItemSerializer(serializers.Serializer):
    item = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    prompt = serializers.CharField()
    reason = serializers.ChoiceField(choices=["affected", "similar"])
    similarity = serializers.FloatField()
    new_labels = serializers.IntegerField()
    is_open = serializers.BooleanField()


class RelabelBatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField()
    promotion = serializers.ChoiceField(choices=["dimension", "gold"])
    dimension = serializers.CharField(allow_null=True)
    rubric_version = serializers.IntegerField()
    labels_per_item = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["relabelling", "scoring", "done", "scoring_failed"])
    created_at = serializers.DateTimeField()
    relabelled_at = serializers.DateTimeField(allow_null=True)
    progress = RelabelProgressSerializer()
    scoring_run = RelabelRunSerializer(allow_null=True)
    items = RelabelItemSerializer(many=True)


class RelabelBatchListSerializer(serializers.Serializer):
    results = RelabelBatchSerializer(many=True)


class MeanIntervalSerializer(serializers.Serializer):
    mean = serializers.FloatField()
    n = serializers.IntegerField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    method = serializers.ChoiceField(choices=["wilson", "t"])


class DimensionChangeSerializer(serializers.Serializer):
    before = MeanIntervalSerializer(allow_null=True)
    after = MeanIntervalSerializer(allow_null=True)
    change = serializers.FloatField(allow_null=True)


class TrendScopeSerializer(serializers.Serializer):
    labels_before = serializers.IntegerField()
    labels_after = serializers.IntegerField()
    dimensions = serializers.DictField(child=DimensionChangeSerializer())


class RelabelTrendSerializer(serializers.Serializer):
    batch = serializers.IntegerField()
    promotion = serializers.ChoiceField(choices=["dimension", "gold"])
    dimension = serializers.CharField(allow_null=True)
    promoted_at = serializers.DateTimeField()
    rubric_version = serializers.IntegerField()
    relabelled_items = TrendScopeSerializer()
    project = TrendScopeSerializer()


class RequeueFieldsSerializer(serializers.Serializer):
    similar = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=relabel.MAX_SIMILAR,
        help_text="similar items re-queued too (default: as many as the affected items)",
    )
    labels_per_item = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=10,
        help_text="new labels each re-queued item needs (default: the project's redundancy)",
    )


class PromoteDimensionSerializer(RequeueFieldsSerializer):
    dimension = DimensionInSerializer()
    items = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        min_length=1,
        max_length=relabel.MAX_AFFECTED,
        help_text="the bad-case items this is about (default: every bad-case item)",
    )


class PromotedDimensionSerializer(RubricVersionSerializer):
    """The schema of the answer: the new version and the re-label batch it started."""

    relabel_batch = RelabelBatchSerializer(allow_null=True)

    class Meta(RubricVersionSerializer.Meta):
        fields = [*RubricVersionSerializer.Meta.fields, "relabel_batch"]


class PromoteDimensionView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=PromoteDimensionSerializer,
        responses={201: PromotedDimensionSerializer},
        summary="Promote a recurring failure to a new rubric dimension (a new rubric version)",
        description=(
            "The bad-case items (`items`, default all) and `similar` similar labelled items "
            "are re-queued for `labels_per_item` new labels under the new version; the answer "
            "carries the `relabel_batch`. Similarity: cosine of hashed word and character "
            "n-gram features of prompt and responses."
        ),
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = PromoteDimensionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        items = data.get("items")
        version, batch = relabel.bad_case_promote_dimension(
            project=project,
            dimension=dict(data["dimension"]),
            items=None if items is None else [str(item) for item in items],
            similar=data.get("similar"),
            labels_per_item=data.get("labels_per_item"),
            created_by=request_person(request),
        )
        body = dict(RubricVersionSerializer(version).data)
        body["relabel_batch"] = _batch_body(batch)
        return Response(body, status=status.HTTP_201_CREATED)


def _batch_body(batch: RelabelBatch | None) -> dict[str, Any] | None:
    return None if batch is None else relabel.relabel_batch_state(batch=batch)


class PromoteGoldSerializer(RequeueFieldsSerializer):
    items = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=500)


class PromoteGoldView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=PromoteGoldSerializer,
        responses={201: OpenApiTypes.OBJECT},
        summary="Turn bad-case items into new gold items: `{items: [{item, gold}]}`",
        description=(
            "Answers `{created, relabel_batch}`: the source items and similar ones are "
            "re-queued for new labels (see the relabel batch endpoints)."
        ),
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = PromoteGoldSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        created, batch = relabel.bad_case_promote_gold(
            project=project,
            promotions=data["items"],
            similar=data.get("similar"),
            labels_per_item=data.get("labels_per_item"),
            created_by=request_person(request),
        )
        return Response(
            {"created": len(created), "relabel_batch": _batch_body(batch)},
            status=status.HTTP_201_CREATED,
        )


class DimensionTrendsView(APIView):
    @extend_schema(
        responses=OpenApiTypes.OBJECT,
        summary="Per-dimension means by rubric and model version, changes and trade-offs",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        return Response(evolution.dimension_trends(project=project))


def _lab_batch(request: Request, batch_id: int) -> RelabelBatch:
    """A batch of the caller's lab; 404 otherwise (ids do not leak)."""
    batch = (
        RelabelBatch.objects.select_related("project", "rubric_version").filter(pk=batch_id).first()
    )
    if batch is None:
        raise NotFound()
    lab_project(request, batch.project_id, LAB_PIPELINE_ROLES)
    return batch


class RelabelBatchesView(APIView):
    @extend_schema(
        responses=RelabelBatchListSerializer,
        summary="The project's re-label batches (one per promotion), newest first",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        batches = (
            RelabelBatch.objects.filter(project=project)
            .select_related("project", "rubric_version")
            .order_by("-id")[:50]
        )
        return Response({"results": relabel.relabel_batch_states(batches=list(batches))})


class RelabelBatchDetailView(APIView):
    @extend_schema(
        responses=RelabelBatchSerializer,
        summary="A re-label batch: status (relabelling, scoring, done), progress, items, run",
    )
    def get(self, request: Request, batch_id: int) -> Response:
        return Response(relabel.relabel_batch_state(batch=_lab_batch(request, batch_id)))


class RelabelBatchTrendView(APIView):
    @extend_schema(
        responses=RelabelTrendSerializer,
        summary="Each dimension before and after the promotion, with n and 95% intervals",
        description=(
            "Means on a 0..1 scale over the batch's items (labels before the promotion against "
            "the new labels) and over the whole project; Wilson intervals for binary "
            "dimensions, Student's t otherwise; only labels that count (no discounted labels, "
            "no AI-judge labels unless the project counts them)."
        ),
    )
    def get(self, request: Request, batch_id: int) -> Response:
        return Response(relabel_trend.relabel_batch_trend(batch=_lab_batch(request, batch_id)))
