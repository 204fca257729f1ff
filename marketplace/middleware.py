"""Security headers for every response that Django's SecurityMiddleware does not set."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
