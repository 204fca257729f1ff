"""Input validation and output shapes of the projects API (docs/API.md, "Projects")."""

from __future__ import annotations

import re
from typing import Any, Literal

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from contributors.models import Skill
from marketplace.fields import (
    CurrencyField,
    MoneyAmountField,
    StrictFloatField,
    StrictIntegerField,
)
from projects.models import (
    DimensionKind,
    PayUnit,
    Project,
    ProjectPriority,
    RubricVersion,
    TaskType,
)
from scoring.engine.tiers import TIERS

DIMENSION_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_DIMENSIONS = 30
MAX_CHOICE_OPTIONS = 20
MAX_LIKERT_STEPS = 101


class DimensionInSerializer(serializers.Serializer):
    key = serializers.CharField(max_length=64)
    # A declared field named `label` shadows Field.label only in the type stubs: DRF's
    # metaclass moves declared fields off the class.
    label = serializers.CharField(max_length=200)  # type: ignore[assignment]
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=DimensionKind.choices)
    min = StrictIntegerField(required=False)
    max = StrictIntegerField(required=False)
    options = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=MAX_CHOICE_OPTIONS
    )
    weight = StrictFloatField(required=False, default=1.0)
    tolerance = StrictIntegerField(required=False, default=1, min_value=0, max_value=100)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        key = attrs["key"]
        name = f"dimension '{key}'"
        problems: dict[str, str] = {}
        if not DIMENSION_KEY.match(key):
            problems["key"] = (
                f"{name}: a key is lowercase letters, digits and underscores, "
                "starting with a letter"
            )
        if not 0 < attrs["weight"] <= 1000:
            problems["weight"] = f"{name}: weight must be greater than 0 (and at most 1000)"
        kind = attrs["kind"]
        if kind == DimensionKind.LIKERT:
            low, high = attrs.get("min"), attrs.get("max")
            if low is None or high is None:
                problems["min"] = f"{name}: a likert dimension needs min and max"
            elif high <= low:
                problems["max"] = f"{name}: max ({high}) must be greater than min ({low})"
            elif high - low + 1 > MAX_LIKERT_STEPS:
                problems["max"] = f"{name}: a likert scale has at most {MAX_LIKERT_STEPS} steps"
        elif "min" in attrs or "max" in attrs:
            problems["min"] = f"{name}: min and max apply to likert dimensions only"
        if kind == DimensionKind.CHOICE:
            options = attrs.get("options") or []
            if len(options) < 2:
                problems["options"] = f"{name}: a choice dimension needs at least 2 options"
            elif len(set(options)) != len(options):
                problems["options"] = f"{name}: options must be unique"
        elif attrs.get("options"):
            problems["options"] = f"{name}: options apply to choice dimensions only"
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class RubricInSerializer(serializers.Serializer):
    # `max_length` goes to the ListSerializer that `many=True` builds (the stubs do not know).
    dimensions = DimensionInSerializer(  # type: ignore[call-arg]
        many=True, max_length=MAX_DIMENSIONS, required=False
    )
    instructions = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_dimensions(self, dimensions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        problems: list[dict[str, str]] = []
        for dimension in dimensions:
            key = dimension["key"]
            duplicate = key in seen
            problems.append(
                {"key": f"dimension '{key}' appears more than once"} if duplicate else {}
            )
            seen.add(key)
        if any(problems):
            raise serializers.ValidationError(problems)
        return dimensions


class PaySerializer(serializers.Serializer):
    unit = serializers.ChoiceField(choices=PayUnit.choices)
    base_rate = MoneyAmountField()
    currency = CurrencyField(default="usd")


class SkillKeyField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        key = super().to_internal_value(data)
        if not Skill.objects.filter(key=key).exists():
            raise serializers.ValidationError(f"unknown skill '{key}'")
        return key


class RequiredSkillSerializer(serializers.Serializer):
    skill = SkillKeyField(max_length=100)
    min_level = StrictIntegerField(min_value=1, max_value=5, default=1)
    include_child_skills = serializers.BooleanField(default=False)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "a skill key"},
            {
                "type": "object",
                "properties": {
                    "skill": {"type": "string"},
                    "include_child_skills": {"type": "boolean"},
                },
                "required": ["skill"],
            },
        ]
    }
)
class RequiredCertificationField(serializers.Field):
    """A skill key (`"medicine.cardiology"`) or `{"skill": ..., "include_child_skills": true}`."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            data = {"skill": data}
        if not isinstance(data, dict):
            raise serializers.ValidationError("a skill key or an object with 'skill'")
        nested = RequiredSkillSerializer(data={**data, "min_level": 1})
        nested.is_valid(raise_exception=True)
        return {
            "skill": nested.validated_data["skill"],
            "include_child_skills": nested.validated_data["include_child_skills"],
        }

    def to_representation(self, value: Any) -> Any:
        return value


class ProjectWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    domain = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    task_type = serializers.ChoiceField(choices=TaskType.choices)
    rubric = RubricInSerializer(required=False, allow_null=True)
    pay = PaySerializer()
    redundancy = StrictIntegerField(min_value=1, max_value=50, default=3)
    max_redundancy = StrictIntegerField(min_value=1, max_value=100, required=False)
    gold_rate = StrictFloatField(min_value=0.0, max_value=1.0, default=0.1)
    lease_minutes = StrictIntegerField(min_value=1, max_value=24 * 60, default=30)
    required_skills = RequiredSkillSerializer(many=True, required=False, default=list)
    required_certifications = serializers.ListField(
        child=RequiredCertificationField(), required=False, default=list
    )
    budget = MoneyAmountField(required=False, allow_null=True)
    bonus_pool_percent = StrictIntegerField(min_value=0, max_value=100, default=0)
    review_rate = StrictFloatField(min_value=0.0, max_value=1.0, default=0.0)
    review_pay = MoneyAmountField(required=False, default=0, minimum=0)
    pace_adjusted = serializers.BooleanField(
        default=True,
        help_text="per-task pay earned at the trusted experts' pace (docs/MONEY.md, Pace)",
    )
    hourly_floor = MoneyAmountField(
        required=False,
        allow_null=True,
        default=None,
        help_text="floor on effective pay per active hour of released work (minor units)",
    )
    onboarding_gold = StrictIntegerField(min_value=0, max_value=50, default=5)
    gold_max_exposures = StrictIntegerField(min_value=0, max_value=1_000_000, default=50)
    gold_half_life_days = StrictIntegerField(min_value=0, max_value=3650, default=180)
    tiers_by_dimension = serializers.BooleanField(default=False)
    priority = serializers.ChoiceField(
        choices=ProjectPriority.choices,
        default="none",
        help_text="who gets work first when more qualified experts than open tasks wait",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problems: dict[str, Any] = {}
        redundancy = attrs.get("redundancy")
        maximum = attrs.get("max_redundancy")
        if redundancy is not None and maximum is not None and maximum < redundancy:
            problems["max_redundancy"] = "must be at least redundancy"
        for name in ("required_skills", "required_certifications"):
            keys = [row["skill"] for row in attrs.get(name) or []]
            if len(keys) != len(set(keys)):
                problems[name] = "each skill may be listed once"
        task_type = attrs.get("task_type")
        rubric = attrs.get("rubric")
        if task_type == TaskType.RATING and rubric is not None and not rubric.get("dimensions"):
            problems["rubric"] = {"dimensions": "a rating project needs at least one dimension"}
        if problems:
            raise serializers.ValidationError(problems)
        pay = attrs.pop("pay", None)
        if pay is not None:
            attrs.update(pay_unit=pay["unit"], base_rate=pay["base_rate"], currency=pay["currency"])
        return attrs


class ProjectCreateSerializer(ProjectWriteSerializer):
    lab = StrictIntegerField(min_value=1)
    capability = StrictIntegerField(
        min_value=1,
        required=False,
        help_text=(
            "build on a capability (your lab's or a published one): its rubric, instructions, "
            "pay and routing terms, requirements, exam and (your lab's own) gold, unless this "
            "body gives them; `task_type` and `pay` are then optional"
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        data = kwargs.get("data")
        if isinstance(data, dict) and data.get("capability") is not None:
            self.fields["task_type"].required = False
            self.fields["pay"].required = False


class DimensionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField()
    kind = serializers.CharField()
    min = serializers.IntegerField(source="min_value", allow_null=True)
    max = serializers.IntegerField(source="max_value", allow_null=True)
    options = serializers.ListField(child=serializers.CharField())
    weight = serializers.FloatField()
    tolerance = serializers.IntegerField()


class RubricVersionSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="number")
    dimensions = DimensionSerializer(many=True)

    class Meta:
        model = RubricVersion
        fields = ["id", "version", "instructions", "dimensions", "created_at"]


class PayOutSerializer(serializers.Serializer):
    unit = serializers.CharField(source="pay_unit")
    base_rate = serializers.IntegerField()
    currency = serializers.CharField()


class RequirementOutSerializer(serializers.Serializer):
    skill = serializers.CharField(source="skill.key")
    min_level = serializers.IntegerField(required=False)
    include_child_skills = serializers.BooleanField()


class ProjectPublicSerializer(serializers.ModelSerializer):
    """What an expert may see: no gold data, no budget, no redundancy."""

    access = serializers.SerializerMethodField(
        help_text="Which view of the project this is: `public` (an expert's) or `lab` (its lab's)."
    )
    lab_name = serializers.CharField(source="lab.name")
    pay = PayOutSerializer(source="*")
    required_skills = RequirementOutSerializer(many=True)
    required_certifications = RequirementOutSerializer(many=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "access",
            "lab_name",
            "title",
            "description",
            "domain",
            "task_type",
            "status",
            "pay",
            "lease_minutes",
            "required_skills",
            "required_certifications",
            "pace_adjusted",
            "hourly_floor",
            "review_pay",
        ]

    def get_access(self, project: Project) -> Literal["public"]:
        return "public"


class ProjectLabSerializer(ProjectPublicSerializer):
    """What the project's lab sees: every field."""

    def get_access(self, project: Project) -> Literal["lab"]:  # type: ignore[override]
        return "lab"

    class Meta(ProjectPublicSerializer.Meta):
        fields = [
            *ProjectPublicSerializer.Meta.fields,
            "lab",
            "redundancy",
            "max_redundancy",
            "gold_rate",
            "budget",
            "bonus_pool_percent",
            "review_rate",
            "onboarding_gold",
            "gold_max_exposures",
            "gold_half_life_days",
            "tiers_by_dimension",
            "priority",
            "capability",
            "created_at",
            "updated_at",
        ]


