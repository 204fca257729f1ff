"""Domain errors: what a service or selector raises when a business rule refuses a request.

They know nothing of HTTP frameworks: `marketplace.http_errors` translates them (and DRF's own
exceptions) into the one error body `{"error": {"code", "message", "details"}}` at the API edge,
and `marketplace.pages.common` into messages on the pages. `status_code` is the HTTP status the
edge answers with; services pick the class or pass it.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A business rule refused the request; services raise it with a specific code."""

    status_code: int = 400
    default_message = "The request was refused."
    default_code = "invalid_request"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: Any = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)
        self.code = code or self.default_code
        if status_code is not None:
            self.status_code = status_code
        self.details = details


class Conflict(DomainError):
    status_code = 409
    default_message = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class Gone(DomainError):
    status_code = 410
    default_message = "The resource is no longer available."
    default_code = "gone"


class NotFoundError(DomainError):
    """Absent, or outside the caller's reach: the API answers 404 either way."""

    status_code = 404
    default_message = "Not found."
    default_code = "not_found"


class DomainValidationError(DomainError):
    """Input a service found invalid, every problem at once: `details` lists them as
    `{"field", "message", "code"}`, as the API's serializers do."""

    default_code = "validation_error"

    def __init__(self, problems: dict[str | None, str]) -> None:
        listed = [
            {"field": field, "message": message, "code": "invalid"}
            for field, message in problems.items()
        ]
        noun = "problem" if len(listed) == 1 else "problems"
        message = (
            listed[0]["message"]
            if len(listed) == 1 and listed[0]["field"] is None
            else f"The request has {len(listed)} {noun}."
        )
        super().__init__(message, details=listed)
