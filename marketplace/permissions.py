"""Access rules shared by every app's API.

Object scoping answers 404 for anything outside the caller's reach, so ids do not leak; a
caller who can see an object but lacks the role for an action gets 403.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from allauth.account.internal.flows.login import get_authentication_records
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
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


def _session_of(request: Any) -> Any:
    """The session the caller is signed in with: the headless session behind an
    `X-Session-Token` (DRF puts it in `request.auth`), else the browser session."""

    auth = getattr(request, "auth", None)
    if isinstance(auth, SessionBase):
        return auth
    return getattr(getattr(request, "_request", request), "session", None)


def mfa_step_age_seconds(request: Any, user: Any) -> float | None:
    """Seconds since this session last passed an MFA step (a TOTP or recovery code at login,
    or a reauthentication), from allauth's own authentication records in the session; None
    if it never did. Adding an authenticator is not an MFA step: a session opened before TOTP
    was set up has none until it enters a code."""

    session = _session_of(request)
    if session is None or not isinstance(user, User):
        return None
    records = get_authentication_records(SimpleNamespace(session=session), user)
    moments = [
        float(record["at"])
        for record in records
        if record.get("method") == "mfa" and isinstance(record.get("at"), int | float)
    ]
    if not moments:
        return None
    return max(0.0, time.time() - max(moments))


def has_recent_mfa(request: Any, user: Any) -> bool:
    age = mfa_step_age_seconds(request, user)
    return age is not None and age < settings.STAFF_MFA_MAX_AGE_SECONDS


class ReauthenticationRequired(exceptions.NotAuthenticated):
    """401 with what to do: confirm with an authenticator code, then send the request again."""

    default_code = "reauthentication_required"

    def __init__(self) -> None:
        super().__init__(
            "Confirm with your authenticator app first: this action needs an MFA step in this "
            f"session within the last {settings.STAFF_MFA_MAX_AGE_SECONDS // 60} minutes. Post a "
            "current code to the reauthenticate URL in details, then send the request again.",
            code=self.default_code,
        )
        self.details = {
            "reauthenticate": {
                "app": "/_allauth/app/v1/auth/2fa/reauthenticate",
                "browser": "/_allauth/browser/v1/auth/2fa/reauthenticate",
                "page": "/accounts/2fa/reauthenticate/",
            },
            "body": {"code": "<current TOTP or a recovery code>"},
            "max_age_seconds": settings.STAFF_MFA_MAX_AGE_SECONDS,
        }


class IsStaffWithMfa(IsStaff):
    """Staff who passed MFA *in this session*, recently: required before any money or
    certification action. Having a TOTP device on the account is not enough (issue 17: a
    session opened before TOTP was added approved a payout run)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        if not user_has_mfa(request.user):
            raise exceptions.PermissionDenied(
                "Enable two-factor authentication (TOTP) before approving, certifying, "
                "revoking or moving money.",
                code="mfa_required",
            )
        if not has_recent_mfa(request, request.user):
            raise ReauthenticationRequired()
        return True
