"""Partner webhooks: secrets, Standard Webhooks signatures, and one HTTP POST
that never reaches a private address and never follows a redirect.

The address check runs after DNS resolution, at every attempt, and the request
goes to the very address that was checked (the host name still travels in the
``Host`` header and TLS's SNI), so a name that resolves somewhere else the
second time cannot lead the request inside.
"""

import base64
import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
RESPONSE_LIMIT = 64 * 1024  # bytes of a response read, at most


class AddressRefused(Exception):
    """The URL is not one Refrain may send to; the message says why."""


def secret_new() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_header(
    *, secrets_: list[str], message_id: str, at: datetime, body: str
) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per secret, space-separated
    (two during a rotation's grace period)."""
    return " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body)
        for secret in secrets_
    )


def _refused_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if getattr(address, "ipv4_mapped", None):
        return _refused_reason(address.ipv4_mapped)
    for flag, words in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
        ("is_unspecified", "an unspecified address"),
    ):
        if getattr(address, flag):
            return words
    if not address.is_global:
        return "an address that is not public"
    return ""


def url_problem(url: str) -> str:
    """Why ``url`` cannot be a webhook's address (empty when it can), without
    resolving it: for forms, before anything is stored."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "The URL must start with https:// (or http://)."
    if not parts.hostname:
        return "The URL has no host name."
    if parts.username or parts.password:
        return "The URL must not carry a user name or password."
    if port == 0:
        return "The URL's port is not valid."
    return ""


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, all of them allowed; else
    ``AddressRefused``. Private, loopback, link-local, multicast and reserved
    addresses are refused unless ``REFRAIN_WEBHOOK_ALLOW_PRIVATE`` is on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise AddressRefused(
            f"The host name {host!r} does not resolve ({error})."
        ) from None
    addresses = []
    for info in infos:
        text = info[4][0].split("%", 1)[0]
        address = ipaddress.ip_address(text)
        reason = _refused_reason(address)
        if reason and not settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE:
            raise AddressRefused(
                f"{host} resolves to {text}, {reason}; webhooks are only sent to "
                "public addresses."
            )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise AddressRefused(f"The host name {host!r} does not resolve.")
    return addresses


@dataclass(frozen=True)
class HttpAnswer:
    status: int | None  # None: no answer (refused, timed out, not allowed)
    retry_after: float | None = None
    error: str = ""
    duration_ms: int = 0


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(min(int(value), 86400))
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, min(when.timestamp() - time.time(), 86400.0))


def post(*, url: str, body: bytes, headers: dict[str, str]) -> HttpAnswer:
    """POST ``body`` to ``url``: the address checked after resolution, no
    redirect followed (a 3xx is a failure), ``REFRAIN_WEBHOOK_TIMEOUT_SECONDS``
    to connect and to answer, at most 64 KiB of the answer read."""
    started = time.monotonic()

    def answer(status=None, *, retry_after=None, error="") -> HttpAnswer:
        elapsed = int((time.monotonic() - started) * 1000)
        return HttpAnswer(status, retry_after, error[:300], elapsed)

    problem = url_problem(url)
    if problem:
        return answer(error=problem)
    parts = urlsplit(url)
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = resolve_public(host, port)[0]
    except AddressRefused as refused:
        return answer(error=str(refused))
    timeout = urllib3.Timeout(
        connect=settings.REFRAIN_WEBHOOK_TIMEOUT_SECONDS,
        read=settings.REFRAIN_WEBHOOK_TIMEOUT_SECONDS,
    )
    if parts.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            timeout=timeout,
            retries=False,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default_port = 443 if parts.scheme == "https" else 80
    host_header = host if port == default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
    try:
        with pool:
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers={**headers, "Host": host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                response.read(RESPONSE_LIMIT)
            finally:
                response.release_conn()
    except urllib3.exceptions.HTTPError as error:
        return answer(error=f"{type(error).__name__}: {error}")
    status = response.status
    if 300 <= status < 400:
        return answer(status, error=f"Redirect ({status}) not followed.")
    retry_after = _retry_after(response.headers.get("Retry-After"))
    error = "" if 200 <= status < 300 else f"HTTP {status}"
    return answer(status, retry_after=retry_after, error=error)
