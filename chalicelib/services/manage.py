"""A client's own messages: cancel one, list them."""

from __future__ import annotations

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
from chalicelib.ports import MessageStore
from chalicelib.services.ledger import Ledger

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
LIST_PARAMS = frozenset({"status", "to", "since", "until", "client_reference", "limit", "cursor"})
CANCELLABLE = frozenset({Status.QUEUED, Status.FAILED_TEMP})


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


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise ValidationError(f"'limit' must be a whole number from 1 to {MAX_LIMIT}", "limit")
    return int(text)


def _status(text: str | None) -> Status | None:
    if text is None:
        return None
    try:
        return Status(text)
    except ValueError as exc:
        raise ValidationError(f"'status' must be one of {', '.join(Status)}", "status") from exc


def parse_list_query(client_id: str, params: Mapping[str, str], cursors: CursorCodec) -> ListQuery:
    """Validate the list API's query string (``cursors`` reads the signed cursor)."""
    refuse_lone_surrogates(params)
    unknown = sorted(set(params) - LIST_PARAMS)
    if unknown:
        raise ValidationError(f"unknown parameter '{unknown[0]}'", unknown[0])
    since = parse_rfc3339(params["since"], "since") if "since" in params else None
    until = parse_rfc3339(params["until"], "until") if "until" in params else None
    if since is not None and until is not None and since > until:
        raise UnprocessableError("'since' is after 'until'", "since")
    cursor = params.get("cursor")
    return ListQuery(
        status=_status(params.get("status")), to=params.get("to"), since=since, until=until,
        client_reference=params.get("client_reference"), limit=_limit(params.get("limit")),
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
