"""Projects API: create, read, edit, publish, rubric versions, imports and stats.

Past 400 lines on purpose: the project resource's views in the order of its URL table,
with their schema annotations.
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace import selectors as marketplace_selectors
from marketplace.errors import Conflict, DomainError
from marketplace.http_errors import error_body
from marketplace.idempotency import body_stream, idempotent
from marketplace.models import User
from marketplace.permissions import (
    LAB_MANAGE_ROLES,
    LAB_PIPELINE_ROLES,
    IsPerson,
    request_person,
)
from marketplace.selectors import API_KEY_ROLE
from projects import exports, selectors, services
from projects.api.stats import ProjectStatsSerializer
from projects.capabilities import selectors as capability_selectors
from projects.capabilities import services as capability_services
from projects.export_jobs import export_job_create
from projects.models import ExportJob, Project, ProjectStatus
from projects.serializers import (
    PROJECT_FOR_CALLER,
    PROJECT_ROW_FOR_CALLER,
    ExportQuerySerializer,
    ImportResultSerializer,
    ProjectCreateSerializer,
    ProjectDetailLabSerializer,
    ProjectLabSerializer,
    ProjectPublicSerializer,
    ProjectWriteSerializer,
    RubricInSerializer,
    RubricVersionSerializer,
    TransitionSerializer,
)
from scoring.engine.tiers import TIERS

IMPORT_ROLES = frozenset({*LAB_MANAGE_ROLES, API_KEY_ROLE})
NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/jsonl",
        "application/json-lines",
        "application/x-jsonlines",
    }
)


def lab_project(request: Request, project_id: int, roles: frozenset[str]) -> Project:
    """A project of the caller's lab, with a role in `roles`; 404 outside reach, 403 for role."""
    access = selectors.project_access(caller=request.user, project_id=project_id)
    if access is None or not access.is_lab:
        raise exceptions.NotFound()
    if access.lab_role not in roles:
        raise exceptions.PermissionDenied("Your role in this lab does not allow this action.")
    return access.project


def _filter(projects: list[Project], request: Request) -> list[Project]:
    status_filter = request.query_params.get("status")
    domain = request.query_params.get("domain")
    task_type = request.query_params.get("task_type")
    skill = request.query_params.get("skill")
    result = []
    for project in projects:
        if status_filter and project.status != status_filter:
            continue
        if domain and project.domain != domain:
            continue
        if task_type and project.task_type != task_type:
            continue
        required_keys = [row.skill.key for row in project.required_skills.all()] + [
            row.skill.key for row in project.required_certifications.all()
        ]
        if skill and not any(key == skill or key.startswith(f"{skill}.") for key in required_keys):
            continue
        result.append(project)
    return result


