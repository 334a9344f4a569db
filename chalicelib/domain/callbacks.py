"""Client callbacks: which events, their body, their retry schedule, URL rules."""

from __future__ import annotations

import ipaddress
import uuid
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


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a callback URL (shape only; addresses are checked on send)."""
    if len(url) > MAX_URL_CHARS:
        return f"longer than {MAX_URL_CHARS} characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname:
        return "has no host"
    if parts.username or parts.password:
        return "must not carry credentials"
    return None


def is_public_address(address: str) -> bool:
    """False for private, loopback, link-local and other non-global addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return bool(ip.is_global) and not ip.is_multicast
