"""Page cursors of the list API: signed, bound to the client they were given to.

A cursor is ``<payload>.<mac>``, both base64url without padding: the payload is
the JSON position ``{"t": created_at, "m": message_id}``, the MAC an HMAC-SHA256
(truncated to 16 bytes) over the client id and the payload. A cursor that was
altered, made up, or given to another client fails the MAC and is refused
before its payload is read, so nothing a caller invents reaches the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math

from chalicelib.domain.errors import ValidationError

MAX_CURSOR_CHARS = 256  # a real one is about 110
MAC_BYTES = 16
_KEY_LABEL = b"sms-gateway list cursor v1"


class InvalidCursorError(ValidationError):
    """A ``cursor`` this API did not give to this client, or one it cannot read."""


def cursor_key(master_secret: str) -> bytes:
    """The cursor signing key, derived from the gateway's master secret."""
    return hmac.new(master_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, client_id: str, payload: str) -> bytes:
    signed = client_id.encode() + b"\n" + payload.encode()
    return hmac.new(key, signed, hashlib.sha256).digest()[:MAC_BYTES]


class CursorCodec:
    """Signs page positions into cursors and reads them back."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encode(self, client_id: str, position: tuple[float, str]) -> str:
        """The cursor that continues after ``position`` for ``client_id``."""
        payload = _b64(json.dumps({"t": position[0], "m": position[1]},
                                  separators=(",", ":")).encode())
        return f"{payload}.{_b64(_mac(self._key, client_id, payload))}"

    def decode(self, client_id: str, cursor: str) -> tuple[float, str]:
        """The position in ``cursor``; ``InvalidCursorError`` unless this API signed it
        for ``client_id``."""
        if len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
            raise _refused()
        payload, _, mac = cursor.partition(".")
        try:
            good = hmac.compare_digest(_unb64(mac), _mac(self._key, client_id, payload))
        except (binascii.Error, ValueError):
            good = False
        if not good:
            raise _refused()
        return _position(payload)


def _position(payload: str) -> tuple[float, str]:
    try:
        data = json.loads(_unb64(payload))
        at, message_id = data["t"], data["m"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise _refused() from exc
    if not isinstance(at, (int, float)) or not math.isfinite(at) or not isinstance(message_id, str):
        raise _refused()
    return float(at), message_id


def _refused() -> InvalidCursorError:
    return InvalidCursorError("'cursor' is not a cursor this API gave you; "
                              "pass back next_cursor exactly as it came", "cursor")
