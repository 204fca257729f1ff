"""A small, stateful, Stripe-compatible HTTP server for tests and the embedded demo.

It speaks Stripe's wire format (form-encoded bodies with bracket notation in, JSON objects with
`id`/`object` out, Stripe-shaped errors) for the endpoints the project uses: accounts, account
links, balance, checkout sessions (with a list filtered by payment intent), payment intents,
charges, refunds, disputes, transfers (with list filters), transfer reversals (full or partial,
and their list), payouts and events. It honours `Idempotency-Key` as Stripe does: the same key
and the same request replay the stored response (a 5xx included), the same key with another
request is a 400 `idempotency_error`; keys expire after `idempotency_window_seconds`.

Test-only control routes under `/_test/` fund the platform balance, inject faults (fail the
next N calls with 500, answer 429, drop the response of a committed call), flip an account's
`transfers` capability, reverse a transfer (`{"amount"}` for a partial reversal), refund or
dispute a paid checkout's charge (`/_test/charges/<id>/refund`, `.../dispute`), close a dispute
won or lost (`/_test/disputes/<id>/close`), fail a connected account's payout, and register
webhook endpoints. The same actions are methods of `LocalStripe` (`checkout_pay`,
`reversal_create`, `refund_create`, `dispute_create`, `dispute_close`, `payout_create`,
`payout_fail`). Webhooks are signed exactly like Stripe's
(`Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "t.payload")`).

It depends on the standard library only, so it runs alone (`manage.py stripe_local`) or in a
thread inside a test process.

Past 400 lines on purpose: a test double, one route table read against Stripe's API reference;
splitting it would scatter the shared in-memory state and idempotency handling.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Deliver = Callable[[str, bytes, dict[str, str]], None]


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding: `a[b][c]=1`, `items[0][x]=y`, `list[]=v` -> nested values."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "[]":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {key: _listify(value) for key, value in node.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return node


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value for a payload, exactly as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    signature = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


class StripeError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        return {"error": error}


@dataclass
class Faults:
    fail_next: int = 0
    fail_status: int = 500
    rate_limit_next: int = 0
    drop_next: int = 0


@dataclass
class StoredResponse:
    fingerprint: str
    status: int
    body: dict[str, Any]
    created: float


@dataclass
class State:
    public_url: str = "http://127.0.0.1:12111"
    idempotency_window_seconds: float = 24 * 3600
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    balance: dict[str, int] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], StoredResponse] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    webhooks: list[tuple[str, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    deliver: Deliver | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    calls: int = 0


PREFIXES = {
    "account": "acct",
    "account_link": "link",
    "checkout.session": "cs_test",
    "payment_intent": "pi",
    "charge": "ch",
    "refund": "re",
    "dispute": "dp",
    "transfer": "tr",
    "transfer_reversal": "trr",
    "payout": "po",
    "event": "evt",
}


class LocalStripe:
    """The server's behaviour, independent of HTTP (the handler below adapts it)."""

    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()

    # --- helpers -----------------------------------------------------------------------------
    def _new(self, kind: str, **fields: Any) -> dict[str, Any]:
        object_id = f"{PREFIXES[kind]}_{secrets.token_hex(12)}"
        obj = {"id": object_id, "object": kind, "created": int(time.time()), "livemode": False}
        obj.update(fields)
        self.state.objects[object_id] = obj
        return obj

    def _get(self, object_id: str, kind: str) -> dict[str, Any]:
        obj = self.state.objects.get(object_id)
        if obj is None or obj["object"] != kind:
            raise StripeError(
                404,
                "invalid_request_error",
                f"No such {kind.split('.')[-1]}: '{object_id}'",
                "resource_missing",
            )
        return obj

    def emit(self, event_type: str, obj: dict[str, Any], account: str | None = None) -> None:
        event = self._new(
            "event",
            type=event_type,
            api_version="2025-01-01",
            data={"object": json.loads(json.dumps(obj))},
            pending_webhooks=len(self.state.webhooks),
            request={"id": None, "idempotency_key": None},
        )
        if account:
            event["account"] = account
        self.state.events.append(event)
        payload = json.dumps(event).encode()
        for url, secret in list(self.state.webhooks):
            headers = {"Stripe-Signature": sign_payload(payload, secret)}
            self._deliver(url, payload, headers)

    def _deliver(self, url: str, payload: bytes, headers: dict[str, str]) -> None:
        if self.state.deliver is not None:
            self.state.deliver(url, payload, headers)
            return
        request = urllib.request.Request(  # noqa: S310  (a configured local webhook URL)
            url, data=payload, headers={**headers, "Content-Type": "application/json"}
        )

        def send() -> None:
            # A failed delivery is dropped here (Stripe would retry); the event stays listable.
            with contextlib.suppress(Exception):
                urllib.request.urlopen(request, timeout=10).read()  # noqa: S310

        # Asynchronously, as Stripe does: the receiving site reads the object back from this
        # server before it answers, and this call may hold the state lock.
        threading.Thread(target=send, name="stripe-local-webhook", daemon=True).start()

    @staticmethod
    def _amount(params: dict[str, Any], name: str = "amount") -> int:
        raw = params.get(name)
        if raw is None or not str(raw).isdigit() or int(raw) <= 0:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Invalid positive integer: {name}",
                "parameter_invalid_integer",
            )
        return int(raw)

    # --- API --------------------------------------------------------------------------------
    def handle(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = [part for part in path.split("/") if part][1:]  # drop "v1"
        route = (method, tuple(parts[:1]), len(parts))
        resource = parts[0] if parts else ""
        if resource == "accounts":
            if method == "POST" and len(parts) == 1:
                return 200, self.account_create(params)
            if method == "GET" and len(parts) == 2:
                return 200, self._get(parts[1], "account")
            if method == "POST" and len(parts) == 2:
                account = self._get(parts[1], "account")
                account.setdefault("metadata", {}).update(params.get("metadata", {}))
                return 200, account
        if resource == "account_links" and method == "POST":
            return 200, self.account_link_create(params)
        if resource == "balance" and method == "GET":
            return 200, self.balance_object()
        if resource == "checkout" and len(parts) >= 2 and parts[1] == "sessions":
            if method == "POST" and len(parts) == 2:
                return 200, self.checkout_create(params)
            if method == "GET" and len(parts) == 2:
                return 200, self._filtered("checkout.session", params, ("payment_intent",))
            if method == "GET" and len(parts) == 3:
                return 200, self._get(parts[2], "checkout.session")
        if resource == "payment_intents" and method == "GET" and len(parts) == 2:
            return 200, self._get(parts[1], "payment_intent")
        if resource == "charges" and method == "GET" and len(parts) == 2:
            return 200, self._get(parts[1], "charge")
        if resource == "refunds":
            if method == "POST" and len(parts) == 1:
                return 200, self.refund_create(params)
            if method == "GET" and len(parts) == 1:
                return 200, self._filtered("refund", params, ("charge", "payment_intent"))
            if method == "GET" and len(parts) == 2:
                return 200, self._get(parts[1], "refund")
        if resource == "disputes" and method == "GET" and len(parts) == 2:
            return 200, self._get(parts[1], "dispute")
        if resource == "transfers":
            if method == "POST" and len(parts) == 1:
                return 200, self.transfer_create(params)
            if method == "GET" and len(parts) == 1:
                return 200, self.transfer_list(params)
            if method == "GET" and len(parts) == 2:
                return 200, self._get(parts[1], "transfer")
            if method == "POST" and len(parts) == 3 and parts[2] == "reversals":
                return 200, self.reversal_create(parts[1], params)
            if method == "GET" and len(parts) == 3 and parts[2] == "reversals":
                transfer = self._get(parts[1], "transfer")
                return 200, self._list(transfer["reversals"]["data"][::-1], params)
        if resource == "payouts":
            if method == "POST" and len(parts) == 1:
                return 200, self.payout_create(params)
            if method == "GET" and len(parts) == 2:
                return 200, self._get(parts[1], "payout")
        if resource == "events":
            if method == "GET" and len(parts) == 1:
                return 200, self._list(self.state.events[::-1], params)
            if method == "GET" and len(parts) == 2:
                return 200, self._get(parts[1], "event")
        del route
        raise StripeError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})"
        )

    def account_create(self, params: dict[str, Any]) -> dict[str, Any]:
        requested = params.get("capabilities", {}).get("transfers", {}).get("requested")
        return self._new(
            "account",
            type=params.get("type"),
            controller=params.get("controller", {}),
            country=params.get("country", "US"),
            email=params.get("email"),
            metadata=params.get("metadata", {}),
            capabilities={"transfers": "inactive"} if requested else {},
            charges_enabled=False,
            payouts_enabled=False,
            details_submitted=False,
        )

    def account_link_create(self, params: dict[str, Any]) -> dict[str, Any]:
        account = self._get(str(params.get("account")), "account")
        token = secrets.token_urlsafe(16)
        link = self._new(
            "account_link",
            url=f"{self.state.public_url}/onboard/{account['id']}?token={token}",
            expires_at=int(time.time()) + 300,
            return_url=params.get("return_url"),
            refresh_url=params.get("refresh_url"),
        )
        self.state.objects[f"onboarding:{account['id']}"] = link
        return link

    def onboarding_complete(self, account_id: str) -> dict[str, Any]:
        account = self._get(account_id, "account")
        account.update(details_submitted=True, charges_enabled=True, payouts_enabled=True)
        if "transfers" in account["capabilities"]:
            account["capabilities"]["transfers"] = "active"
        self.emit("account.updated", account, account=account_id)
        return account

    def set_capability(self, account_id: str, status: str) -> dict[str, Any]:
        account = self._get(account_id, "account")
        account["capabilities"]["transfers"] = status
        self.emit("account.updated", account, account=account_id)
        return account

    def balance_object(self) -> dict[str, Any]:
        available = [
            {"amount": amount, "currency": currency}
            for currency, amount in sorted(self.state.balance.items())
        ]
        return {"object": "balance", "livemode": False, "available": available, "pending": []}

    def checkout_create(self, params: dict[str, Any]) -> dict[str, Any]:
        items = params.get("line_items") or []
        if not items:
            raise StripeError(400, "invalid_request_error", "Missing required param: line_items.")
        total = 0
        currency = None
        for item in items:
            price = item.get("price_data", {})
            total += self._amount(price, "unit_amount") * int(item.get("quantity", 1))
            currency = price.get("currency")
        session = self._new(
            "checkout.session",
            mode=params.get("mode", "payment"),
            amount_total=total,
            currency=currency,
            metadata=params.get("metadata", {}),
            client_reference_id=params.get("client_reference_id"),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            status="open",
            payment_status="unpaid",
            payment_intent=None,
        )
        session["url"] = f"{self.state.public_url}/pay/{session['id']}"
        return session

    def checkout_pay(self, session_id: str) -> dict[str, Any]:
        session = self._get(session_id, "checkout.session")
        if session["status"] == "complete":
            return session
        intent = self._new(
            "payment_intent",
            amount=session["amount_total"],
            amount_received=session["amount_total"],
            currency=session["currency"],
            status="succeeded",
            metadata=session["metadata"],
        )
        charge = self._new(
            "charge",
            amount=session["amount_total"],
            amount_captured=session["amount_total"],
            amount_refunded=0,
            currency=session["currency"],
            payment_intent=intent["id"],
            paid=True,
            captured=True,
            refunded=False,
            disputed=False,
            status="succeeded",
            metadata=session["metadata"],
        )
        intent["latest_charge"] = charge["id"]
        session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
        currency = session["currency"]
        self.state.balance[currency] = self.state.balance.get(currency, 0) + session["amount_total"]
        self.emit("checkout.session.completed", session)
        return session

    def transfer_create(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = self._amount(params)
        currency = str(params.get("currency", "")).lower()
        destination = self._get(str(params.get("destination")), "account")
        if destination["capabilities"].get("transfers") != "active":
            raise StripeError(
                400,
                "invalid_request_error",
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                "insufficient_capabilities_for_transfer",
            )
        if self.state.balance.get(currency, 0) < amount:
            raise StripeError(
                400,
                "invalid_request_error",
                "You have insufficient available funds in your Stripe account.",
                "balance_insufficient",
            )
        self.state.balance[currency] -= amount
        transfer = self._new(
            "transfer",
            amount=amount,
            amount_reversed=0,
            currency=currency,
            destination=destination["id"],
            transfer_group=params.get("transfer_group"),
            metadata=params.get("metadata", {}),
            reversed=False,
            reversals={"object": "list", "data": [], "has_more": False},
        )
        self.emit("transfer.created", transfer)
        return transfer

    def transfer_list(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [obj for obj in self.state.objects.values() if obj["object"] == "transfer"]
        if params.get("transfer_group"):
            rows = [row for row in rows if row["transfer_group"] == params["transfer_group"]]
        if params.get("destination"):
            rows = [row for row in rows if row["destination"] == params["destination"]]
        rows.sort(key=lambda row: (row["created"], row["id"]), reverse=True)
        return self._list(rows, params)

    def _list(self, rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
        limit = min(int(params.get("limit", 10)), 100)
        after = params.get("starting_after")
        if after:
            ids = [row["id"] for row in rows]
            rows = rows[ids.index(after) + 1 :] if after in ids else []
        return {
            "object": "list",
            "url": "/v1/list",
            "data": rows[:limit],
            "has_more": len(rows) > limit,
        }

    def reversal_create(self, transfer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        transfer = self._get(transfer_id, "transfer")
        remaining = transfer["amount"] - transfer["amount_reversed"]
        amount = int(params["amount"]) if params.get("amount") else remaining
        if amount <= 0 or amount > remaining:
            raise StripeError(400, "invalid_request_error", "Invalid reversal amount.")
        reversal = self._new(
            "transfer_reversal",
            amount=amount,
            currency=transfer["currency"],
            transfer=transfer_id,
            metadata=params.get("metadata", {}),
        )
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        transfer["reversals"]["data"].append(reversal)
        self.state.balance[transfer["currency"]] = (
            self.state.balance.get(transfer["currency"], 0) + amount
        )
        self.emit("transfer.reversed", transfer)
        return reversal

    def payout_create(self, params: dict[str, Any], account: str | None = None) -> dict[str, Any]:
        """A payout to a bank; with `account`, a connected account's payout (its events carry
        the account, as Stripe's Connect events do)."""
        amount = self._amount(params)
        payout = self._new(
            "payout",
            amount=amount,
            currency=params.get("currency", "usd"),
            status="paid",
            arrival_date=int(time.time()),
            failure_code=None,
            failure_message=None,
        )
        self.emit("payout.paid", payout, account=account)
        return payout

    def payout_fail(
        self, payout_id: str, message: str, account: str | None = None
    ) -> dict[str, Any]:
        """The bank returned the money: Stripe reports `payout.failed` (also after `paid`)."""
        payout = self._get(payout_id, "payout")
        payout.update(status="failed", failure_code="account_closed", failure_message=message)
        self.emit("payout.failed", payout, account=account)
        return payout

    def _filtered(
        self, kind: str, params: dict[str, Any], filters: tuple[str, ...]
    ) -> dict[str, Any]:
        rows = [obj for obj in self.state.objects.values() if obj["object"] == kind]
        for name in filters:
            if params.get(name):
                rows = [row for row in rows if row.get(name) == params[name]]
        rows.sort(key=lambda row: (row["created"], row["id"]), reverse=True)
        return self._list(rows, params)

    def refund_create(self, params: dict[str, Any]) -> dict[str, Any]:
        """Refund (part of) a charge: the money leaves the platform balance at once."""
        if params.get("charge"):
            charge = self._get(str(params["charge"]), "charge")
        elif params.get("payment_intent"):
            intent = self._get(str(params["payment_intent"]), "payment_intent")
            charge = self._get(str(intent.get("latest_charge")), "charge")
        else:
            raise StripeError(400, "invalid_request_error", "Missing required param: charge.")
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = self._amount(params) if params.get("amount") else remaining
        if amount <= 0 or amount > remaining:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                "amount_too_large",
            )
        refund = self._new(
            "refund",
            amount=amount,
            currency=charge["currency"],
            charge=charge["id"],
            payment_intent=charge["payment_intent"],
            status="succeeded",
            reason=params.get("reason"),
            metadata=params.get("metadata", {}),
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        currency = charge["currency"]
        self.state.balance[currency] = self.state.balance.get(currency, 0) - amount
        self.emit("refund.created", refund)
        self.emit("charge.refunded", charge)
        return refund

    def dispute_create(self, charge_id: str, amount: int | None = None) -> dict[str, Any]:
        """The cardholder's bank disputes a charge: Stripe withdraws the amount at once."""
        charge = self._get(charge_id, "charge")
        disputed = amount or charge["amount"] - charge["amount_refunded"]
        dispute = self._new(
            "dispute",
            amount=disputed,
            currency=charge["currency"],
            charge=charge["id"],
            payment_intent=charge["payment_intent"],
            status="needs_response",
            reason="fraudulent",
            is_charge_refundable=False,
            metadata={},
        )
        charge["disputed"] = True
        currency = charge["currency"]
        self.state.balance[currency] = self.state.balance.get(currency, 0) - disputed
        self.emit("charge.dispute.created", dispute)
        self.emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    def dispute_close(self, dispute_id: str, status: str) -> dict[str, Any]:
        """Close a dispute `won` (the money comes back) or `lost` (it stays with the bank)."""
        if status not in ("won", "lost"):
            raise StripeError(400, "invalid_request_error", "A dispute closes won or lost.")
        dispute = self._get(dispute_id, "dispute")
        dispute["status"] = status
        if status == "won":
            currency = dispute["currency"]
            self.state.balance[currency] = self.state.balance.get(currency, 0) + dispute["amount"]
            self.emit("charge.dispute.funds_reinstated", dispute)
        self.emit("charge.dispute.closed", dispute)
        return dispute


def _fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()


class Handler(BaseHTTPRequestHandler):
    server: LocalStripeHTTPServer
    protocol_version = "HTTP/1.1"
    # Buffered output, flushed once per response, with Nagle off: headers and body written
    # separately would otherwise wait for the client's delayed ACK, 40 ms per call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests and the demo
        return

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    def _body(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length).decode() if length else ""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        stripe = self.server.stripe
        url = urlsplit(self.path)
        raw = self._body() if method == "POST" else ""
        query = decode_form(url.query)
        if url.path.startswith("/_test/"):
            self._control(url.path, json.loads(raw or "{}"))
            return
        if url.path.startswith(("/pay/", "/onboard/")):
            self._page(method, url.path)
            return
        if not (self.headers.get("Authorization") or "").startswith("Bearer sk_"):
            error = StripeError(401, "invalid_request_error", "Invalid API Key provided.")
            self._send(401, error.body())
            return
        params = decode_form(raw) if method == "POST" else query
        key = self.headers.get("Idempotency-Key")
        api_key = self.headers.get("Authorization", "")
        with stripe.state.lock:
            stripe.state.calls += 1
            now = time.time()
            if key and method == "POST":
                stored = stripe.state.idempotency.get((api_key, key))
                if stored and now - stored.created > stripe.state.idempotency_window_seconds:
                    stored = None
                    del stripe.state.idempotency[(api_key, key)]
                fingerprint = _fingerprint(method, url.path, params)
                if stored is not None:
                    if stored.fingerprint != fingerprint:
                        error = StripeError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with.",
                        )
                        self._send(400, error.body())
                        return
                    self._send(stored.status, stored.body)
                    return
            faults = stripe.state.faults
            if faults.rate_limit_next > 0:
                faults.rate_limit_next -= 1
                error = StripeError(
                    429, "invalid_request_error", "Too many requests.", "rate_limit"
                )
                self._send(429, error.body())
                return
            if faults.fail_next > 0:
                faults.fail_next -= 1
                status, body = (
                    faults.fail_status,
                    StripeError(
                        faults.fail_status, "api_error", "An unknown error occurred (injected)."
                    ).body(),
                )
            else:
                try:
                    status, body = stripe.handle(method, url.path, params)
                except StripeError as error:
                    status, body = error.status, error.body()
            if key and method == "POST" and status != 429:
                stripe.state.idempotency[(api_key, key)] = StoredResponse(
                    _fingerprint(method, url.path, params), status, body, now
                )
            drop = faults.drop_next > 0 and method == "POST"
            if drop:
                faults.drop_next -= 1
        if drop:
            # The call took effect, but the client never hears back: a lost response.
            self.close_connection = True
            return
        self._send(status, body)

    def _control(self, path: str, data: dict[str, Any]) -> None:
        stripe = self.server.stripe
        with stripe.state.lock:
            if path == "/_test/balance":
                currency = data.get("currency", "usd")
                stripe.state.balance[currency] = stripe.state.balance.get(currency, 0) + int(
                    data["amount"]
                )
                self._send(200, stripe.balance_object())
            elif path == "/_test/faults":
                for name in ("fail_next", "fail_status", "rate_limit_next", "drop_next"):
                    if name in data:
                        setattr(stripe.state.faults, name, int(data[name]))
                self._send(200, stripe.state.faults.__dict__)
            elif path == "/_test/idempotency_window":
                stripe.state.idempotency_window_seconds = float(data["seconds"])
                self._send(200, {"seconds": stripe.state.idempotency_window_seconds})
            elif path == "/_test/webhooks":
                stripe.state.webhooks.append((data["url"], data["secret"]))
                self._send(200, {"endpoints": len(stripe.state.webhooks)})
            elif path.startswith("/_test/accounts/"):
                account_id = path.split("/")[3]
                self._send(200, stripe.set_capability(account_id, data.get("transfers", "active")))
            elif path.startswith("/_test/checkout/"):
                self._send(200, stripe.checkout_pay(path.split("/")[3]))
            elif path.startswith("/_test/onboard/"):
                self._send(200, stripe.onboarding_complete(path.split("/")[3]))
            elif path.startswith("/_test/transfers/"):
                transfer_id = path.split("/")[3]
                reversal = {"amount": str(data["amount"])} if data.get("amount") else {}
                self._send(200, stripe.reversal_create(transfer_id, reversal))
            elif path.startswith("/_test/charges/") and path.endswith("/refund"):
                refund = {"charge": path.split("/")[3]}
                if data.get("amount"):
                    refund["amount"] = str(data["amount"])
                self._send(200, stripe.refund_create(refund))
            elif path.startswith("/_test/charges/") and path.endswith("/dispute"):
                amount = int(data["amount"]) if data.get("amount") else None
                self._send(200, stripe.dispute_create(path.split("/")[3], amount))
            elif path.startswith("/_test/disputes/"):
                self._send(200, stripe.dispute_close(path.split("/")[3], data.get("status", "")))
            elif path.startswith("/_test/payouts/"):
                payout_id = path.split("/")[3]
                message = data.get("message", "The bank account was closed.")
                self._send(200, stripe.payout_fail(payout_id, message, data.get("account")))
            else:
                self._send(404, {"error": {"type": "invalid_request_error", "message": path}})

    def _page(self, method: str, path: str) -> None:
        stripe = self.server.stripe
        kind, object_id = path.strip("/").split("/")[:2]
        with stripe.state.lock:
            try:
                if kind == "pay":
                    session = stripe._get(object_id, "checkout.session")
                    if method == "POST":
                        session = stripe.checkout_pay(object_id)
                        self._redirect(session.get("success_url") or "/")
                        return
                    title = f"Pay {session['amount_total'] / 100:.2f} {session['currency'].upper()}"
                else:
                    account = stripe._get(object_id, "account")
                    if method == "POST":
                        stripe.onboarding_complete(object_id)
                        link = stripe.state.objects.get(f"onboarding:{object_id}", {})
                        self._redirect(link.get("return_url") or "/")
                        return
                    title = f"Finish onboarding of {account['id']}"
            except StripeError as error:
                self._send(error.status, html.escape(error.message), "text/plain; charset=utf-8")
                return
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>"
            "<p>Local Stripe test server: no real money moves.</p>"
            f"<h1>{html.escape(title)}</h1><form method='post'>"
            "<button type='submit' id='pay'>Pay (test)</button></form></body></html>"
        )
        self._send(200, page, "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()


class LocalStripeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], stripe: LocalStripe) -> None:
        super().__init__(address, Handler)
        self.stripe = stripe


@dataclass
class RunningServer:
    server: LocalStripeHTTPServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def stripe(self) -> LocalStripe:
        return self.server.stripe

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, deliver: Deliver | None = None
) -> RunningServer:
    stripe = LocalStripe(State(deliver=deliver))
    server = LocalStripeHTTPServer((host, port), stripe)
    actual_host, actual_port = server.server_address[:2]
    stripe.state.public_url = f"http://{actual_host!s}:{actual_port}"
    thread = threading.Thread(target=server.serve_forever, name="stripe-local", daemon=True)
    thread.start()
    return RunningServer(server, thread)
