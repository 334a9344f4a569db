"""Standard Webhooks signatures on the callbacks the gateway posts to clients.

    webhook-id: <the event's id, the same on every retry>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

as the Standard Webhooks specification (1.0.0) says, so any of its libraries
verifies them. A client's secret is ``whsec_`` + base64 of its 32 key bytes,
derived from the master secret and the client's secret version: nothing
secret is stored. For a grace period after a rotation the previous secret
signs too; the header then lists both signatures, newest first, separated by
a space (the specification's way to rotate without downtime).

Standard library only: the ``standardwebhooks`` package checks this module in
the tests, from outside.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"
SCHEME = "v1"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
DEFAULT_GRACE_S = 24 * 3600.0
# An id is signed as "<id>.<timestamp>.": it must not hold a full stop.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True)
class SecretVersions:
    """Which derivation of a client's secret is current, and when it became so."""

    current: int = 1
    rotated_at: float | None = None  # None: never rotated (or rotated before this was kept)

    def previous_until(self, grace_s: float) -> float | None:
        """Until when the previous secret signs too; None when there is none."""
        if self.current < 2 or self.rotated_at is None:
            return None
        return self.rotated_at + grace_s

    def in_force(self, now: float, grace_s: float) -> tuple[int, ...]:
        """The versions that sign at ``now``, newest first."""
        until = self.previous_until(grace_s)
        if until is not None and now < until:
            return self.current, self.current - 1
        return (self.current,)


def derive_key(master: str, client_id: str, version: int) -> bytes:
    """The 32 key bytes of a client's secret ``version`` (HMAC-SHA256 of the master secret)."""
    return hmac.new(master.encode(), f"webhook:{client_id}:{version}".encode(),
                    hashlib.sha256).digest()


def encode_secret(key: bytes) -> str:
    """The secret as a client is given it: ``whsec_`` + base64 of the key."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def decode_secret(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ and base64") from exc
    if not key:
        raise ValueError("a webhook secret is not empty")
    return key


def derive_secret(master: str, client_id: str, version: int) -> str:
    """A client's webhook secret ``version``, derived rather than stored."""
    return encode_secret(derive_key(master, client_id, version))


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` as event ``msg_id`` sent at ``timestamp``."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME},{base64.b64encode(mac.digest()).decode()}"


def webhook_id(event: Mapping[str, object], body: bytes) -> str:
    """The event's id for ``webhook-id``: its ``event_id``, else one made from the body."""
    value = event.get("event_id")
    if isinstance(value, str) and _SAFE_ID.match(value):
        return value
    return "evt_" + hashlib.sha256(body).hexdigest()[:32]


def webhook_headers(keys: Sequence[bytes], msg_id: str, timestamp: int,
                    body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, with one signature per key (newest first)."""
    if not keys:
        raise ValueError("a callback is signed with at least one key")
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(sign(key, msg_id, timestamp, body) for key in keys),
    }


def signing_keys(master: str, client_id: str, versions: SecretVersions, now: float,
                 grace_s: float) -> list[bytes]:
    """The keys that sign a client's callbacks at ``now``, newest first."""
    return [derive_key(master, client_id, v) for v in versions.in_force(now, grace_s)]
