"""The one error body for the whole API, at the HTTP edge.

Every 4xx is `{"error": {"code", "message", "details"}}`. Validation errors list every problem
found as `{"field": "<dotted.path>" | null, "message", "code"}` (or `"line"` for JSON Lines).
Domain errors (`marketplace.errors`) and DRF's own exceptions are both translated here.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found as django_page_not_found
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from marketplace.errors import DomainError

logger = logging.getLogger(__name__)


DEFAULT_ERROR_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def flatten_validation_errors(detail: Any, path: str = "") -> list[dict[str, Any]]:
    """Turn DRF's nested error structure into a flat list naming each field path."""
    problems: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                child = path
            elif isinstance(key, int):
                # DRF reports a list field's errors as {index: errors}.
                child = f"{path}[{key}]"
            else:
                child = f"{path}.{key}" if path else str(key)
            problems.extend(flatten_validation_errors(value, child))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                problems.extend(flatten_validation_errors(value, f"{path}[{index}]"))
            else:
                problems.extend(flatten_validation_errors(value, path))
    else:
        problems.append(
            {
                "field": path or None,
                "message": str(detail),
                "code": getattr(detail, "code", None) or "invalid",
            }
        )
    return problems


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        refused = Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
        if exc.status_code in (429, 503):
            refused["Retry-After"] = str(_retry_after_seconds(exc.details))
        return refused
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        # Unexpected: let Django's 500 handling (and logging) take it.
        return None

    if isinstance(exc, exceptions.ValidationError):
        problems = flatten_validation_errors(exc.detail)
        noun = "problem" if len(problems) == 1 else "problems"
        message = (
            problems[0]["message"]
            if len(problems) == 1 and problems[0]["field"] is None
            else f"The request has {len(problems)} {noun}."
        )
        response.data = error_body("validation_error", message, problems)
        return response

    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, dict | list):
            message = "; ".join(p["message"] for p in flatten_validation_errors(detail))
        else:
            message = str(detail)
        code = getattr(detail, "code", None)
        if not code or code in ("error", "invalid"):
            code = DEFAULT_ERROR_CODES.get(response.status_code, "error")
        details = getattr(exc, "details", None)
        wait = getattr(exc, "wait", None)
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            details = {"retry_after_seconds": int(wait)}
        response.data = error_body(code, message, details)
        if response.status_code == 429 and "Retry-After" not in response:
            response["Retry-After"] = str(_retry_after_seconds(details))
    return response


def _retry_after_seconds(details: Any) -> int:
    """When a 429's details say when to come back, the Retry-After header says it too."""

    if isinstance(details, dict):
        for key in ("retry_after_seconds", "retry_after"):
            if isinstance(details.get(key), int | float):
                return max(1, math.ceil(details[key]))
        when = details.get("next_attempt_at")
        if isinstance(when, str):
            try:
                moment = datetime.fromisoformat(when)
            except ValueError:
                moment = None
            if moment is not None:
                return max(1, math.ceil((moment - timezone.now()).total_seconds()))
    return 60


def _is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api_path(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)

    return django_page_not_found(request, exception or Http404())


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's own 400s (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a disallowed host...)."""
    if _is_api_path(request) or request.path.startswith(HEADLESS_PREFIX):
        if isinstance(exception, RequestDataTooBig | TooManyFieldsSent | TooManyFilesSent):
            return error_response(
                request, 413, "payload_too_large", "The request body is too large."
            )
        return error_response(request, 400, "bad_request", "Bad request.")

    return django_bad_request(request, exception or Exception())


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api_path(request):
        return JsonResponse(
            {
                "error": {
                    "code": "server_error",
                    "message": "Internal server error.",
                    "details": None,
                }
            },
            status=500,
        )

    return django_server_error(request)


# allauth's headless API answers errors as `{"status", "errors": [{"message", "code"}]}`; what
# this project answers on its paths carries that shape beside ours, so both kinds of client read it.
HEADLESS_PREFIX = "/_allauth/"


def error_response(
    request: HttpRequest, status_code: int, code: str, message: str, details: Any = None
) -> JsonResponse:
    body: dict[str, Any] = error_body(code, message, details)
    if request.path.startswith(HEADLESS_PREFIX):
        body["status"] = status_code
        problems = details if isinstance(details, list) and details else None
        body["errors"] = (
            [
                {"message": problem["message"], "code": problem["code"], "param": problem["field"]}
                for problem in problems
            ]
            if problems
            else [{"message": message, "code": code}]
        )
    return JsonResponse(body, status=status_code)
