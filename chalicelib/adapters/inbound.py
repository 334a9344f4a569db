"""Inbound messages, conversations and sender claims in DynamoDB.

- ``DynamoInbound``: the inbound table, one item per provider message (put if absent),
  listed per client through its ``client-index`` (all attributes: no second read).
- ``SenderClaims``: ``sender#<number>`` items in the clients table, each naming the one
  client that owns a phone-number sender ID (written ``attribute_not_exists``, as API
  key claims are), so an inbound message to that number is that client's.
- ``DynamoConversations``: who an inbound message is for, and the outbound message it
  answers: the claim, else the messages table's ``recipient-index`` newest first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure
from chalicelib.adapters.messages import to_message
from chalicelib.adapters.models import (
    SENDER_CLAIM_PREFIX,
    ClientModel,
    InboundModel,
    MessageModel,
    SenderClaimModel,
    sender_claims,
)
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.inbound import InboundMessage, Keyword
from chalicelib.domain.message import Message

# Index entries read per conversation look-up: the person's newest messages, of any
# client and from any number. A conversation older than that many messages to one
# person is not linked (the message is still attributed by its claim, if any).
CONVERSATION_LOOKBACK = 25
KEYWORD_VALUES = frozenset(k.value for k in Keyword)


def to_inbound(item: InboundModel) -> InboundMessage:
    return InboundMessage(
        inbound_id=item.inbound_id, provider=item.provider,
        provider_message_id=item.provider_message_id, client_id=item.client_id,
        from_number=item.from_number, to_number=item.to_number, text=item.text,
        received_at=float(item.received_at),
        keyword=Keyword(item.keyword) if item.keyword in KEYWORD_VALUES else None,
        message_id=item.message_id, reply_id=item.reply_id, done=bool(item.done))


class DynamoInbound:
    """The inbound table (``InboundStore``)."""

    def __init__(self, model: type[InboundModel]) -> None:
        self._model = model

    def put_new(self, message: InboundMessage) -> bool:
        """Store ``message``; False when one with its id is stored (a duplicate)."""
        item = self._model(
            message.inbound_id, provider=message.provider,
            provider_message_id=message.provider_message_id, client_id=message.client_id,
            from_number=message.from_number, to_number=message.to_number, text=message.text,
            received_at=message.received_at,
            keyword=message.keyword.value if message.keyword else None,
            message_id=message.message_id, reply_id=message.reply_id,
            done=True if message.done else None)
        with dynamodb_errors("inbound write"):
            try:
                item.save(condition=self._model.inbound_id.does_not_exist())
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    return False
                raise
        return True

    def get(self, inbound_id: str) -> InboundMessage | None:
        with dynamodb_errors("inbound read"):
            try:
                return to_inbound(self._model.get(inbound_id, consistent_read=True))
            except DoesNotExist:
                return None

    def mark_done(self, inbound_id: str, reply_id: str | None) -> None:
        m = self._model
        actions: list[Action] = [m.done.set(True)]
        if reply_id is not None:
            actions.append(m.reply_id.set(reply_id))
        with dynamodb_errors("inbound update"):
            m(inbound_id).update(actions=actions, condition=m.inbound_id.exists())

    def page_for_client(
        self, client_id: str, since: float | None, until: float | None,
        after: tuple[float, str] | None, want: int, matches: Callable[[InboundMessage], bool],
        max_examined: int = 1000,
    ) -> tuple[list[InboundMessage], tuple[float, str] | None]:
        """Up to ``want`` of the client's inbound messages, newest first, and the position
        to continue from (None at the end); at most ``max_examined`` entries read a call.
        As ``DynamoMessages.page_for_client``, over an index that holds whole items."""
        m = self._model
        low, high = since if since is not None else 0, until if until is not None else 1e12
        start = None
        if after is not None:
            start = {"client_id": {"S": client_id}, "received_at": {"N": repr(after[0])},
                     "inbound_id": {"S": after[1]}}
        found: list[InboundMessage] = []
        examined = 0
        with dynamodb_errors("inbound client index query"):
            for item in m.client_index.query(
                    client_id, m.received_at.between(low, high), scan_index_forward=False,
                    last_evaluated_key=start, page_size=min(100, max(want, 10))):
                examined += 1
                message = to_inbound(item)
                position = (message.received_at, message.inbound_id)
                if matches(message):
                    found.append(message)
                    if len(found) == want:
                        return found, position
                if examined >= max_examined:
                    return found, position
        return found, None


class SenderClaims:
    """Which client owns each phone-number sender ID (``make client SENDER_IDS=``)."""

    def __init__(self, clients: type[ClientModel]) -> None:
        self._claims = sender_claims(clients)

    def owner_of(self, number: str) -> str | None:
        claim = self._read(number)
        return claim.owner if claim is not None else None

    def _read(self, number: str) -> SenderClaimModel | None:
        with dynamodb_errors("sender claim read"):
            try:
                return self._claims.get(SENDER_CLAIM_PREFIX + number, consistent_read=True)
            except DoesNotExist:
                return None

    def claim(self, client_id: str, numbers: Iterable[str]) -> list[str]:
        """Claim each of ``numbers`` for ``client_id``; the numbers newly claimed. A
        number another client owns: ``ConflictError`` naming it, and the claims this
        call wrote are taken back (nothing changed)."""
        fresh: list[str] = []
        try:
            for number in sorted(set(numbers)):
                if self._take(client_id, number):
                    fresh.append(number)
        except ConflictError:
            self.release(client_id, fresh)
            raise
        return fresh

    def _take(self, client_id: str, number: str) -> bool:
        seen = self._read(number)
        if seen is not None:
            if seen.owner != client_id:
                raise _owned_by(number, seen.owner)
            return False
        with dynamodb_errors("sender claim"):
            try:
                self._claims(SENDER_CLAIM_PREFIX + number, owner=client_id,
                             created_at=time.time()).save(
                    condition=self._claims.client_id.does_not_exist()
                    | (self._claims.owner == client_id))
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise
                rival = self.owner_of(number)  # claimed meanwhile
                raise _owned_by(number, rival or "another client") from exc
        return True

    def release(self, client_id: str, numbers: Iterable[str]) -> None:
        """Delete ``client_id``'s claims on ``numbers`` (a number it does not own stays)."""
        for number in sorted(set(numbers)):
            with dynamodb_errors("sender claim release"):
                try:
                    self._claims(SENDER_CLAIM_PREFIX + number).delete(
                        condition=self._claims.owner == client_id)
                except PynamoDBException as exc:
                    if not is_condition_failure(exc):
                        raise


