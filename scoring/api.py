"""Scoring API: start and read runs; the lab's contributors table; an expert's own scores."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contributors.selectors import pseudonym_from_secret
from marketplace import selectors as marketplace_selectors
from marketplace.models import User
from marketplace.permissions import (
    LAB_MANAGE_ROLES,
    LAB_READ_ROLES,
    IsPerson,
    IsStaff,
    IsStaffWithMfa,
    lab_for_caller,
    request_person,
)
from payouts.selectors import effective_hourly_by_expert
from projects.api import lab_project
from projects.models import Project, QualityStop
from scoring import selectors, services
from scoring.ai import ai_judge_configure
from scoring.models import ContributorScore, ScoringRun
from scoring.services import gate
from scoring.tasks import ai_judge_run_task


class ScoringRunSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id")

    class Meta:
        model = ScoringRun
        fields = [
            "id",
            "project",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "timings",
            "summary",
            "parameters",
            "seed",
            "engine_version",
            "submission_high_water",
            "error",
        ]


def score_row(score: ContributorScore) -> dict[str, Any]:
    """The contributor row (docs/API.md, "Scores"), without the pseudonym: a component with
    no evidence is null."""
    return {
        "n_labels": score.n_labels,
        "gold": score.gold_evidence(),
        "agreement": score.agreement_evidence(),
        "impact": None
        if score.impact_value is None
        else {
            "value": score.impact_value,
            "se": score.impact_se,
            # 95% interval: the permutation sampling and eval-set errors combined.
            "low": score.impact_value - IMPACT_Z * (score.impact_se or 0.0),
            "high": score.impact_value + IMPACT_Z * (score.impact_se or 0.0),
            "per_label": score.impact_per_label,
            "shrunk_per_label": score.impact_shrunk,
            "score": score.impact_score,
        },
        "composite": score.composite,
        "tier": score.tier,
        "dimensions": score.dimensions,
        "reviews": score.reviews,
        "suspended": score.is_suspended,
        "flags": [flag.get("flag") for flag in score.flags],
        "flag_details": score.flags,
        "is_ai": score.is_ai,
        "counts": score.counts,
    }


IMPACT_Z = 1.959963984540054


class ContributorRowSerializer(serializers.Serializer):
    pseudonym = serializers.CharField()
    n_labels = serializers.IntegerField()
    gold = serializers.DictField(allow_null=True, help_text="Beta posterior: mean, low, high, n")
    agreement = serializers.DictField(
        allow_null=True, help_text="rate with its 90% interval (low, high) and n"
    )
    impact = serializers.DictField(
        allow_null=True,
        help_text="Shapley value, se (sampling and eval bootstrap), 95% interval, per label, "
        "shrunk per label, and the 0..1 score the composite uses",
    )
    composite = serializers.FloatField(allow_null=True)
    tier = serializers.CharField()
    dimensions = serializers.DictField(
        help_text="per rubric component: gold and agreement with intervals (and a tier when "
        "the project tiers by dimension)"
    )
    reviews = serializers.DictField(allow_null=True, help_text="review outcomes as evidence")
    suspended = serializers.BooleanField()
    flags = serializers.ListField(child=serializers.CharField())
    flag_details = serializers.ListField(child=serializers.DictField())
    is_ai = serializers.BooleanField()
    counts = serializers.BooleanField(help_text="false for an AI judge whose labels do not count")
    hours = serializers.FloatField(allow_null=True, help_text="active hours (server-measured)")
    effective_hourly = serializers.IntegerField(
        allow_null=True, help_text="released pay and bonus per active hour (minor units)"
    )


class MyScoreSerializer(ContributorRowSerializer):
    pseudonym = None  # type: ignore[assignment]
    hours = None  # type: ignore[assignment]
    effective_hourly = None  # type: ignore[assignment]
    project = serializers.IntegerField()
    project_title = serializers.CharField()
    scoring_run = serializers.IntegerField()
    scored_at = serializers.DateTimeField()


def _staff_or_lab(request: Request, project: Project, roles: frozenset[str]) -> None:
    user = request.user
    if getattr(user, "is_staff", False) and getattr(user, "api_key", None) is None:
        return
    lab_project(request, project.pk, roles)


class ProjectScoringRunsView(APIView):
    @extend_schema(
        request=None,
        responses={202: ScoringRunSerializer},
        summary="Start a scoring run (lab owner or manager, or staff); Celery does the work",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = get_object_or_404(Project, pk=project_id)
        if not IsPerson().has_permission(request, self):
            raise exceptions.PermissionDenied(IsPerson.message)
        try:
            _staff_or_lab(request, project, LAB_MANAGE_ROLES)
        except exceptions.NotFound:
            raise exceptions.NotFound() from None
        run = services.scoring_run_create(project=project, created_by=request_person(request))
        return Response(ScoringRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ScoringRunDetailView(APIView):
    @extend_schema(
        responses=ScoringRunSerializer, summary="A scoring run: status, timings, summary"
    )
    def get(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(ScoringRun.objects.select_related("project"), pk=run_id)
        roles = {*LAB_READ_ROLES, marketplace_selectors.API_KEY_ROLE}
        _staff_or_lab(request, run.project, frozenset(roles))
        return Response(ScoringRunSerializer(run).data)


class ProjectContributorsView(APIView):
    @extend_schema(
        responses=ContributorRowSerializer(many=True),
        summary="Per contributor (pseudonym only): n, gold, agreement, impact +- se, tier",
    )
    def get(self, request: Request, project_id: int) -> Response:
        # Lab API keys read it too, like stats and scoring runs (docs/API.md, "Scores").
        roles = frozenset({*LAB_READ_ROLES, marketplace_selectors.API_KEY_ROLE})
        project = lab_project(request, project_id, roles)
        run = selectors.latest_succeeded_run(project=project)
        pay = effective_hourly_by_expert(project=project)
        rows = [
            {
                "pseudonym": pseudonym_from_secret(score.expert.pseudonym_secret, project.lab_id),
                **score_row(score),
                "hours": pay.get(score.expert_id, {}).get("hours"),
                "effective_hourly": pay.get(score.expert_id, {}).get("hourly"),
            }
            for score in selectors.contributor_rows(run=run)
        ]
        return Response(ContributorRowSerializer(rows, many=True).data)


class MyScoresView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        responses=MyScoreSerializer(many=True),
        summary="Your own scores per project, each with its uncertainty",
    )
    def get(self, request: Request) -> Response:
        rows = [
            {
                "project": score.run.project_id,
                "project_title": score.run.project.title,
                "scoring_run": score.run_id,
                "scored_at": score.run.finished_at,
                **score_row(score),
            }
            for score in selectors.expert_scores(expert=request_person(request))
        ]
        return Response(MyScoreSerializer(rows, many=True).data)


class ReputationSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["skill", "capability"])
    key = serializers.CharField(help_text="the skill key, or the capability's name")
    capability = serializers.IntegerField(
        allow_null=True, help_text="the capability's first version's id (kind capability)"
    )
    projects = serializers.IntegerField()
    n_labels = serializers.IntegerField()
    gold = serializers.DictField(allow_null=True)
    agreement = serializers.DictField(allow_null=True)
    composite = serializers.FloatField(allow_null=True)
    tier = serializers.CharField()


class AdminExpertReputationView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        responses=ReputationSerializer(many=True),
        summary="An expert's reputation per skill and capability over every project (staff)",
    )
    def get(self, request: Request, user_id: int) -> Response:
        expert = get_object_or_404(User, pk=user_id)
        rows = selectors.expert_reputation(expert=expert)
        return Response(ReputationSerializer(rows, many=True).data)


class LabContributorReputationView(APIView):
    @extend_schema(
        responses=ReputationSerializer(many=True),
        summary="A contributor's reputation, by pseudonym: from this lab's projects only, "
        "unless the expert opted in to sharing",
    )
    def get(self, request: Request, lab_id: int, pseudonym: str) -> Response:
        lab_for_caller(request=request, lab_id=lab_id, roles=LAB_READ_ROLES)
        expert = selectors.lab_contributor_by_pseudonym(lab_id=lab_id, pseudonym=pseudonym)
        if expert is None:
            raise exceptions.NotFound()
        rows = selectors.expert_reputation(expert=expert, lab_id=lab_id)
        return Response(ReputationSerializer(rows, many=True).data)


class AiJudgeSerializer(serializers.Serializer):
    judge = serializers.CharField(allow_blank=True, help_text="a name in settings.AI_JUDGES, or ''")
    counts = serializers.BooleanField(
        default=False, help_text="its labels count toward consensus and exports"
    )
    run = serializers.BooleanField(default=True, help_text="label the items now (queued)")

    def validate_judge(self, value: str) -> str:
        if value and value not in settings.AI_JUDGES:
            raise serializers.ValidationError(f"one of {sorted(settings.AI_JUDGES)}")
        return value


class ProjectAiJudgeView(APIView):
    @extend_schema(
        request=AiJudgeSerializer,
        responses={202: AiJudgeSerializer},
        summary="Set the project's AI judge (scored like an expert, never paid) and run it",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = AiJudgeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        ai_judge_configure(project=project, judge=data["judge"], counts=data["counts"])
        if data["run"] and data["judge"]:
            transaction.on_commit(lambda: ai_judge_run_task.delay(project.pk))
        return Response(
            {"judge": data["judge"], "counts": data["counts"], "run": data["run"]},
            status=status.HTTP_202_ACCEPTED,
        )


class QualityStopSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    status = serializers.CharField()
    reason = serializers.CharField()
    evidence = serializers.DictField()
    tasks_done = serializers.IntegerField()
    forfeited = serializers.IntegerField(help_text="pending pay returned to the project")
    created_at = serializers.DateTimeField()
    appeal = serializers.CharField()
    appealed_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)


class QualityStopAppealSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class QualityStopDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["uphold", "reverse"])
    note = serializers.CharField(max_length=5000, allow_blank=True, default="")


class MyQualityStopsView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        responses=QualityStopSerializer(many=True),
        summary="Projects that stopped serving you on quality evidence, with the evidence",
    )
    def get(self, request: Request) -> Response:
        stops = QualityStop.objects.filter(expert=request_person(request)).order_by("-id")
        return Response(QualityStopSerializer(stops, many=True).data)


class MyQualityStopAppealView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=QualityStopAppealSerializer,
        responses=QualityStopSerializer,
        summary="Appeal a quality stop (once); an admin decides",
    )
    def post(self, request: Request, stop_id: int) -> Response:
        person = request_person(request)
        stop = get_object_or_404(QualityStop, pk=stop_id, expert=person)
        payload = QualityStopAppealSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        stop = gate.quality_stop_appeal(
            stop=stop, expert=person, reason=payload.validated_data["reason"]
        )
        return Response(QualityStopSerializer(stop).data)


class AdminQualityStopsView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        responses=QualityStopSerializer(many=True),
        summary="Quality stops (staff), newest first; ?status=appealed for the appeal queue",
    )
    def get(self, request: Request) -> Response:
        stops = QualityStop.objects.order_by("-id")
        wanted = request.query_params.get("status")
        if wanted:
            stops = stops.filter(status=wanted)
        return Response(QualityStopSerializer(stops[:500], many=True).data)


class AdminQualityStopDecideView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=QualityStopDecisionSerializer,
        responses=QualityStopSerializer,
        summary="Decide an appeal (staff with MFA): uphold, or reverse (pay released at x1.0)",
    )
    def post(self, request: Request, stop_id: int) -> Response:
        stop = get_object_or_404(QualityStop, pk=stop_id)
        payload = QualityStopDecisionSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        stop = gate.quality_stop_decide(
            stop=stop,
            decided_by=request_person(request),
            reverse=payload.validated_data["decision"] == "reverse",
            note=payload.validated_data["note"],
        )
        return Response(QualityStopSerializer(stop).data)
