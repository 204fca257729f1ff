"""Security headers, the JSON body guard, and the error shape for every 4xx under /api/."""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from marketplace import safejson
from marketplace.errors import DEFAULT_ERROR_CODES, HEADLESS_PREFIX, error_response

# No inline script anywhere: every page's behaviour comes from files under /static/. Item text
# is escaped on top of this, so the policy is a second line of defence, not the only one.
PAGE_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# The vendored API explorers (Swagger UI, Redoc) set style attributes and Redoc starts a blob
# worker; scripts still come only from this site.
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_PREFIXES = ("/api/v1/docs/", "/api/v1/redoc/", "/_allauth/openapi")


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            docs = request.path.startswith(DOCS_PREFIXES)
            response["Content-Security-Policy"] = DOCS_POLICY if docs else PAGE_POLICY
        response.setdefault("Referrer-Policy", "same-origin")
        return response


JSON_MEDIA_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
# Headers that say how to recover from an error and must survive a rewritten body.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")


def _is_json_request(request: HttpRequest) -> bool:
    media_type = request.content_type.split(";")[0].strip().lower() if request.content_type else ""
    # allauth's headless views parse every non-GET body as JSON, whatever its content type.
    return bool(JSON_MEDIA_TYPE.match(media_type)) or request.path.startswith(HEADLESS_PREFIX)


class JsonBodyGuardMiddleware:
    """Refuse JSON bodies no parser behind it should see, before any of them sees it.

    Every JSON body (DRF's endpoints, allauth's headless API, pages posting JSON) is checked
    here once with `marketplace.safejson`: a body over DATA_UPLOAD_MAX_MEMORY_SIZE answers 413,
    invalid UTF-8, nesting deeper than 64 levels, NUL or lone surrogates in text, and numbers
    no column holds answer 400, all in the API's error shape and before anything is written.
    JSON Lines imports stream their bodies and check each line with the same validator.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _is_json_request(request):
            refusal = self._check(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> HttpResponse | None:
        try:
            raw = request.body
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return error_response(
                request,
                413,
                "payload_too_large",
                f"The body is larger than {limit} bytes.",
                {"max_bytes": limit},
            )
        if not raw:
            return None
        try:
            safejson.screen(safejson.decode(raw))
        except safejson.JsonRefused as refused:
            details = [problem.as_dict() for problem in refused.problems] or None
            return error_response(request, 400, refused.code, refused.message, details)
        return None


class ApiErrorShapeMiddleware:
    """Every 4xx under /api/ in the error shape, including the ones Django answers itself
    (an unknown path, in debug mode too; a 400 or 405 from outside DRF)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and 400 <= response.status_code < 500
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status_code = response.status_code
            try:
                phrase = HTTPStatus(status_code).phrase
                message = f"{phrase[0]}{phrase[1:].lower()}."
            except ValueError:
                message = "The request was refused."
            replacement = error_response(
                request, status_code, DEFAULT_ERROR_CODES.get(status_code, "error"), message
            )
            for header in KEPT_HEADERS:
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response
