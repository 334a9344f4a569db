"""The mock provider's signed delivery reports (``POST /v1/dlr/mock``).

    X-Signature-Timestamp: 1764340000
    X-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

The mock's own scheme, as Twilio has its own (``providers.twilio``); the
gateway's callbacks to clients follow Standard Webhooks instead
(``domain.signing``). A signature older than the tolerance (5 minutes) is
refused, so a captured request cannot be replayed later. ``verify`` takes the
headers as they arrive, whatever they hold, and answers False to anything odd.
"""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_S = 300
SCHEME = "v1"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
SIGNATURE_HEADER = "X-Signature"
# A unix time has 10 digits until 2286; a header holds a few signatures at most.
MAX_TIMESTAMP_CHARS = 12
MAX_SIGNATURE_CHARS = 1024


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signature_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Both headers of a report signed at ``timestamp``."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """True if ``signature`` signs ``body`` at ``timestamp``, within the tolerance.

    Never raises: a missing, empty, non-ASCII or oversized header is False.
    """
    if not timestamp or not signature or len(timestamp) > MAX_TIMESTAMP_CHARS \
            or len(signature) > MAX_SIGNATURE_CHARS:
        return False
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
        return False
    ts = int(timestamp)
    if abs(now - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body).encode()
    # Several signatures may be sent during a secret rotation: any may match.
    return any(hmac.compare_digest(expected, part.strip().encode())
               for part in signature.split(","))
