"""Inbound messages and conversations in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from chalicelib.domain.inbound import InboundMessage
from chalicelib.domain.message import Message
from tests.fakes.messages import FakeMessages


class FakeInbound:
    def __init__(self) -> None:
        self.rows: dict[str, InboundMessage] = {}

    def put_new(self, message: InboundMessage) -> bool:
        if message.inbound_id in self.rows:
            return False
        self.rows[message.inbound_id] = message
        return True

    def get(self, inbound_id: str) -> InboundMessage | None:
        return self.rows.get(inbound_id)

    def mark_done(self, inbound_id: str, reply_id: str | None) -> None:
        self.rows[inbound_id] = replace(self.rows[inbound_id], done=True, reply_id=reply_id)

    def page_for_client(self, client_id: str, since: float | None, until: float | None,
                        after: tuple[float, str] | None, want: int,
                        matches: Callable[[InboundMessage], bool],
                        ) -> tuple[list[InboundMessage], tuple[float, str] | None]:
        rows = sorted((m for m in self.rows.values() if m.client_id == client_id),
                      key=lambda m: (m.received_at, m.inbound_id), reverse=True)
        rows = [m for m in rows if (since is None or m.received_at >= since)
                and (until is None or m.received_at < until)
                and (after is None or (m.received_at, m.inbound_id) < after) and matches(m)]
        page = rows[:want]
        return page, ((page[-1].received_at, page[-1].inbound_id) if len(rows) > want else None)


class FakeConversations:
    """Owners by sender number (set by tests), conversations from the fake messages."""

    def __init__(self, messages: FakeMessages, default_origins: frozenset[str] = frozenset()) -> None:
        self.owners: dict[str, str] = {}
        self._messages = messages
        self._default_origins = default_origins

    def owner_of(self, number: str) -> str | None:
        return self.owners.get(number)

    def last_outbound(self, person: str, our_number: str,
                      client_id: str | None = None) -> Message | None:
        sent = sorted((row.message for row in self._messages.rows.values()
                       if row.message.to == person
                       and (client_id is None or row.message.client_id == client_id)
                       and (row.message.sender == our_number
                            or (not row.message.sender_owned
                                and our_number in self._default_origins))),
                      key=lambda m: m.created_at)
        return sent[-1] if sent else None
