from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from contributors.models import Certification, Exam, ExpertProfile, ExpertSkill, Skill
from marketplace.models import User


def give_skill(user: User, key: str, level: int) -> ExpertSkill:
    profile, _ = ExpertProfile.objects.get_or_create(user=user)
    skill = Skill.objects.get(key=key)
    expert_skill, _ = ExpertSkill.objects.update_or_create(
        profile=profile, skill=skill, defaults={"level": level}
    )
    return expert_skill


def certify(user: User, key: str, *, days: int = 365, level: int = 3) -> Certification:
    return Certification.objects.create(
        user=user,
        skill=Skill.objects.get(key=key),
        level=level,
        expires_at=timezone.now() + timedelta(days=days),
    )


def qualify_for_cardiology(user: User) -> None:
    give_skill(user, "medicine.cardiology", 4)
    certify(user, "medicine.cardiology")


def enable_mfa(user: User) -> None:
    """Give a person an active TOTP authenticator, as the MFA setup flow would."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    TOTP.activate(user, generate_totp_secret())


def make_exam(**overrides: object) -> Exam:
    from contributors.models import ExamQuestion

    fields: dict[str, object] = {
        "skill": Skill.objects.get(key="medicine.cardiology"),
        "level": 3,
        "title": "Cardiology level 3",
        "question_count": 5,
        "pass_mark": 0.8,
        "time_limit_minutes": 20,
        "max_attempts": 2,
        "cooldown_hours": 24,
        "is_published": True,
    }
    fields.update(overrides)
    exam = Exam.objects.create(**fields)
    ExamQuestion.objects.bulk_create(
        [
            ExamQuestion(
                exam=exam,
                kind="single_choice",
                prompt="First-line drug for stable angina?",
                options=["aspirin", "beta blocker", "antibiotic"],
                answer_key={"option": "beta blocker"},
            ),
            ExamQuestion(
                exam=exam,
                kind="multiple_choice",
                prompt="Which are statins?",
                options=["atorvastatin", "metformin", "rosuvastatin"],
                answer_key={"options": ["atorvastatin", "rosuvastatin"]},
            ),
            ExamQuestion(
                exam=exam,
                kind="numeric",
                prompt="Normal resting heart rate upper bound (bpm)?",
                answer_key={"value": 100, "tolerance": 5},
            ),
            ExamQuestion(
                exam=exam,
                kind="short_text",
                prompt="Abbreviation for an electrocardiogram?",
                answer_key={"regex": "(?i)ecg|ekg"},
            ),
            ExamQuestion(
                exam=exam,
                kind="pairwise",
                prompt="Which answer to 'Can I stop my statin?' is better?",
                responses=["Ask your cardiologist first.", "Sure, stop any time."],
                rubric=[
                    {"key": "safety", "label": "Safe", "kind": "binary", "weight": 1.0},
                ],
                answer_key={"preference": "a", "answers": {"safety": [1, 0]}},
            ),
        ]
    )
    return exam


CORRECT_ANSWERS = {
    "single_choice": "beta blocker",
    "multiple_choice": ["rosuvastatin", "atorvastatin"],
    "numeric": 98,
    "short_text": " EKG ",
    "pairwise": {"preference": "a", "answers": {"safety": [1, 0]}},
}
