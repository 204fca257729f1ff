"""Access rules shared by every app's API.

Object scoping answers 404 for anything outside the caller's reach, so ids do not leak; a
caller who can see an object but lacks the role for an action gets 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from marketplace import selectors
from marketplace.models import MANAGING_ROLES, Lab, Role, User

LAB_READ_ROLES = frozenset({Role.OWNER, Role.MANAGER, Role.VIEWER})
LAB_MANAGE_ROLES = MANAGING_ROLES
LAB_OWNER_ROLES = frozenset({Role.OWNER})
LAB_PIPELINE_ROLES = frozenset({*LAB_READ_ROLES, selectors.API_KEY_ROLE})


def lab_for_caller(*, request: Request, lab_id: int, roles: Iterable[str]) -> Lab:
    """The lab, if the caller may act on it with one of `roles`."""
    role = selectors.lab_role_for_caller(caller=request.user, lab_id=lab_id)
    if role is None:
        raise exceptions.NotFound()
    if role not in set(roles):
        raise exceptions.PermissionDenied("Your role in this lab does not allow this action.")
    return Lab.objects.get(pk=lab_id)


def is_api_key_caller(request: Request) -> bool:
    return getattr(request.user, "api_key", None) is not None


class IsPerson(permissions.BasePermission):
    """A signed-in person (not a lab API key)."""

    message = "This endpoint needs a signed-in person, not an API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return not is_api_key_caller(request)


def request_person(request: Request) -> User:
    """The signed-in person behind a request that `IsPerson` already let through."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


def user_has_mfa(user: Any) -> bool:
    """Whether a person has an authenticator app (TOTP) set up."""
    from allauth.mfa.models import Authenticator

    if not isinstance(user, User):
        return False
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class IsStaff(permissions.BasePermission):
    message = "This endpoint is for platform staff."

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(
            request.user
            and request.user.is_authenticated
            and not is_api_key_caller(request)
            and request.user.is_staff
        )


class IsStaffWithMfa(IsStaff):
    """Staff who have MFA enabled: required before any money or certification action."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        if not user_has_mfa(request.user):
            raise exceptions.PermissionDenied(
                "Enable two-factor authentication (TOTP) before approving, certifying, "
                "revoking or moving money.",
                code="mfa_required",
            )
        return True
