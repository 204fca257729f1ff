"""The shape of a project's stats in the OpenAPI schema (the numbers come from
`projects.selectors.project_stats`)."""

from __future__ import annotations

from rest_framework import serializers


class LowBalanceSerializer(serializers.Serializer):
    tasks_covered = serializers.IntegerField(
        allow_null=True, help_text="tasks escrow still pays at the most a task can cost"
    )
    is_low = serializers.BooleanField(help_text="below `threshold_tasks`: the page warns")
    threshold_tasks = serializers.IntegerField(help_text="BUDGET_LOW_TASKS, as the webhook")


class StatsBudgetSerializer(serializers.Serializer):
    """A project's money, from the ledger (integer minor units of `currency`)."""

    currency = serializers.CharField()
    cap = serializers.IntegerField(allow_null=True, help_text="the optional spending cap")
    spent = serializers.IntegerField(help_text="pending + reserve + paid: what the cap counts")
    left = serializers.IntegerField(allow_null=True, help_text="cap - spent - open leases")
    escrow = serializers.IntegerField(help_text="the escrow balance, free to spend")
    reserved = serializers.IntegerField(
        help_text="reserved by open leases plus the reserve set aside for submitted labels"
    )
    leases = serializers.IntegerField(help_text="the part of `reserved` held by open leases")
    pending = serializers.IntegerField(help_text="experts' base pay waiting for quality evidence")
    paid = serializers.IntegerField(help_text="released to experts (with bonuses, review pay)")
    fees = serializers.IntegerField(help_text="the platform's share of the fundings")
    can_serve = serializers.BooleanField()
    low_balance = LowBalanceSerializer()


class ProjectStatsSerializer(serializers.Serializer):
    status = serializers.CharField()
    progress = serializers.DictField()
    rubric_version = serializers.IntegerField(allow_null=True)
    preference = serializers.DictField(allow_null=True)
    dimensions = serializers.ListField(child=serializers.DictField())
    agreement = serializers.DictField(allow_null=True)
    budget = StatsBudgetSerializer()
    gold = serializers.DictField()
    cost_per_accepted_label = serializers.FloatField(allow_null=True)
