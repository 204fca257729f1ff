"""`Idempotency-Key` for the POSTs that create money or objects (issue 17).

A client that is not sure its request arrived (a timeout, a lost response) sends it again with
the same `Idempotency-Key` header, and gets the first answer back instead of a second funding,
project, payout run or import. The rules, as Stripe's API and the IETF draft
(draft-ietf-httpapi-idempotency-key-header) have them:

- A key belongs to one caller (a person or a lab API key) on one endpoint (method and path):
  the same string from someone else, or on another path, is another key.
- The first request with a key claims it (a row, unique per caller, endpoint and key) before
  the view runs. A 2xx answer is stored with a fingerprint of the request (method, full path
  and body); any other answer (a validation error, a refusal, an exception) deletes the claim,
  so a corrected request may use the key again: nothing was done.
- A repeat with the same fingerprint answers the stored status and body, with
  `Idempotent-Replayed: true`, and does nothing again. The same key with another body is
  422 `idempotency_key_reused`; while the first request still runs it is 409
  `idempotency_key_in_flight`. A claim whose request died with its process is not taken over
  (its work may have committed): it answers 409 until it expires, and the client uses a new key.
- Keys expire `IDEMPOTENCY_KEY_TTL_SECONDS` (24 h) after their first request; an expired key is
  a new key. `idempotency_records_purge` deletes expired rows (a daily beat task).

One decorator, `@idempotent`, on the view's `post`; `body_stream(request)` is what a view that
reads its body as a stream (the JSON Lines imports) reads, so the fingerprint is computed while
it reads, without holding the body in memory.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import IO, Any, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from marketplace.errors import Conflict, DomainError
from marketplace.http_errors import error_body
from marketplace.models import IdempotencyRecord, User

HEADER = "Idempotency-Key"
# Visible ASCII, 1 to 255 characters (a UUID is the usual choice).
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
CHUNK = 64 * 1024

PARAMETER = OpenApiParameter(
    name=HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Optional. A unique string (1-255 visible ASCII characters, e.g. a UUID) naming this "
        "request: sent again with the same body, the stored answer is replayed (with "
        "`Idempotent-Replayed: true`) and nothing is done twice; with another body the answer "
        "is 422 `idempotency_key_reused`, and 409 `idempotency_key_in_flight` while the first "
        "request still runs. Keys are per caller and endpoint and expire after 24 hours."
    ),
)


class IdempotencyKeyReused(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


class _HashingReader:
    """A body stream that hashes what is read from it."""

    def __init__(self, stream: Any, digest: Any) -> None:
        self._stream = stream
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._digest.update(chunk)
        return chunk

    def readline(self, size: int = -1) -> bytes:
        line = self._stream.readline(size)
        self._digest.update(line)
        return line

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def drain(self, limit: int | None = None) -> bool:
        """Read (and hash) the rest; False if more than `limit` bytes were left."""
        left = limit
        while chunk := self.read(CHUNK):
            if left is not None:
                left -= len(chunk)
                if left < 0:
                    return False
        return True


def body_stream(request: Request) -> IO[bytes]:
    """The request body as a stream: hashed on the way when an idempotency key is in play."""
    reader = getattr(request, "_idempotency_reader", None)
    return cast(IO[bytes], reader if reader is not None else request._request)


def caller_scope(request: Request) -> str | None:
    api_key = getattr(request.user, "api_key", None)
    if api_key is not None:
        return f"api_key:{api_key.pk}"
    if isinstance(request.user, User):
        return f"user:{request.user.pk}"
    return None


def _digest(request: Request) -> Any:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.get_full_path()}\n".encode())
    return digest


def _claim(
    *, caller: str, endpoint: str, key: str, fingerprint: str
) -> tuple[IdempotencyRecord, bool]:
    """(record, True) if this request claimed the key; (existing record, False) otherwise."""
    now = timezone.now()
    with transaction.atomic():
        # An expired key is a new key.
        IdempotencyRecord.objects.filter(
            caller=caller, endpoint=endpoint, key=key, expires_at__lte=now
        ).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    caller=caller,
                    endpoint=endpoint,
                    key=key,
                    fingerprint=fingerprint,
                    created_at=now,
                    expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
                )
            return record, True
        except IntegrityError:
            pass
    # Claimed by an earlier (or a concurrent) request, which committed its claim first.
    return IdempotencyRecord.objects.get(caller=caller, endpoint=endpoint, key=key), False


def _replay(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Honour `Idempotency-Key` on a DRF view's `post` (see the module's rules)."""

    @functools.wraps(view_method)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        caller = caller_scope(request)
        if key is None or caller is None:
            return view_method(view, request, *args, **kwargs)
        if not KEY.match(key):
            return Response(
                error_body(
                    "invalid_idempotency_key",
                    f"{HEADER} must be 1 to 255 visible ASCII characters.",
                ),
                status=status.HTTP_400_BAD_REQUEST,
            )
        endpoint = f"{request.method} {request.path}"[:300]
        digest = _digest(request)
        streamed = getattr(view, "idempotency_streams_body", False)
        if not streamed:
            digest.update(request._request.body)
        record, claimed = _claim(
            caller=caller,
            endpoint=endpoint,
            key=key,
            fingerprint="" if streamed else digest.hexdigest(),
        )
        if not claimed:
            if record.is_in_flight:
                raise Conflict(
                    f"A request with this {HEADER} is still being processed; "
                    "retry once it has finished.",
                    code="idempotency_key_in_flight",
                )
            # A streamed body is hashed as it is read, never held; one over the import limit
            # cannot be the body of a stored (successful) request.
            fits = (
                _HashingReader(request._request, digest).drain(settings.IMPORT_MAX_BODY_BYTES)
                if streamed
                else True
            )
            if not fits or digest.hexdigest() != record.fingerprint:
                raise IdempotencyKeyReused(
                    f"This {HEADER} was already used for another request (another body or "
                    "path); use a new key for a new request."
                )
            return _replay(record)

        reader = None
        if streamed:
            reader = _HashingReader(request._request, digest)
            request._idempotency_reader = reader  # type: ignore[attr-defined]
        try:
            response = view_method(view, request, *args, **kwargs)
        except BaseException:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            raise
        if not status.is_success(response.status_code):
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            return response
        if reader is not None:
            reader.drain()
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            fingerprint=digest.hexdigest(),
            status_code=response.status_code,
            response_body=response.data,
        )
        return response

    wrapper.idempotent = True  # type: ignore[attr-defined]
    return wrapper


def idempotency_records_purge() -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
