"""OpenAPI descriptions of our authentication schemes (loaded from `MarketplaceConfig.ready`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class LabApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "marketplace.authentication.LabApiKeyAuthentication"
    name = "labApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A lab API key (`mk_...`), created by a lab owner or manager.",
        }


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "marketplace.authentication.SessionTokenAuthentication"
    name = "sessionToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Session-Token",
            "description": "allauth headless app session token (see /_allauth/app/v1/auth/login).",
        }
