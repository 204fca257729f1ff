"""Who may be served work, checked at every claim: the skills and active certifications a
project requires, and **a suspended expert gets no tasks** (nor reviews).

`projects.routing` checks it under the expert's profile lock at each claim, listings check it
to show only projects the expert may take, and reviews check it for reviewers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from contributors.models import Certification, CertificationRole, ExpertProfile, ExpertSkill

if TYPE_CHECKING:
    from marketplace.models import User


@dataclass(frozen=True)
class ExpertQualifications:
    """What an expert holds right now: effective skill levels and active certifications."""

    is_suspended: bool
    skill_levels: dict[str, int]
    certified_skills: dict[str, int]

    def has_skill(self, skill_key: str, min_level: int, *, include_children: bool) -> bool:
        return any(
            level >= min_level and _within(key, skill_key, include_children)
            for key, level in self.skill_levels.items()
        )

    def has_certification(self, skill_key: str, *, include_children: bool) -> bool:
        return any(_within(key, skill_key, include_children) for key in self.certified_skills)


def _within(key: str, required: str, include_children: bool) -> bool:
    # A certification in a child skill satisfies its parent only where the project says so.
    return key == required or (include_children and key.startswith(f"{required}."))


def expert_qualifications(
    *, expert: User, at: datetime | None = None, profile: ExpertProfile | None = None
) -> ExpertQualifications:
    """`profile`: the expert's profile when the caller already holds it (locked, say)."""
    moment = at or timezone.now()
    if profile is None:
        profile = ExpertProfile.objects.filter(user=expert).first()
    skill_levels: dict[str, int] = {}
    if profile is not None:
        for expert_skill in ExpertSkill.objects.filter(profile=profile).select_related("skill"):
            skill_levels[expert_skill.skill.key] = expert_skill.effective_level
    certified: dict[str, int] = {}
    active = Certification.objects.filter(
        user=expert,
        role=CertificationRole.EXPERT,
        revoked_at__isnull=True,
        expires_at__gt=moment,
    ).select_related("skill")
    for certification in active:
        certified[certification.skill.key] = max(
            certified.get(certification.skill.key, 0), certification.level
        )
    return ExpertQualifications(
        is_suspended=bool(profile and profile.is_suspended),
        skill_levels=skill_levels,
        certified_skills=certified,
    )


def qualifications_meet(qualifications: ExpertQualifications, project: Any) -> bool:
    """Whether held qualifications satisfy a project's requirements (prefetched on `project`)."""
    return requirements_met(
        qualifications, project.required_skills.all(), project.required_certifications.all()
    )


def requirements_met(
    qualifications: ExpertQualifications,
    required_skills: Iterable[Any],
    required_certifications: Iterable[Any],
) -> bool:
    """The same check on requirement rows the caller already has (each with its `skill`)."""
    if qualifications.is_suspended:
        return False
    for requirement in required_skills:
        if not qualifications.has_skill(
            requirement.skill.key,
            requirement.min_level,
            include_children=requirement.include_child_skills,
        ):
            return False
    for requirement in required_certifications:
        if not qualifications.has_certification(
            requirement.skill.key, include_children=requirement.include_child_skills
        ):
            return False
    return True


def expert_is_qualified(*, expert: User, project: Any) -> bool:
    """Skills, active (unexpired, unrevoked) certifications, and not suspended: checked now."""
    return qualifications_meet(expert_qualifications(expert=expert), project)
