"""HMAC-SHA256 signatures over a timestamp and a body, both directions.

Providers sign the delivery reports they post to us, and we sign the
callbacks we post to clients, the same way (as Stripe does):

    X-Signature-Timestamp: 1764340000
    X-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

A signature older than the tolerance (5 minutes) is refused, so a captured
request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_S = 300
SCHEME = "v1"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_HEADER = "X-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signature_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """True if ``signature`` signs ``body`` at ``timestamp``, within the tolerance."""
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    ts = int(timestamp)
    if abs(now - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body)
    # Several signatures may be sent during a secret rotation: any may match.
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


def derive_secret(master: str, client_id: str, version: int) -> str:
    """A client's webhook secret, derived rather than stored (rotate by bumping ``version``)."""
    mac = hmac.new(master.encode(), f"webhook:{client_id}:{version}".encode(), hashlib.sha256)
    return "whsec_" + mac.hexdigest()[:40]
