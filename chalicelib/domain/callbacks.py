"""Client callbacks: which events, their body, their retry schedule, URL rules."""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.domain.message import Message, rfc3339
from chalicelib.domain.status import Status

EVENT_NAMESPACE = uuid.UUID("0b8f7f0e-3f43-4f0f-8d1b-6f2a1f0c9e7d")
FINAL_EVENTS = frozenset({Status.DELIVERED, Status.FAILED_PERM, Status.CANCELLED})
MAX_URL_CHARS = 2048
FIRST_DELAY_S, MAX_DELAY_S = 30, 7200


def event_id(message_id: str, status: Status) -> str:
    """The same for every duplicate of one event, so receivers can drop repeats."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{message_id}:{status.value}"))


def event_body(message: Message, occurred_at: float) -> dict[str, object]:
    """The JSON a client's callback URL receives."""
    error = None
    if message.error_code or message.error:
        error = {"code": message.error_code, "message": message.error}
    return {
        "event_id": event_id(message.message_id, message.status),
        "message_id": message.message_id,
        "status": message.status.value,
        "client_reference": message.client_reference,
        "parts": message.parts,
        "cost_cents": message.cost_cents,
        "error": error,
        "occurred_at": rfc3339(occurred_at),
    }


def retry_delay(receive_count: int) -> int:
    """Seconds before delivery attempt ``receive_count + 1``: 30 s doubling to 2 h.

    With the queue's maxReceiveCount (``CALLBACK_MAX_RECEIVES``, 20) the last attempt
    comes about 24 h
    after the first; then the event goes to the dead-letter queue.
    """
    return int(min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** max(0, receive_count - 1)))


@dataclass(frozen=True)
class CallbackTarget:
    """A callback URL taken apart: what to resolve, where to connect, what to ask for."""

    scheme: str  # http or https
    host: str  # ASCII (IDNA-encoded) name or IP literal, without brackets
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def literal(self) -> str | None:
        """The host as an IP address, when the URL names one (nothing to resolve)."""
        try:
            return str(ipaddress.ip_address(self.host))
        except ValueError:
            return None


class CallbackUrlError(ValueError):
    """A callback URL that cannot be called as written; the message says why."""


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a callback URL (its shape; addresses are checked on send)."""
    try:
        callback_target(url)
    except CallbackUrlError as exc:
        return str(exc)
    return None


def callback_target(url: str) -> CallbackTarget:
    """Parse ``url`` exactly as the sender will use it; ``CallbackUrlError`` if it cannot be.

    The same function vets a URL when a client gives it (a 400) and when an event is
    delivered, so a URL accepted once is never one that crashes delivery.
    """
    if len(url) > MAX_URL_CHARS:
        raise CallbackUrlError(f"longer than {MAX_URL_CHARS} characters")
    if _bad_chars(url):
        raise CallbackUrlError("contains spaces, control characters or unpaired surrogates")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a bad IPv6 literal, a port out of range or not a number
        raise CallbackUrlError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlError("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise CallbackUrlError("must not carry credentials")
    if not parts.hostname:
        raise CallbackUrlError("has no host")
    if port == 0:
        raise CallbackUrlError("has an invalid port (0)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if not path.isascii():
        raise CallbackUrlError("must be ASCII outside its host (percent-encode the path)")
    host = _ascii_host(parts.hostname, bracketed="[" in parts.netloc)
    return CallbackTarget(parts.scheme, host, port or DEFAULT_PORTS[parts.scheme], path)


DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


def _bad_chars(text: str) -> bool:
    return any(ord(c) <= 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def _ascii_host(hostname: str, bracketed: bool) -> str:
    if bracketed:  # urlsplit has checked it is an IPv6 address; zones are not for us
        if "%" in hostname:
            raise CallbackUrlError("must not name an IPv6 zone")
        return hostname
    try:
        host = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise CallbackUrlError("has a host name that cannot be IDNA-encoded") from None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise CallbackUrlError("has an invalid host name")
    return host


# -- which addresses a callback may reach ---------------------------------------------
# Python's ``is_global`` follows the IANA special-purpose registries, but not all of
# them and not the same in every Python release; these are checked as well, so the
# answer does not move with the interpreter.
_V4_REFUSED = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
))
# Only 2000::/3 is global unicast; inside it, these are not for callbacks.
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_REFUSED = tuple(ipaddress.IPv6Network(n) for n in (
    "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
    "2001:db8::/32", "3fff::/20",  # documentation
))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # reaches the IPv4 address in its last 32 bits
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # reaches the IPv4 address in bits 16-48

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to: IPv4-mapped, NAT64 (64:ff9b::/96), 6to4."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in n for n in _V4_REFUSED)


def _public_v6(ip: ipaddress.IPv6Address) -> bool:
    # Refuses the rest by being outside 2000::/3: IPv4-compatible ::/96, loopback,
    # unique-local, link-local, site-local fec0::/10, multicast, NAT64's local-use
    # 64:ff9b:1::/48, discard 100::/64, SRv6 5f00::/16.
    return (ip in _V6_GLOBAL_UNICAST and ip.is_global
            and not any(ip in n for n in _V6_REFUSED))


def is_public_address(address: str) -> bool:
    """True only for globally reachable unicast addresses (an IPv6 address that carries an
    IPv4 one is judged by the IPv4 address it leads to)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        return _public_v4(embedded) if embedded is not None else _public_v6(ip)
    return _public_v4(ip)


def may_call_address(address: str, allowed: tuple[Network, ...] = ()) -> bool:
    """Whether a callback may connect to ``address``: a public one, or one inside a network
    the operator allowed (``CALLBACK_ALLOWED_NETWORKS``)."""
    if is_public_address(address):
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        forms.append(ip.ipv4_mapped)
    return any(form in network for form in forms for network in allowed
               if form.version == network.version)