class ProjectListCreateView(GenericAPIView):
    serializer_class = ProjectLabSerializer
    queryset = Project.objects.none()

    @extend_schema(
        summary="Projects: a lab's own (all statuses), and open projects the caller qualifies for",
        parameters=[
            OpenApiParameter("status", str, enum=ProjectStatus.values),
            OpenApiParameter("domain", str),
            OpenApiParameter("task_type", str),
            OpenApiParameter("skill", str, description="a skill key; matches its children too"),
        ],
        responses=PROJECT_ROW_FOR_CALLER,
        description=(
            "Rows of the caller's labs carry every field (`access: lab`); open projects of other "
            "labs that the caller qualifies for as an expert carry the public fields only "
            "(`access: public`: no gold rate, no budget, no redundancy, no timestamps)."
        ),
    )
    def get(self, request: Request) -> Response:
        lab_projects = list(selectors.project_list_for_lab_caller(caller=request.user))
        own_ids = {project.pk for project in lab_projects}
        expert_projects = (
            []
            if getattr(request.user, "api_key", None) is not None
            else [
                project
                for project in selectors.project_list_for_expert(expert=request.user)
                if project.pk not in own_ids
            ]
        )
        rows = _filter(lab_projects + expert_projects, request)
        page = self.paginate_queryset(rows)
        data = [
            ProjectLabSerializer(project).data
            if project.pk in own_ids
            else ProjectPublicSerializer(project).data
            for project in page or []
        ]
        return self.get_paginated_response(data)

    @extend_schema(
        request=ProjectCreateSerializer,
        responses={201: ProjectDetailLabSerializer},
        summary="Create a draft project (lab owner or manager)",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        if not IsPerson().has_permission(request, self):
            self.permission_denied(request, message=IsPerson.message)
        payload = ProjectCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        lab_id = data.pop("lab")
        role = marketplace_selectors.lab_role_for_caller(caller=request.user, lab_id=lab_id)
        if role is None:
            raise serializers.ValidationError({"lab": "no lab with this id among yours"})
        if role not in LAB_MANAGE_ROLES:
            raise exceptions.PermissionDenied("Only lab owners and managers create projects.")
        lab = marketplace_selectors.lab_get(lab_id=lab_id)
        capability_id = data.pop("capability", None)
        if capability_id is None:
            project = services.project_create(
                lab=lab, created_by=request_person(request), data=data
            )
        else:
            capability = capability_selectors.capability_for_caller(
                caller=request.user, capability_id=capability_id
            )
            if capability is None:
                raise serializers.ValidationError(
                    {"capability": "no capability with this id in your library or the catalogue"}
                )
            project = capability_services.project_create_from_capability(
                lab=lab,
                created_by=request_person(request),
                capability=capability,
                data=data,
                given=set(request.data),
            )
        return Response(_detail(project), status=status.HTTP_201_CREATED)


def _detail(project: Project) -> Any:
    project = selectors.project_get(project_id=project.pk)
    rubric = selectors.project_current_rubric(project=project)
    return ProjectDetailLabSerializer(project, context={"rubric": rubric}).data


class ProjectDetailView(APIView):
    @extend_schema(
        responses=PROJECT_FOR_CALLER,
        summary="A project (lab members: everything; qualified experts: the public fields)",
    )
    def get(self, request: Request, project_id: int) -> Response:
        access = selectors.project_access(caller=request.user, project_id=project_id)
        if access is None:
            raise exceptions.NotFound()
        if not access.is_lab:
            return Response(ProjectPublicSerializer(access.project).data)
        return Response(_detail(access.project))

    @extend_schema(
        request=ProjectWriteSerializer(partial=True),
        responses=ProjectDetailLabSerializer,
        summary="Edit a draft project (lab owner or manager)",
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        if not IsPerson().has_permission(request, self):
            raise exceptions.PermissionDenied(IsPerson.message)
        payload = ProjectWriteSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        project = services.project_update(
            project=project, data=dict(payload.validated_data), updated_by=request_person(request)
        )
        return Response(_detail(project))


class ProjectTransitionView(APIView):
    target_status: str = ""
    permission_classes = [IsPerson]

    @extend_schema(
        request=TransitionSerializer,
        responses={200: ProjectDetailLabSerializer},
        summary="Change the project's status (lab owner or manager)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = TransitionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        project = services.project_transition(
            project=project,
            to_status=self.target_status,
            changed_by=request_person(request),
            reason=payload.validated_data["reason"],
        )
        return Response(_detail(project))


class ProjectPublishView(ProjectTransitionView):
    target_status = ProjectStatus.OPEN


class ProjectPauseView(ProjectTransitionView):
    target_status = ProjectStatus.PAUSED


class ProjectCloseView(ProjectTransitionView):
    target_status = ProjectStatus.CLOSED


class RubricVersionsView(APIView):
    @extend_schema(responses=RubricVersionSerializer(many=True), summary="Every rubric version")
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        versions = selectors.rubric_versions(project=project)
        return Response(RubricVersionSerializer(versions, many=True).data)

    @extend_schema(
        request=RubricInSerializer,
        responses={201: RubricVersionSerializer},
        summary="Create a new rubric version (earlier versions stay as they were)",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        if not IsPerson().has_permission(request, self):
            raise exceptions.PermissionDenied(IsPerson.message)
        payload = RubricInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if project.task_type == "rating" and not payload.validated_data.get("dimensions"):
            raise serializers.ValidationError(
                {"dimensions": "a rating project needs at least one dimension"}
            )
        version = services.rubric_version_create(
            project=project, rubric=dict(payload.validated_data), created_by=request_person(request)
        )
        version = selectors.rubric_versions(project=project).get(pk=version.pk)
        return Response(RubricVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class ItemsImportView(APIView):
    is_gold = False
    # The body is read as a stream (never held in memory): `Idempotency-Key` hashes it as the
    # import reads it.
    idempotency_streams_body = True

    @extend_schema(
        request={
            "application/x-ndjson": {
                "type": "string",
                "description": "JSON Lines: one item object per line (docs/API.md, Imports)",
            }
        },
        responses={
            201: ImportResultSerializer,
            400: OpenApiResponse(description="every bad line: line, field, message"),
            413: OpenApiResponse(description="body, line count or line over the limits"),
        },
        summary="Import items as JSON Lines, all or nothing (lab owner, manager, or API key)",
    )
    @idempotent
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, IMPORT_ROLES)
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type not in NDJSON_TYPES:
            raise exceptions.UnsupportedMediaType(
                content_type, detail="Send JSON Lines with Content-Type: application/x-ndjson."
            )
        content_length = request.META.get("CONTENT_LENGTH")
        try:
            length = int(content_length) if content_length else None
        except ValueError:
            length = None
        try:
            created = services.items_import(
                project=project,
                # The raw WSGI body stream, read in chunks (never request.body: 50 MB in memory).
                stream=body_stream(request),
                content_length=length,
                is_gold=self.is_gold,
            )
        except services.ImportFailed as failure:
            details = {
                "errors": [error.as_dict() for error in failure.errors],
                "error_count": failure.error_count,
                "listed": len(failure.errors),
            }
            return Response(
                error_body(failure.code, failure.message, details), status=failure.status_code
            )
        return Response({"created": created}, status=status.HTTP_201_CREATED)


class GoldImportView(ItemsImportView):
    is_gold = True


EXPORT_PARAMETERS = [
    OpenApiParameter("format", str, required=True, enum=["dpo", "rm", "ratings", "sft"]),
    OpenApiParameter("min_confidence", float, description="0..1; drop less certain records"),
    OpenApiParameter(
        "min_tier",
        str,
        enum=list(TIERS),
        description="use only labels of contributors at this tier or better (latest run)",
    ),
    OpenApiParameter("split", str, enum=["train", "eval"]),
]


def _export_context(request: Request, project_id: int) -> exports.ExportContext:
    project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
    # A blank filter (an HTML form's empty choice) means no filter.
    query = ExportQuerySerializer(
        data={key: value for key, value in request.query_params.items() if value != ""}
    )
    query.is_valid(raise_exception=True)
    filters = exports.ExportFilters(**query.validated_data)
    if filters.format not in exports.FORMATS_BY_TASK_TYPE[project.task_type]:
        allowed = sorted(exports.FORMATS_BY_TASK_TYPE[project.task_type])
        raise DomainError(
            f"A {project.task_type} project exports as {', '.join(allowed)}.",
            code="format_not_supported",
        )
    return exports.export_context(project=project, filters=filters)


class ProjectExportView(APIView):
    @extend_schema(
        parameters=EXPORT_PARAMETERS,
        responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY},
        summary="Stream training data as JSON Lines (lab members or API key)",
        description=(
            "`dpo`: {prompt, chosen, rejected, meta}; ranking items expand to every ordered "
            "pair. `rm`: the same pairs with margin and confidence. `ratings`: per item and "
            "dimension the consensus and every raw label with the contributor's lab-stable "
            "pseudonym. `sft`: {prompt, completion, meta} from demonstrations and corrections."
        ),
    )
    def get(self, request: Request, project_id: int) -> StreamingHttpResponse:
        context = _export_context(request, project_id)
        response = StreamingHttpResponse(
            exports.export_lines(context), content_type="application/x-ndjson"
        )
        filename = f"project-{project_id}-{context.filters.format}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ProjectExportManifestView(APIView):
    @extend_schema(
        parameters=EXPORT_PARAMETERS,
        responses=OpenApiTypes.OBJECT,
        summary="What the export with these filters contains, to cite in a training run",
    )
    def get(self, request: Request, project_id: int) -> Response:
        return Response(exports.export_manifest(_export_context(request, project_id)))


class ProjectStatsView(APIView):
    @extend_schema(
        responses=ProjectStatsSerializer,
        summary="Progress, distributions per dimension, budget and cost per accepted label",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        return Response(selectors.project_stats(project=project))


class ExportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    filters = serializers.DictField()
    status = serializers.CharField()
    manifest = serializers.DictField(allow_null=True)
    error = serializers.CharField()
    progress = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "items_total": {"type": "integer", "nullable": True},
                "items_done": {"type": "integer"},
                "share": {"type": "number", "nullable": True},
            },
        }
    )
    def get_progress(self, job: Any) -> dict[str, Any]:
        """Items scanned of the items to scan (null total: the worker has not started)."""
        total = job.items_total
        share = None if total is None else (1.0 if total == 0 else job.items_done / total)
        return {
            "items_total": total,
            "items_done": job.items_done,
            "share": None if share is None else round(share, 4),
        }


