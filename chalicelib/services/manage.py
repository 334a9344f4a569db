"""A client's own messages (cancel one, list them), and the API keys (clients' and the
operator's)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.domain.cursors import CursorCodec
from chalicelib.domain.errors import (
    MessageStateConflictError,
    NotFoundError,
    UnprocessableError,
    ValidationError,
)
from chalicelib.domain.message import Client, Message
from chalicelib.domain.status import Status
from chalicelib.domain.validation import parse_rfc3339, refuse_lone_surrogates
from chalicelib.ports import KeyStore, MessageStore
from chalicelib.services.auth import hash_api_key
from chalicelib.services.ledger import Ledger

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
LIST_PARAMS = frozenset({"status", "to", "since", "until", "client_reference", "limit", "cursor"})
CANCELLABLE = frozenset({Status.QUEUED, Status.FAILED_TEMP})
MAX_API_KEY_CHARS = 256


@dataclass(frozen=True)
class ListQuery:
    status: Status | None = None
    to: str | None = None
    since: float | None = None
    until: float | None = None
    client_reference: str | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[float, str] | None = None

    def matches(self, msg: Message) -> bool:
        return ((self.status is None or msg.status is self.status)
                and (self.to is None or msg.to == self.to)
                and (self.client_reference is None
                     or msg.client_reference == self.client_reference))


def parse_limit(text: str | None) -> int:
    """A list's ``limit`` parameter (1 to ``MAX_LIMIT``; ``DEFAULT_LIMIT`` when absent)."""
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise ValidationError(f"'limit' must be a whole number from 1 to {MAX_LIMIT}", "limit")
    return int(text)


def check_params(params: Mapping[str, str], allowed: frozenset[str]) -> None:
    """A list's query string names only ``allowed`` parameters, and no value holds a
    lone surrogate (400 otherwise)."""
    refuse_lone_surrogates(params)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValidationError(f"unknown parameter '{unknown[0]}'", unknown[0])


def _status(text: str | None) -> Status | None:
    if text is None:
        return None
    try:
        return Status(text)
    except ValueError as exc:
        raise ValidationError(f"'status' must be one of {', '.join(Status)}", "status") from exc


def parse_list_query(client_id: str, params: Mapping[str, str], cursors: CursorCodec) -> ListQuery:
    """Validate the list API's query string (``cursors`` reads the signed cursor)."""
    check_params(params, LIST_PARAMS)
    since = parse_rfc3339(params["since"], "since") if "since" in params else None
    until = parse_rfc3339(params["until"], "until") if "until" in params else None
    if since is not None and until is not None and since > until:
        raise UnprocessableError("'since' is after 'until'", "since")
    cursor = params.get("cursor")
    return ListQuery(
        status=_status(params.get("status")), to=params.get("to"), since=since, until=until,
        client_reference=params.get("client_reference"), limit=parse_limit(params.get("limit")),
        after=cursors.decode(client_id, cursor) if cursor else None,
    )


class MessageManager:
    def __init__(self, messages: MessageStore, ledger: Ledger, cursors: CursorCodec) -> None:
        self._messages = messages
        self._ledger = ledger
        self._cursors = cursors

    def list_query(self, client: Client, params: Mapping[str, str]) -> ListQuery:
        """The validated query string of ``GET /v1/messages`` for ``client``."""
        return parse_list_query(client.client_id, params, self._cursors)

    def own(self, client: Client, message_id: str) -> Message:
        """The client's message, or 404 (also for another client's id)."""
        msg = self._messages.get(message_id)
        if msg is None or msg.client_id != client.client_id:
            raise NotFoundError("no such message")
        return msg

    def cancel(self, client: Client, message_id: str) -> Message:
        """QUEUED, FAILED_TEMP or scheduled -> CANCELLED, hold released; idempotent."""
        msg = self.own(client, message_id)
        if msg.status in CANCELLABLE:
            settled = self._ledger.settle(message_id, Status.CANCELLED, "CANCELLED",
                                          "cancelled by the client")
            msg = settled or self.own(client, message_id)  # lost a race: see who won
        if msg.status is Status.CANCELLED:
            return msg
        raise MessageStateConflictError(
            f"the message is {msg.status.value} and can no longer be cancelled", msg.status.value)

    def list(self, client: Client, query: ListQuery) -> tuple[list[Message], str | None]:
        """Newest first; the cursor continues where this page stopped."""
        if query.until is not None and query.until < (query.since or 0.0):
            # Before 1970 nothing was sent; DynamoDB refuses a BETWEEN whose bounds cross.
            return [], None
        found, position = self._messages.page_for_client(
            client.client_id, query.since, query.until, query.after, query.limit, query.matches)
        return found, self._cursors.encode(client.client_id, position) if position else None



def new_api_key() -> str:
    """A random API key (192 bits)."""
    return f"sk_{secrets.token_urlsafe(24)}"


def _checked_key(api_key: str) -> str:
    if not 0 < len(api_key) <= MAX_API_KEY_CHARS or not api_key.isprintable() \
            or not api_key.isascii() or any(c.isspace() for c in api_key):
        raise ValidationError(f"an API key is 1-{MAX_API_KEY_CHARS} printable ASCII "
                              "characters without spaces", "api_key")
    return api_key


class ApiKeys:
    """Gives clients their API keys; the store refuses a key another client holds, so no
    two clients ever share one (``ConflictError``, nothing changed)."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    def create(self, client_id: str, name: str, credit_cents: int,
               api_key: str | None = None) -> str | None:
        """Create the client with ``api_key`` (default: a new random one) and return the
        key; None when the client already exists (then nothing changed)."""
        key = _checked_key(api_key) if api_key is not None else new_api_key()
        created = self._store.upsert(client_id, name, hash_api_key(key), credit_cents)
        return key if created else None

    def assign(self, client_id: str, api_key: str) -> None:
        """Give an existing client ``api_key``; its old key stops working."""
        self._store.set_api_key(client_id, hash_api_key(_checked_key(api_key)))

    def rotate(self, client_id: str) -> str:
        """Give the client a new random key and return it; its old one is released."""
        key = new_api_key()
        self._store.set_api_key(client_id, hash_api_key(key))
        return key

    def set_operator(self, api_key: str) -> None:
        """Make ``api_key`` the operator key (``ADMIN_API_KEY``), stored only as its
        SHA-256; the previous operator key stops working."""
        self._store.set_operator_key(hash_api_key(_checked_key(api_key)))
