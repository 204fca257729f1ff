"""Money API: funding, the Stripe webhook, payout accounts, earnings and payout runs."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.errors import Conflict
from marketplace.fields import CurrencyField, MoneyAmountField
from marketplace.idempotency import idempotent
from marketplace.models import User
from marketplace.permissions import (
    LAB_MANAGE_ROLES,
    IsPerson,
    IsStaff,
    IsStaffWithMfa,
    request_person,
)
from payouts import selectors as payout_selectors
from payouts import tasks
from payouts.models import PayoutLine, PayoutRun
from payouts.services import accounts, funding, holds, payout_runs, webhooks
from projects.api import lab_project


class FundSerializer(serializers.Serializer):
    amount = MoneyAmountField(help_text="minor units, in the project's currency")


class CheckoutSerializer(serializers.Serializer):
    funding_id = serializers.IntegerField()
    checkout_url = serializers.URLField()


class ProjectFundView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=FundSerializer,
        responses={201: CheckoutSerializer},
        summary="Open a Stripe Checkout for an amount; escrow grows only when Stripe confirms",
    )
    @idempotent
    def post(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_MANAGE_ROLES)
        payload = FundSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        row, url = funding.funding_checkout_create(
            project=project,
            amount=payload.validated_data["amount"],
            created_by=request_person(request),
        )
        return Response({"funding_id": row.pk, "checkout_url": url}, status=status.HTTP_201_CREATED)


class StripeWebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT},
        summary="Stripe events: signature verified, stored, applied once",
    )
    def post(self, request: Request) -> Response:
        # The raw bytes, never the parsed body: the signature covers the exact payload.
        payload = request._request.body
        event = webhooks.stripe_event_receive(
            payload=payload, signature_header=request.headers.get("Stripe-Signature", "")
        )
        return Response({"received": event.event_id, "status": event.status})


class OnboardingSerializer(serializers.Serializer):
    onboarding_url = serializers.URLField()


class PayoutAccountView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        request=None,
        responses={200: OnboardingSerializer},
        summary="Create (once) your Stripe connected account and get a fresh onboarding link",
    )
    def post(self, request: Request) -> Response:
        url = accounts.payout_account_onboarding_url(user=request_person(request))
        return Response({"onboarding_url": url})


class PayoutLineSerializer(serializers.ModelSerializer):
    currency = serializers.CharField(source="run.currency")
    period_start = serializers.DateField(source="run.period_start")
    period_end = serializers.DateField(source="run.period_end")

    class Meta:
        model = PayoutLine
        fields = [
            "id",
            "run",
            "currency",
            "period_start",
            "period_end",
            "base",
            "tier_adjustment",
            "bonus",
            "held",
            "total",
            "status",
            "breakdown",
            "updated_at",
        ]


class EarningsSerializer(serializers.Serializer):
    balances = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="per currency: pending (waiting for quality evidence), payable, held, paid",
    )
    projects = serializers.ListField(
        child=serializers.DictField(),
        help_text="per project: labels and money pending, released (with tiers, bonus and "
        "effective hourly pay), forfeited and reversed, and the reasons",
    )
    quality_stops = serializers.ListField(
        child=serializers.DictField(),
        help_text="projects that stopped serving you on quality evidence, with the evidence "
        "and the state of any appeal",
    )
    payout_lines = PayoutLineSerializer(many=True)


class MyEarningsView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        responses=EarningsSerializer,
        summary="Your money: pending, payable, held and paid, per project and payout run, with "
        "the reason for every release and forfeit",
    )
    def get(self, request: Request) -> Response:
        person = request_person(request)
        body = payout_selectors.expert_earnings(user=person)
        body["payout_lines"] = payout_selectors.payout_lines_for(user=person)
        return Response(EarningsSerializer(body).data)


class PayoutRunCreateSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    currency = CurrencyField(default="usd")


class PayoutRunSerializer(serializers.ModelSerializer):
    approvals = serializers.SerializerMethodField()
    line_counts = serializers.SerializerMethodField()

    class Meta:
        model = PayoutRun
        fields = [
            "id",
            "period_start",
            "period_end",
            "currency",
            "status",
            "total",
            "approvals",
            "line_counts",
            "alert",
            "reconciliation",
            "created_at",
            "approved_at",
            "started_at",
            "completed_at",
        ]

    def get_approvals(self, run: PayoutRun) -> list[str]:
        return [approval.approver.email for approval in run.approvals.select_related("approver")]

    def get_line_counts(self, run: PayoutRun) -> dict[str, int]:
        counts: dict[str, int] = {}
        for line_status in run.lines.values_list("status", flat=True):
            counts[line_status] = counts.get(line_status, 0) + 1
        return counts


class AdminPayoutLineSerializer(PayoutLineSerializer):
    expert = serializers.EmailField(source="user.email")
    transfer_id = serializers.CharField()
    last_error = serializers.CharField()

    class Meta(PayoutLineSerializer.Meta):
        fields = [*PayoutLineSerializer.Meta.fields, "expert", "transfer_id", "last_error"]


class AdminPayoutRunListView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=PayoutRunCreateSerializer,
        responses={201: PayoutRunSerializer},
        summary="Draft a payout run: one line per expert with a positive payable",
    )
    @idempotent
    def post(self, request: Request) -> Response:
        payload = PayoutRunCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        run = payout_runs.payout_run_create(
            created_by=request_person(request), **payload.validated_data
        )
        return Response(PayoutRunSerializer(run).data, status=status.HTTP_201_CREATED)


class AdminPayoutRunDetailView(GenericAPIView):
    permission_classes = [IsStaff]
    serializer_class = AdminPayoutLineSerializer
    queryset = PayoutLine.objects.none()

    @extend_schema(responses=PayoutRunSerializer, summary="A run with its status and line counts")
    def get(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(PayoutRun, pk=run_id)
        return Response(PayoutRunSerializer(run).data)


class AdminPayoutRunLinesView(GenericAPIView):
    permission_classes = [IsStaff]
    serializer_class = AdminPayoutLineSerializer
    queryset = PayoutLine.objects.none()

    @extend_schema(responses=AdminPayoutLineSerializer(many=True), summary="A run's lines")
    def get(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(PayoutRun, pk=run_id)
        lines = run.lines.select_related("run", "user").order_by("pk")
        page = self.paginate_queryset(lines)
        return self.get_paginated_response(AdminPayoutLineSerializer(page, many=True).data)


class AdminPayoutRunApproveView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(request=None, responses=PayoutRunSerializer, summary="Approve a draft run")
    def post(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(PayoutRun, pk=run_id)
        run = payout_runs.payout_run_approve(run=run, approver=request_person(request))
        return Response(PayoutRunSerializer(run).data)


class AdminPayoutRunExecuteView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(
        request=None,
        responses={202: PayoutRunSerializer},
        summary="Execute (or resume) an approved run; safe to call again at any time",
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(PayoutRun, pk=run_id)
        if run.status == "draft":
            raise Conflict("The run is not approved yet.", code="not_approved")
        transaction.on_commit(lambda: tasks.payout_run_execute_task.delay(run.pk))
        return Response(PayoutRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class AdminPayoutRunReconcileView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        request=None,
        responses=OpenApiTypes.OBJECT,
        summary="Compare the run with Stripe's transfers and verify the ledger",
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = get_object_or_404(PayoutRun, pk=run_id)
        return Response(payout_runs.payout_run_reconcile(run=run))


class AdminPayoutLineRetryView(APIView):
    permission_classes = [IsStaffWithMfa]

    @extend_schema(request=None, responses=AdminPayoutLineSerializer, summary="Retry a failed line")
    def post(self, request: Request, line_id: int) -> Response:
        line = get_object_or_404(PayoutLine, pk=line_id)
        line = payout_runs.payout_line_retry(line=line)
        return Response(
            AdminPayoutLineSerializer(
                PayoutLine.objects.select_related("run", "user").get(pk=line.pk)
            ).data
        )


class HeldMoneySerializer(serializers.Serializer):
    moved = serializers.IntegerField()


class AdminHeldReleaseView(APIView):
    permission_classes = [IsStaffWithMfa]
    forfeit = False

    @extend_schema(
        request=None, responses=HeldMoneySerializer, summary="Release held money to the expert"
    )
    def post(self, request: Request, user_id: int) -> Response:
        expert = get_object_or_404(User, pk=user_id)
        service = holds.held_forfeit if self.forfeit else holds.held_release
        return Response({"moved": service(user=expert)})


class AdminHeldForfeitView(AdminHeldReleaseView):
    forfeit = True

    @extend_schema(
        request=None,
        responses=HeldMoneySerializer,
        summary="Forfeit held money back to the escrows of the projects it was released on",
    )
    def post(self, request: Request, user_id: int) -> Response:
        return super().post(request, user_id)
