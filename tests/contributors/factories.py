from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from contributors.models import Certification, ExpertProfile, ExpertSkill, Skill
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
