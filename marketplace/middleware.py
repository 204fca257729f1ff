"""Security headers, the JSON body guard, and the error shape for every 4xx under /api/."""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, QueryDict

from marketplace import safejson
from marketplace.http_errors import DEFAULT_ERROR_CODES, HEADLESS_PREFIX, error_response
from marketplace.ratelimits import DEFAULT_RETRY_AFTER_SECONDS

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
        "form-action 'self' {checkout}",
        "frame-ancestors 'none'",
    ]
)
# Stripe Checkout's own origin: the console's Fund form redirects there, and Chromium applies
# form-action to a form's redirects too (with 'self' alone, the lab's browser stayed on the page).
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"
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


def _checkout_origin() -> str:
    """Where Checkout pages live: the local Stripe-compatible server when the SDK points at
    one (tests, the demo), Stripe's Checkout otherwise."""
    base = urlsplit(getattr(settings, "STRIPE_API_BASE", "") or "")
    if base.scheme and base.netloc and not base.netloc.endswith("stripe.com"):
        return f"{base.scheme}://{base.netloc}"
    return STRIPE_CHECKOUT_ORIGIN


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            docs = request.path.startswith(DOCS_PREFIXES)
            response["Content-Security-Policy"] = (
                DOCS_POLICY if docs else PAGE_POLICY.format(checkout=_checkout_origin())
            )
        response.setdefault("Referrer-Policy", "same-origin")
        return response


JSON_MEDIA_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")
# Headers that say how to recover from an error and must survive a rewritten body.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Location")


def _media_type(request: HttpRequest) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def _is_json_request(request: HttpRequest) -> bool:
    # allauth's headless views parse every non-GET body as JSON, whatever its content type.
    return bool(JSON_MEDIA_TYPE.match(_media_type(request))) or request.path.startswith(
        HEADLESS_PREFIX
    )


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _too_large(request: HttpRequest) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(
        request,
        413,
        "payload_too_large",
        f"The body is larger than {limit} bytes.",
        {"max_bytes": limit},
    )


def _refused(request: HttpRequest, refused: safejson.JsonRefused) -> HttpResponse:
    details = [problem.as_dict() for problem in refused.problems] or None
    return error_response(request, 400, refused.code, refused.message, details)


def _text_fields_problems(fields: QueryDict, where: str) -> list[safejson.Problem]:
    """NUL in a query parameter or form field (Django decodes both with replacement
    characters, so a lone surrogate cannot arrive this way)."""
    return [
        safejson.Problem(safejson.printable_key(key), f"{where} {found[1]}", found[0])
        for key, values in fields.lists()
        for text in (key, *values)
        if (found := safejson.text_problem(text)) is not None
    ]


class InputGuardMiddleware:
    """Refuse input no code behind it should see, before any of it sees it.

    Every JSON body (DRF's endpoints, allauth's headless API, pages posting JSON) is checked
    here once with `marketplace.safejson`: a body over DATA_UPLOAD_MAX_MEMORY_SIZE answers 413;
    invalid UTF-8, nesting deeper than 64 levels, NUL or lone surrogates in text, and numbers
    no column holds answer 400, in the API's error shape and before anything is written. Query
    strings, form bodies and headers (session tokens, API keys, cookies) are checked for NUL.
    JSON Lines imports stream their bodies and check each line with the same validator.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._check_headers(request) or self._check_query(request)
        if refusal is None:
            if _is_json_request(request):
                refusal = self._check_json(request)
            elif request.method == "POST" and _media_type(request) in FORM_MEDIA_TYPES:
                refusal = self._check_form(request)
        return refusal or self.get_response(request)

    def _check_headers(self, request: HttpRequest) -> HttpResponse | None:
        # Session tokens, API keys and cookies are looked up in the database: a NUL in one
        # is a PostgreSQL error, not an unknown credential.
        problems = [
            safejson.Problem(
                name[5:].replace("_", "-").title(),
                "header contains a NUL character",
                "null_character",
            )
            for name, value in request.META.items()
            if name.startswith("HTTP_") and isinstance(value, str) and "\x00" in value
        ]
        if problems:
            return _refused(
                request, safejson.JsonRefused("bad_header", "A header contains a NUL.", problems)
            )
        return None

    def _check_query(self, request: HttpRequest) -> HttpResponse | None:
        problems = _text_fields_problems(request.GET, "query parameter")
        if problems:
            return _refused(
                request, safejson.JsonRefused("validation_error", "Bad query string.", problems)
            )
        return None

    def _check_form(self, request: HttpRequest) -> HttpResponse | None:
        try:
            problems = _text_fields_problems(request.POST, "field")
        except RequestDataTooBig:
            return _too_large(request)
        if problems:
            return _refused(
                request, safejson.JsonRefused("validation_error", "Bad form body.", problems)
            )
        return None

    def _check_json(self, request: HttpRequest) -> HttpResponse | None:
        try:
            raw = request.body
        except RequestDataTooBig:
            return _too_large(request)
        if not raw:
            return None
        try:
            safejson.screen(safejson.decode(raw))
        except safejson.JsonRefused as refused:
            return _refused(request, refused)
        return None


class ApiErrorShapeMiddleware:
    """Every 4xx under /api/ in the error shape, including the ones Django answers itself
    (an unknown path, in debug mode too; a 400 or 405 from outside DRF); every 429 of
    allauth's headless API with a Retry-After."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        is_api = request.path == "/api" or request.path.startswith("/api/")
        if (
            is_api
            and not request.path.endswith("/")
            and request.method not in ("GET", "HEAD")
            and settings.APPEND_SLASH
        ):
            # CommonMiddleware would redirect a POST to the slashed path (the body is lost on
            # the way) or, in debug mode, raise and answer 500. API paths end in a slash.
            return error_response(
                request,
                404,
                "not_found",
                "Not found. API paths end in a slash.",
                {"path": f"{request.path}/"},
            )
        response = self.get_response(request)
        if (
            response.status_code == 429
            and "Retry-After" not in response
            and request.path.startswith(HEADLESS_PREFIX)
        ):
            response["Retry-After"] = str(DEFAULT_RETRY_AFTER_SECONDS)
        if (
            is_api
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
