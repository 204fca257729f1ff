"""What a lab can read of its money: a project's fundings, and every project's figures."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.permissions import LAB_READ_ROLES, IsPerson, lab_for_caller
from payouts import lab_money as selectors
from payouts.models import Funding
from projects.api import lab_project


class FundingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Funding
        fields = [
            "id",
            "amount",
            "currency",
            "status",
            "created_at",
            "paid_at",
            "amount_refunded",
            "amount_disputed",
        ]


class ProjectFundingsView(GenericAPIView):
    """Money is for people: a lab's API key reads neither fundings nor the lab's money."""

    permission_classes = [IsPerson]
    serializer_class = FundingSerializer
    queryset = Funding.objects.none()

    @extend_schema(
        summary="A project's fundings, newest first (amount in minor units, status, dates)",
        responses=FundingSerializer(many=True),
        description=(
            "`status` is `open` (Checkout started, Stripe has not confirmed) or `paid` (escrow "
            "was credited the amount less the platform fee, at `paid_at`). Lab members only."
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = lab_project(request, project_id, LAB_READ_ROLES)
        page = self.paginate_queryset(selectors.project_fundings(project=project))
        return self.get_paginated_response(FundingSerializer(page, many=True).data)


class MoneyFiguresSerializer(serializers.Serializer):
    funded = serializers.IntegerField(help_text="paid fundings, gross")
    escrow = serializers.IntegerField(help_text="free to spend")
    reserved = serializers.IntegerField(help_text="open leases and the reserve of submitted labels")
    pending = serializers.IntegerField(help_text="base pay waiting for quality evidence")
    paid = serializers.IntegerField(help_text="released to experts")
    spent = serializers.IntegerField(help_text="what a budget cap counts")
    fees = serializers.IntegerField(help_text="the platform's share of the fundings")


class ProjectMoneySerializer(MoneyFiguresSerializer):
    project = serializers.IntegerField()
    title = serializers.CharField()
    currency = serializers.CharField()


class LabMoneySerializer(serializers.Serializer):
    projects = ProjectMoneySerializer(many=True)
    totals = serializers.DictField(
        child=MoneyFiguresSerializer(), help_text="per currency: the sums of the projects' rows"
    )


class LabMoneyView(APIView):
    permission_classes = [IsPerson]

    @extend_schema(
        responses=LabMoneySerializer,
        summary="A lab's money across its projects, from the ledger (minor units)",
    )
    def get(self, request: Request, lab_id: int) -> Response:
        lab = lab_for_caller(request=request, lab_id=lab_id, roles=LAB_READ_ROLES)
        return Response(selectors.lab_money(lab_id=lab.pk))