class ProjectExportJobsView(APIView):
    @extend_schema(
        request=ExportQuerySerializer,
        responses={202: ExportJobSerializer},
        summary="Write an export to a file in the background; `export.ready` fires when done",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_PIPELINE_ROLES)
        body = request.data if isinstance(request.data, dict) else {}
        query = ExportQuerySerializer(
            data={key: value for key, value in body.items() if value not in ("", None)}
        )
        query.is_valid(raise_exception=True)
        filters = exports.ExportFilters(**query.validated_data)
        if filters.format not in exports.FORMATS_BY_TASK_TYPE[project.task_type]:
            raise DomainError(
                "This format does not fit the task type.", code="format_not_supported"
            )

        person = request.user if isinstance(request.user, User) else None
        job = export_job_create(project=project, filters=filters, created_by=person)
        return Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


def _export_job(request: Request, job_id: int) -> Any:
    job = get_object_or_404(ExportJob, pk=job_id)
    lab_project(request, job.project_id, LAB_PIPELINE_ROLES)  # 404 outside the caller's labs
    return job


class ExportJobDetailView(APIView):
    @extend_schema(responses=ExportJobSerializer, summary="An export job's status and manifest")
    def get(self, request: Request, job_id: int) -> Response:
        return Response(ExportJobSerializer(_export_job(request, job_id)).data)


class ExportJobDownloadView(APIView):
    @extend_schema(
        responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY},
        summary="Download a ready export job's file",
    )
    def get(self, request: Request, job_id: int) -> Any:
        job = _export_job(request, job_id)
        if job.status != "ready":
            raise Conflict(f"The export is {job.status}.", code="export_not_ready")
        response = FileResponse(open(job.path, "rb"), content_type="application/x-ndjson")  # noqa: SIM115
        response["Content-Disposition"] = (
            f'attachment; filename="project-{job.project_id}-export-{job.pk}.jsonl"'
        )
        return response
