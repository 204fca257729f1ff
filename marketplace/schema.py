"""OpenAPI: our authentication schemes (loaded from `MarketplaceConfig.ready`), the shared
error body, and the schema class that documents every operation's error answers."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from marketplace.idempotency import PARAMETER


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


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(help_text="a machine code, e.g. `validation_error`, `not_found`")
    message = serializers.CharField(help_text="a human sentence")
    details = serializers.JSONField(
        allow_null=True,
        help_text=(
            "null, or more: for validation errors a list of `{field, message, code}` (or "
            "`line` for JSON Lines), for throttling `{retry_after_seconds}`"
        ),
    )


class ErrorSerializer(serializers.Serializer):
    """The one error body of the API (docs/API.md, "Errors")."""

    error = ErrorBodySerializer()


ERROR_DESCRIPTIONS = {
    "400": (
        "Invalid input: every problem is listed in `details`. JSON nested deeper than 64 "
        "levels, text with NUL or lone surrogates, and numbers no column holds are refused here."
    ),
    "401": "Not signed in (`WWW-Authenticate` says how).",
    "403": "Signed in, but this role may not do this.",
    "404": "No such object within the caller's reach (ids of others' objects are not revealed).",
    "409": "The object's current state does not allow this.",
    "410": "Too late: the lease or the deadline is over.",
    "413": "The body is over the size limit.",
    "415": "The body's content type is not one this operation reads.",
    "422": (
        "`idempotency_key_reused`: this `Idempotency-Key` was already used with another body "
        "(409 `idempotency_key_in_flight` while its first request still runs)."
    ),
    "429": "Too many requests; `Retry-After` says when to try again.",
    "503": (
        "`payment_provider_unavailable`: Stripe could not be reached; nothing was booked or "
        "sent, and `Retry-After` says when to try again."
    ),
}


# Error answers beyond the automatic ones, per operation: where a service raises Conflict
# (409), Gone (410) or a 429, or a body names an object that may be out of reach (404). One
# table, checked against the running API by tests/marketplace/test_openapi_conformance.py.
EXTRA_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST", "/api/v1/applications/"): (404, 409),
    ("POST", "/api/v1/admin/applications/{application_id}/approve/"): (409,),
    ("POST", "/api/v1/admin/applications/{application_id}/reject/"): (409,),
    ("POST", "/api/v1/admin/certifications/{certification_id}/revoke/"): (409,),
    ("POST", "/api/v1/admin/experts/{user_id}/suspend/"): (409,),
    ("POST", "/api/v1/admin/experts/{user_id}/reinstate/"): (409,),
    ("POST", "/api/v1/admin/payout-runs/"): (409,),
    ("POST", "/api/v1/admin/payout-runs/{run_id}/approve/"): (409,),
    ("POST", "/api/v1/admin/payout-runs/{run_id}/execute/"): (409,),
    ("POST", "/api/v1/admin/payout-lines/{line_id}/retry/"): (409,),
    ("POST", "/api/v1/exams/{exam_id}/attempts/"): (409, 429),
    ("POST", "/api/v1/attempts/{attempt_id}/submit/"): (409, 410),
    ("POST", "/api/v1/labs/{lab_id}/members/"): (409,),
    ("GET", "/api/v1/exports/{job_id}/download/"): (409,),
    ("PATCH", "/api/v1/projects/{project_id}/"): (409,),
    ("PATCH", "/api/v1/projects/{project_id}/feed/"): (404,),
    ("POST", "/api/v1/projects/{project_id}/publish/"): (409,),
    ("POST", "/api/v1/projects/{project_id}/pause/"): (409,),
    ("POST", "/api/v1/projects/{project_id}/close/"): (409,),
    ("POST", "/api/v1/projects/{project_id}/rubric-versions/"): (409,),
    ("POST", "/api/v1/projects/{project_id}/items/import/"): (409,),
    ("POST", "/api/v1/projects/{project_id}/gold/import/"): (409,),
    ("POST", "/api/v1/projects/{project_id}/feed/"): (409, 429),
    ("POST", "/api/v1/projects/{project_id}/fund/"): (409,),
    ("POST", "/api/v1/tasks/next/"): (404,),
    ("POST", "/api/v1/reviews/next/"): (404,),
    ("POST", "/api/v1/reviews/{review_id}/decide/"): (409,),
    ("POST", "/api/v1/assignments/{assignment_id}/release/"): (409,),
    ("POST", "/api/v1/assignments/{assignment_id}/submit/"): (409, 410),
    ("POST", "/api/v1/me/quality-stops/{stop_id}/appeal/"): (409,),
    ("POST", "/api/v1/admin/quality-stops/{stop_id}/decide/"): (409,),
}
# Operations that call Stripe while the client waits: when Stripe is unreachable they answer
# 503 (the provider is down, not the request wrong), never a bare 500.
PROVIDER_ERRORS = {
    ("POST", "/api/v1/projects/{project_id}/fund/"),
    ("POST", "/api/v1/me/payout-account/"),
    ("POST", "/api/v1/admin/payout-lines/{line_id}/retry/"),
}


class AutoSchema(BaseAutoSchema):
    """Every operation documents the error answers it can give, in the shared error body:
    400 always (the input guard reads every request), 401 and 403 unless anyone may call it,
    404 when the path names an object, 413 and 415 when it takes a body; EXTRA_ERRORS adds the 404,
    409, 410 and 429 that particular operations answer, PROVIDER_ERRORS the 503 of those that
    wait on Stripe."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        bodies: dict[str, Any] = super()._get_response_bodies(direction)
        for code in self._error_codes():
            bodies.setdefault(code, {"description": ERROR_DESCRIPTIONS[code]})
        for code, body in bodies.items():
            # A view may describe an error answer in words only; its body is the error shape.
            if code >= "400" and "content" not in body:
                bodies[code] = self._get_response_for_code(
                    OpenApiResponse(
                        ErrorSerializer,
                        description=body.get("description") or ERROR_DESCRIPTIONS.get(code, ""),
                    ),
                    code,
                    direction=direction,
                )
        return bodies

    def _error_codes(self) -> list[str]:
        codes = ["400"]
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        extra = list(EXTRA_ERRORS.get((self.method, self.path), ()))
        if (self.method, self.path) in PROVIDER_ERRORS:
            extra.append(503)
        if self._is_idempotent():
            extra += [409, 422]
        return codes + sorted({str(code) for code in extra if str(code) not in codes})

    def _is_idempotent(self) -> bool:
        handler = getattr(self.view, self.method.lower(), None)
        return bool(getattr(handler, "idempotent", False))

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self._is_idempotent():
            parameters.append(PARAMETER)
        return parameters
