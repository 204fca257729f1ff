"""Input validation and output shapes of the experts API (docs/API.md, "Experts")."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from contributors.models import (
    Application,
    Certification,
    CertificationRole,
    Exam,
    ExpertProfile,
    ExpertSkill,
    Skill,
)
from marketplace.fields import StrictIntegerField

COUNTRY_LENGTH = 2
MAX_LIST_ITEMS = 20


class SkillSerializer(serializers.ModelSerializer):
    # Declared fields leave the class (DRF's metaclass), so this does not clobber Field.parent.
    parent = serializers.CharField(  # type: ignore[assignment]
        source="parent.key", allow_null=True, default=None
    )

    class Meta:
        model = Skill
        fields = ["key", "name", "description", "parent"]


class ExpertSkillSerializer(serializers.ModelSerializer):
    skill = serializers.CharField(source="skill.key")

    class Meta:
        model = ExpertSkill
        fields = ["skill", "level", "verified_level"]


class ProfileSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    skills = ExpertSkillSerializer(many=True)
    is_suspended = serializers.BooleanField()

    class Meta:
        model = ExpertProfile
        fields = [
            "email",
            "headline",
            "bio",
            "domains",
            "country",
            "languages",
            "links",
            "availability_hours_per_week",
            "share_reputation",
            "skills",
            "is_suspended",
            "updated_at",
        ]


class SkillLevelSerializer(serializers.Serializer):
    skill = serializers.SlugRelatedField(slug_field="key", queryset=Skill.objects.all())
    level = StrictIntegerField(min_value=1, max_value=5)


class ProfileUpdateSerializer(serializers.Serializer):
    """The allow-list. Fields outside it are refused (400), never silently dropped."""

    headline = serializers.CharField(max_length=200, allow_blank=True, required=False)
    bio = serializers.CharField(max_length=10_000, allow_blank=True, required=False)
    domains = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=MAX_LIST_ITEMS, required=False
    )
    country = serializers.CharField(
        min_length=COUNTRY_LENGTH, max_length=COUNTRY_LENGTH, allow_blank=True, required=False
    )
    languages = serializers.ListField(
        child=serializers.CharField(max_length=35), max_length=MAX_LIST_ITEMS, required=False
    )
    links = serializers.ListField(
        child=serializers.URLField(max_length=500), max_length=MAX_LIST_ITEMS, required=False
    )
    availability_hours_per_week = StrictIntegerField(
        min_value=0, max_value=168, allow_null=True, required=False
    )
    skills = SkillLevelSerializer(many=True, required=False)
    share_reputation = serializers.BooleanField(required=False)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {key: ["This field cannot be set here."] for key in unknown}
                )
        return super().to_internal_value(data)

    def validate_country(self, value: str) -> str:
        return value.upper()

    def validate_skills(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [row["skill"].key for row in rows]
        if len(keys) != len(set(keys)):
            raise serializers.ValidationError("each skill may be listed once")
        return [{"skill": row["skill"].key, "level": row["level"]} for row in rows]


class ApplicationCreateSerializer(serializers.Serializer):
    skill = serializers.SlugRelatedField(slug_field="key", queryset=Skill.objects.all())
    level = StrictIntegerField(min_value=1, max_value=5, default=1)
    project = StrictIntegerField(required=False, allow_null=True, min_value=1)
    statement = serializers.CharField(max_length=10_000, allow_blank=True, default="")
    links = serializers.ListField(
        child=serializers.URLField(max_length=500), max_length=MAX_LIST_ITEMS, default=list
    )


class ApplicationSerializer(serializers.ModelSerializer):
    skill = serializers.CharField(source="skill.key")
    from_exam = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = [
            "id",
            "skill",
            "level",
            "project",
            "statement",
            "links",
            "status",
            "from_exam",
            "created_at",
            "decided_at",
            "decision_reason",
        ]

    def get_from_exam(self, application: Application) -> bool:
        return application.exam_attempt_id is not None


class AdminApplicationSerializer(ApplicationSerializer):
    expert = serializers.SerializerMethodField()
    decided_by = serializers.EmailField(source="decided_by.email", allow_null=True, default=None)

    class Meta(ApplicationSerializer.Meta):
        fields = [*ApplicationSerializer.Meta.fields, "expert", "decided_by"]

    def get_expert(self, application: Application) -> dict[str, Any]:
        return {"id": application.user_id, "email": application.user.email}


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000, allow_blank=True, default="")
    certify = serializers.BooleanField(default=False)


class RejectionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class CertificationSerializer(serializers.ModelSerializer):
    skill = serializers.CharField(source="skill.key")
    is_active = serializers.SerializerMethodField()
    issued_by_exam = serializers.SerializerMethodField()

    class Meta:
        model = Certification
        fields = [
            "id",
            "skill",
            "level",
            "role",
            "issued_at",
            "expires_at",
            "revoked_at",
            "revocation_reason",
            "is_active",
            "issued_by_exam",
        ]

    def get_is_active(self, certification: Certification) -> bool:
        return certification.is_active_at(self.context["now"])

    def get_issued_by_exam(self, certification: Certification) -> bool:
        return certification.exam_attempt_id is not None


class AdminCertificationCreateSerializer(serializers.Serializer):
    user = StrictIntegerField(min_value=1, help_text="the expert's user id")
    skill = serializers.SlugRelatedField(slug_field="key", queryset=Skill.objects.all())
    level = StrictIntegerField(min_value=1, max_value=5, default=1)
    role = serializers.ChoiceField(choices=CertificationRole.choices, default="expert")
    days = StrictIntegerField(min_value=1, max_value=3650, default=365)


class ExamSerializer(serializers.ModelSerializer):
    skill = serializers.CharField(source="skill.key")
    attempts_used = serializers.IntegerField()
    attempts_left = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    open_attempt = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Exam
        fields = [
            "id",
            "title",
            "description",
            "skill",
            "level",
            "question_count",
            "pass_mark",
            "time_limit_minutes",
            "max_attempts",
            "cooldown_hours",
            "allows_feedback",
            "attempts_used",
            "attempts_left",
            "next_attempt_at",
            "open_attempt",
        ]


class AttemptQuestionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    prompt = serializers.CharField()
    options = serializers.ListField(child=serializers.CharField(), required=False)
    responses = serializers.ListField(child=serializers.CharField(), required=False)
    rubric = serializers.ListField(child=serializers.DictField(), required=False)
    points = serializers.IntegerField()


class AttemptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    exam = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    questions = AttemptQuestionSerializer(many=True)


class AttemptSubmitSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="question id -> answer; a missing question scores 0",
    )


class AttemptResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    score = serializers.FloatField()
    passed = serializers.BooleanField()
    wrong_questions = serializers.ListField(
        child=serializers.IntegerField(), allow_null=True, help_text="only if the exam allows it"
    )
    certification = CertificationSerializer(allow_null=True)
    pending_review = serializers.BooleanField()


class SuspensionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=5000)


class ExpertStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    is_suspended = serializers.BooleanField()
    suspended_at = serializers.DateTimeField(allow_null=True)
    suspension_reason = serializers.CharField()