def _owned_by(number: str, owner: str) -> ConflictError:
    return ConflictError(f"sender ID {number} belongs to client {owner}: a number receives "
                         "replies for one client only", "sender_ids")


class DynamoConversations:
    """``Conversations`` over the sender claims and the messages' recipient index.

    ``default_origins``: the numbers the stage sends from when a message's sender ID is
    not the client's own (``TWILIO_FROM``, ``AWS_SMS_ORIGINATION_IDENTITY``): such a
    message went out from one of them, whatever its ``from`` said.
    """

    def __init__(self, claims: SenderClaims, messages: type[MessageModel],
                 default_origins: Collection[str] = ()) -> None:
        self._claims = claims
        self._messages = messages
        self._default_origins = frozenset(default_origins)

    def owner_of(self, number: str) -> str | None:
        return self._claims.owner_of(number)

    def last_outbound(self, person: str, our_number: str,
                      client_id: str | None = None) -> Message | None:
        """The newest of the person's last ``CONVERSATION_LOOKBACK`` messages that went
        out from ``our_number`` (of ``client_id``, when given), read in full."""
        from_default = our_number in self._default_origins
        with dynamodb_errors("recipient index query"):
            for entry in self._messages.recipient_index.query(
                    person, scan_index_forward=False, limit=CONVERSATION_LOOKBACK,
                    page_size=CONVERSATION_LOOKBACK):
                if client_id is not None and entry.client_id != client_id:
                    continue
                if entry.sender == our_number or (from_default and not entry.sender_owned):
                    try:
                        return to_message(self._messages.get(entry.message_id,
                                                             consistent_read=True))
                    except DoesNotExist:
                        continue
        return None