class ProjectDetailLabSerializer(ProjectLabSerializer):
    """What the project's lab sees, with the current rubric."""

    rubric = serializers.SerializerMethodField()

    class Meta(ProjectLabSerializer.Meta):
        fields = [*ProjectLabSerializer.Meta.fields, "rubric"]

    @extend_schema_field(RubricVersionSerializer(allow_null=True))
    def get_rubric(self, project: Project) -> dict[str, Any] | None:
        rubric = self.context.get("rubric")
        return RubricVersionSerializer(rubric).data if rubric is not None else None


class TransitionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["dpo", "rm", "ratings", "sft"])
    min_confidence = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    min_tier = serializers.ChoiceField(required=False, choices=list(TIERS))
    split = serializers.ChoiceField(required=False, choices=["train", "eval"])


# The same path answers a different shape to its lab and to an expert; `access` tells which.
PROJECT_FOR_CALLER = PolymorphicProxySerializer(
    component_name="ProjectForCaller",
    serializers={"lab": ProjectDetailLabSerializer, "public": ProjectPublicSerializer},
    resource_type_field_name="access",
)
PROJECT_ROW_FOR_CALLER = PolymorphicProxySerializer(
    component_name="ProjectRowForCaller",
    serializers={"lab": ProjectLabSerializer, "public": ProjectPublicSerializer},
    resource_type_field_name="access",
    many=True,
)
