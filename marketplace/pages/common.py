"""What every app's pages share: access rules and turning service errors into messages.

Pages call the same services and selectors as the API and validate input with the API's own
serializers, so a rule is written once. Scoping matches the API: anything outside the caller's
reach answers 404.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from allauth.account.internal.flows.reauthentication import suspend_request
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from rest_framework import exceptions

from marketplace import selectors
from marketplace.errors import DomainError
from marketplace.http_errors import flatten_validation_errors
from marketplace.models import Lab, User
from marketplace.permissions import has_recent_mfa, user_has_mfa

View = Callable[..., HttpResponse]


def page_user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise Http404
    return user


def lab_for_page(request: HttpRequest, lab_id: int, roles: Iterable[str]) -> tuple[Lab, str]:
    """The lab and the caller's role; 404 when the caller is not a member with one of `roles`."""
    role = selectors.lab_role_for_caller(caller=request.user, lab_id=lab_id)
    if role is None or role not in set(roles):
        raise Http404
    return selectors.lab_get(lab_id=lab_id), role


def staff_desk(view: View) -> View:
    """Admin desk pages: staff only (404 for anyone else), and only once MFA is set up. Every
    action (a POST) also needs an MFA step in this session within STAFF_MFA_MAX_AGE_SECONDS:
    otherwise allauth suspends the request and sends the person to its reauthentication page,
    which replays the request once a code is entered."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404
        if not user_has_mfa(request.user):
            return render(request, "marketplace/mfa_required.html", status=403)
        if request.method == "POST" and not has_recent_mfa(request, request.user):
            return suspend_request(request, reverse("mfa_reauthenticate"))
        return view(request, *args, **kwargs)

    return wrapped


# What a page catches around a service or serializer call: a domain refusal, or DRF's own
# (a serializer's ValidationError, a permission check).
REFUSALS = (DomainError, exceptions.APIException)
Refusal = DomainError | exceptions.APIException


def refusal_text(error: Refusal) -> str:
    """The refusal's one-line message."""
    return error.message if isinstance(error, DomainError) else str(error.detail)


def error_messages(error: Refusal) -> list[str]:
    """A service's refusal as sentences for the page: the message, then each listed problem."""
    if isinstance(error, exceptions.ValidationError):
        return [
            f"{problem['field']}: {problem['message']}"
            if problem.get("field")
            else problem["message"]
            for problem in flatten_validation_errors(error.detail)
        ]
    messages = [refusal_text(error)]
    for detail in getattr(error, "details", None) or []:
        if isinstance(detail, dict):
            where = detail.get("field") or detail.get("line") or detail.get("code")
            text = detail.get("message", "")
            messages.append(f"{where}: {text}" if where else text)
    return messages


def flash_errors(request: HttpRequest, error: Refusal) -> None:
    """Show a service's refusal on the next page, one message per problem."""

    for message in error_messages(error):
        messages.error(request, message)


def posted_number(
    data: Any, name: str, default: float | None, *, kind: type[int] | type[float] = int
) -> Any:
    """A number from a form field, or 400: a page form typed by hand (or by a script) must not
    turn `int("abc")` into a 500. Integers stay within a signed 64-bit column; floats finite."""
    raw = (data.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except (ValueError, OverflowError):
        raise BadRequest(f"'{name}' must be a number.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"'{name}' must be a finite number.")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise BadRequest(f"'{name}' is out of range.")
    return value
