"""Reads of accounts and labs."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.db.models import CharField, Count, OuterRef, QuerySet, Subquery, Value

from marketplace.models import ApiKey, Lab, LabInvitation, Membership, User

API_KEY_PREFIX = "mk"
# Pseudo-role of a lab API key: machine access to a lab's data pipelines (import, export, feed),
# never to members, keys or money.
API_KEY_ROLE = "api_key"


def api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_resolve(*, raw_key: str) -> ApiKey | None:
    """The active key for a presented secret, or None."""
    parts = raw_key.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    api_key = (
        ApiKey.objects.select_related("lab")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if api_key is None or not hmac.compare_digest(api_key.key_hash, api_key_hash(raw_key)):
        return None
    return api_key


def lab_list_for_caller(*, caller: Any) -> QuerySet[Lab]:
    """Labs a person belongs to, or the one lab of an API key."""
    api_key = getattr(caller, "api_key", None)
    labs = Lab.objects.annotate(member_count=Count("memberships", distinct=True)).order_by("id")
    if api_key is not None:
        return labs.filter(pk=api_key.lab_id).annotate(
            caller_role=Value(API_KEY_ROLE, output_field=CharField())
        )
    own_role = Membership.objects.filter(lab=OuterRef("pk"), user=caller).values("role")[:1]
    return labs.filter(pk__in=Membership.objects.filter(user=caller).values("lab_id")).annotate(
        caller_role=Subquery(own_role)
    )


def lab_role_for_caller(*, caller: Any, lab_id: int) -> str | None:
    """The caller's role in a lab (`owner`, `manager`, `viewer`, or `api_key`), or None."""
    api_key = getattr(caller, "api_key", None)
    if api_key is not None:
        return API_KEY_ROLE if api_key.lab_id == lab_id else None
    if not getattr(caller, "is_authenticated", False):
        return None
    return (
        Membership.objects.filter(lab_id=lab_id, user=caller).values_list("role", flat=True).first()
    )


def lab_members(*, lab: Lab) -> QuerySet[Membership]:
    return lab.memberships.select_related("user").order_by("id")


def lab_open_invitations(*, lab: Lab) -> QuerySet[LabInvitation]:
    return lab.invitations.filter(accepted_at__isnull=True).order_by("id")


def lab_api_keys(*, lab: Lab) -> QuerySet[ApiKey]:
    return lab.api_keys.order_by("-created_at", "-id")


def user_by_email(*, email: str) -> User | None:
    return User.objects.filter(email__iexact=email.strip()).first()


def lab_get(*, lab_id: int) -> Lab:
    return Lab.objects.get(pk=lab_id)
