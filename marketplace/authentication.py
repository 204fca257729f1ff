"""How callers prove who they are.

People: allauth's headless `X-Session-Token` (apps) or the browser session (pages).
Machines: `Authorization: Bearer <lab api key>`, scoped to one lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from marketplace import selectors, services
from marketplace.models import ApiKey


@dataclass(frozen=True)
class ApiKeyClient:
    """`request.user` for a call made with a lab API key: a lab pipeline, not a person."""

    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    @property
    def lab_id(self) -> int:
        return self.api_key.lab_id

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class LabApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyClient, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        api_key = selectors.api_key_resolve(raw_key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        services.api_key_mark_used(api_key=api_key)
        return ApiKeyClient(api_key=api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth's headless session token, with a refusal (not silence) for a dead token."""

    def authenticate(self, request: Any) -> Any:
        token = self.get_session_token(request)
        if not token:
            return None
        result = super().authenticate(request)
        if result is None:
            raise exceptions.AuthenticationFailed("Invalid or expired session token.")
        return result
