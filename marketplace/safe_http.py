"""Outbound HTTP that cannot be aimed at the platform's own network (SSRF).

A target must be https (http only where settings allow it, for local development), its host
must resolve only to public addresses (no loopback, private, link-local such as the cloud
metadata address 169.254.169.254, shared, reserved or multicast ranges), and the connection
goes to the address that was checked, so a DNS answer cannot change between the check and
the request. Redirects are followed by hand, at most a few, each hop checked the same way.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class UnsafeTarget(Exception):
    """The URL points somewhere the platform must not send requests."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str  # the checked IP the connection goes to


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes


def _is_public(address: str) -> bool:
    # A link-local IPv6 answer carries its zone ("fe80::1%eth0"); the zone is not part of it.
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_target(url: str) -> Target:
    """Parse, resolve and vet a URL; raises UnsafeTarget with the reason."""
    parts = urlsplit(url)
    allowed_schemes = {"https"} | ({"http"} if settings.WEBHOOK_ALLOW_HTTP else set())
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget(f"the scheme must be {' or '.join(sorted(allowed_schemes))}")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeTarget("the URL needs a host and no credentials")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise UnsafeTarget("the port is invalid") from error
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UnsafeTarget(f"the host does not resolve: {host}") from error
    addresses = sorted({str(info[4][0]) for info in infos})
    trusted = host in settings.WEBHOOK_UNSAFE_ALLOWED_HOSTS  # tests and local development
    if not addresses or (not trusted and not all(_is_public(a) for a in addresses)):
        raise UnsafeTarget(f"{host} resolves to an address that is not public")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(parts.scheme, host, port, path, addresses[0])


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate verified for the original host."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def safe_post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> Reply:
    """POST `body` to `url`, following up to MAX_REDIRECTS checked redirects."""
    for _ in range(MAX_REDIRECTS + 1):
        target = check_target(url)
        connection: http.client.HTTPConnection
        if target.scheme == "https":
            connection = _PinnedHTTPSConnection(target.host, target.address, target.port, timeout)
        else:
            connection = http.client.HTTPConnection(target.address, target.port, timeout=timeout)
        try:
            host_header = (
                target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
            )
            connection.request("POST", target.path, body, {**headers, "Host": host_header})
            response = connection.getresponse()
            reply = Reply(response.status, response.read(4096))
            location = response.getheader("Location")
        finally:
            connection.close()
        if reply.status in REDIRECTS and location:
            url = urljoin(url, location)
            continue
        return reply
    raise UnsafeTarget("too many redirects")
