"""allauth's account adapter: email normalisation, lab invitations, lockouts as 429."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from django import forms
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from marketplace import ratelimits, services
from marketplace.emails import email_problem, normalize_email


class AccountAdapter(DefaultAccountAdapter):
    def clean_email(self, email: str) -> str:
        """Every address allauth stores or looks up (signup, adding an address, password
        reset) in one normal form; mixed-script look-alikes are refused."""
        email = normalize_email(super().clean_email(email))
        problem = email_problem(email)
        if problem is not None:
            raise forms.ValidationError(problem, code="mixed_script_email")
        return email

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        """A login lockout on the headless API answers 429 with Retry-After (allauth says
        400, as a form error, which clients cannot tell from a wrong password)."""
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            if not ratelimits.is_headless(request):
                raise
            key = self._get_login_attempts_cache_key(request, **credentials)
            seconds = ratelimits.retry_after_seconds(request, action="login_failed", key=key)
            raise ImmediateHttpResponse(
                ratelimits.too_many_attempts(request, seconds=seconds)
            ) from None

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        # Logins compare the normal form too, so the lockout counts one address once.
        if isinstance(credentials.get("email"), str):
            credentials["email"] = normalize_email(credentials["email"])
        return super().authenticate(request, **credentials)

    def confirm_email(self, request: Any, email_address: Any) -> Any:
        result = super().confirm_email(request, email_address)
        # Only a verified address may claim lab invitations sent to it.
        services.lab_invitations_accept(user=email_address.user, email=email_address.email)
        return result
