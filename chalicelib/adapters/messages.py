"""Messages in DynamoDB. Every status change is one conditional UpdateItem.

The condition names the statuses a message may leave for the target (from
``domain.status``), so a duplicate or late worker can never move a message
backwards, and the write that settles a hold is the one that wins the race.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.expressions.condition import Condition, size
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure
from chalicelib.adapters.models import LANE_NUMBER, SWEEP_SHARDS, MessageModel
from chalicelib.domain.books import Settlement
from chalicelib.domain.message import (
    KIND_MESSAGE,
    UNCLAIMED,
    Message,
    ProviderEvent,
    StatusChange,
)
from chalicelib.domain.status import HoldState, Status, SweepLane, sources_of

MAX_EVENTS = 20
SWEEP_PAGE = 100  # sweep index entries per query page


def sweep_shard(message_id: str, lane: SweepLane) -> int:
    """The sweep-index shard of a message in ``lane`` (stable, spread evenly)."""
    return LANE_NUMBER[lane] * SWEEP_SHARDS + zlib.crc32(message_id.encode()) % SWEEP_SHARDS


def lane_shards(lane: SweepLane) -> range:
    first = LANE_NUMBER[lane] * SWEEP_SHARDS
    return range(first, first + SWEEP_SHARDS)


def to_message(item: MessageModel) -> Message:
    return Message(
        message_id=item.message_id,
        client_id=item.client_id,
        to=item.to,
        sender=item.sender,
        text=item.text,
        encoding=item.encoding,
        parts=int(item.parts),
        cost_cents=int(item.cost_cents),
        status=Status(item.status),
        hold_state=HoldState(item.hold_state),
        created_at=float(item.created_at),
        updated_at=float(item.updated_at),
        attempts=int(item.attempts or 0),
        client_reference=item.client_reference,
        error_code=item.error_code,
        error=item.error,
        provider_message_id=item.provider_message_id,
        request_hash=item.request_hash,
        request_id=item.request_id,
        retry_at=float(item.retry_at) if item.retry_at is not None else None,
        callback_url=item.callback_url,
        callback_on_sent=bool(item.callback_on_sent),
        callback_state=item.callback_state,
        send_at=float(item.send_at) if item.send_at is not None else None,
        sent_at=float(item.sent_at) if item.sent_at is not None else None,
        provider=item.provider,
        provider_cost=item.provider_cost,
        sender_owned=bool(item.sender_owned),
        message_type=item.message_type or "TRANSACTIONAL",
        test_mode=bool(item.test_mode),
        events=tuple(ProviderEvent.parse(str(e)) for e in item.events or ()),
        claimed_from=item.claimed_from,
        claimed_at=float(item.claimed_at) if item.claimed_at is not None else None,
        sweeps=int(item.sweep_count or 0),
        route=item.route,
        country=item.country,
        failed_provider=item.failed_provider,
        refused_by=frozenset(item.refused_by or ()),
        expires_at=float(item.expires_at) if item.expires_at is not None else None,
        kind=item.kind or KIND_MESSAGE,
        history=tuple(StatusChange.parse(str(e)) for e in item.history or ()),
    )


def _append_history(change: StatusChange) -> Action:
    """Add ``change`` to the message's timeline, in the write that makes it. Bounded: each
    attempt adds at most three (claimed, sent or failed, handed back), and attempts are
    capped by the retry policy."""
    m = MessageModel
    return m.history.set((m.history | []).append([change.key()]))


def _status_in(statuses: Iterable[Status]) -> Condition:
    return MessageModel.status.is_in(*[s.value for s in statuses])


def new_item(model: type[MessageModel], msg: Message, stuck_after_s: float) -> MessageModel:
    """The item of a message just accepted."""
    return model(
        msg.message_id,
        client_id=msg.client_id,
        to=msg.to,
        sender=msg.sender,
        text=msg.text,
        client_reference=msg.client_reference,
        encoding=msg.encoding,
        parts=msg.parts,
        cost_cents=msg.cost_cents,
        status=msg.status.value,
        hold_state=msg.hold_state.value,
        attempts=0,
        request_hash=msg.request_hash,
        request_id=msg.request_id,
        callback_url=msg.callback_url,
        callback_on_sent=msg.callback_on_sent or None,
        send_at=msg.send_at,
        sender_owned=msg.sender_owned or None,
        message_type=msg.message_type,
        test_mode=msg.test_mode or None,
        route=msg.route,
        country=msg.country,
        expires_at=msg.expires_at,
        kind=msg.kind if msg.kind != KIND_MESSAGE else None,
        history=[StatusChange(msg.created_at, msg.status.value).key()],
        created_at=msg.created_at,
        updated_at=msg.updated_at,
        # A scheduled message is the sweeper's to enqueue, at its time.
        sweep_shard=sweep_shard(msg.message_id, SweepLane.TIMED if msg.send_at else SweepLane.QUEUED),
        sweep_at=msg.send_at if msg.send_at else msg.created_at + stuck_after_s,
    )


def settle_update(msg: Message, s: Settlement) -> tuple[list[Action], Condition]:
    """The actions and condition of the message write that settles ``msg``.

    This write decides: of a DLR, a cancel and the sweeper's timeout, the one
    whose condition holds first settles the hold; the others are refused. The
    condition also pins the client and the cost, which the same transaction
    moves on the client's item.
    """
    m = MessageModel
    actions: list[Action] = [
        m.status.set(s.target.value),
        m.hold_state.set(s.hold.value),
        m.settled_at.set(s.at),
        m.updated_at.set(s.at),
        m.sweep_at.remove(),
        m.sweep_shard.remove(),
        _append_history(settle_change(msg, s)),
    ]
    if s.code is not None:
        actions += [m.error_code.set(s.code), m.error.set(s.reason or s.code)]
    if s.provider_cost is not None:
        actions.append(m.provider_cost.set(s.provider_cost))
    condition = (_status_in(sources_of(s.target)) & (m.hold_state == HoldState.HELD.value)
                 & (m.client_id == msg.client_id) & (m.cost_cents == msg.cost_cents))
    if s.attempt is not None:
        condition &= m.attempts == s.attempt
    if s.due_by is not None:
        # Only if its sweep time has really come (a fresh SENT pushed it on).
        condition &= m.sweep_at <= s.due_by
    if s.provider_message_id is not None:
        # A delivery report settles only the message the provider knows by that id, or
        # one still SENDING (the report overtook the SENT write, or its worker died
        # after the provider took it): then the report gives the id...
        # Not when the claim came from FAILED_TEMP: the report may be of the attempt
        # judged failed, whose SMS may have gone while the new one may too; that report
        # waits for the new attempt's SENT (and is then matched, or not, by its id).
        condition &= (m.provider_message_id == s.provider_message_id) | (
            (m.status == Status.SENDING.value) & m.provider_message_id.does_not_exist()
            & (m.claimed_from != Status.FAILED_TEMP.value))
        actions.append(m.provider_message_id.set(s.provider_message_id))
    if s.provider is not None:
        # ...and only if it was sent (or claimed to be sent) through the provider that
        # reports it.
        condition &= m.provider == s.provider
    return actions, condition


def settle_change(msg: Message, s: Settlement) -> StatusChange:
    """The settlement's entry in the message's timeline: the attempt it ends when the
    message was out with a provider (a report of its send), else none."""
    attempt = s.attempt
    if attempt is None and msg.status in (Status.SENDING, Status.SENT) and msg.attempts:
        attempt = msg.attempts
    return StatusChange(s.at, s.target.value, attempt, s.provider or msg.provider, s.code)


def settled(msg: Message, s: Settlement) -> Message:
    """``msg`` as the write of ``settle_update`` leaves it."""
    changes: dict[str, object] = {"status": s.target, "hold_state": s.hold, "updated_at": s.at,
                                  "history": (*msg.history, settle_change(msg, s))}
    if s.code is not None:
        changes.update(error_code=s.code, error=s.reason or s.code)
    if s.provider_cost is not None:
        changes["provider_cost"] = s.provider_cost
    if s.provider_message_id is not None:
        changes["provider_message_id"] = s.provider_message_id
    return replace(msg, **changes)  # type: ignore[arg-type]


class DynamoMessages:
    """The messages table."""

    def __init__(self, messages: type[MessageModel], stuck_after_s: float) -> None:
        self._model = messages
        self.stuck_after_s = stuck_after_s

    def get(self, message_id: str) -> Message | None:
        """The message, read consistently, or None."""
        with dynamodb_errors("message read"):
            try:
                return to_message(self._model.get(message_id, consistent_read=True))
            except DoesNotExist:
                return None

    def put_new(self, msg: Message) -> bool:
        """Write a new message with no money moved (tests and tools; the API writes it
        together with its hold, in ``DynamoBooks.hold_and_store``). False if it exists."""
        with dynamodb_errors("message write"):
            try:
                new_item(self._model, msg, self.stuck_after_s).save(
                    condition=MessageModel.message_id.does_not_exist())
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    return False
                raise
        return True

    def _update(self, message_id: str, actions: list[Action], condition: Condition,
                mine: Callable[[MessageModel], bool] | None = None) -> Message | None:
        """Apply a conditional update; None when the condition did not hold.

        botocore repeats a write whose answer was lost, and the repeat finds the
        condition gone because the first one applied. ``mine`` recognises that
        case on a fresh read: the item shows exactly what this write set.
        """
        item = self._model(message_id)
        with dynamodb_errors("message update"):
            try:
                item.update(actions=actions, condition=condition)
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise
                if mine is None:
                    return None
                try:
                    item = self._model.get(message_id, consistent_read=True)
                except DoesNotExist:
                    return None
                return to_message(item) if mine(item) else None
        return to_message(item)

    def claim(self, message_id: str, now: float, stale_before: float,
              provider: str | None = None) -> Message | None:
        """QUEUED or due FAILED_TEMP (or an abandoned SENDING) -> SENDING, attempts + 1,
        through ``provider`` (so its report can settle the message before SENT is written).

        Only one worker can win a given attempt: the condition is on the
        status it leaves, and a SENDING claim is only taken over once older
        than the send timeout (its worker died).
        """
        m = MessageModel
        ready = (m.status == Status.QUEUED.value) | (
            (m.status == Status.FAILED_TEMP.value) & (m.retry_at <= now)
        )
        abandoned = (m.status == Status.SENDING.value) & (m.claimed_at < stale_before)
        due = m.send_at.does_not_exist() | (m.send_at <= now)
        return self._update(
            message_id,
            [
                # Operands read the item as it was: this records the status left.
                m.claimed_from.set(m.status),
                m.status.set(Status.SENDING.value),
                m.attempts.add(1),
                m.claimed_at.set(now),
                m.updated_at.set(now),
                *([m.provider.set(provider)] if provider else []),
                _append_history(StatusChange(now, Status.SENDING.value, provider=provider)),
            ],
            (ready | abandoned) & (m.hold_state == HoldState.HELD.value) & due,
            mine=lambda i: i.status == Status.SENDING.value and i.claimed_at == now,
        )

    def mark_sent(
        self, message_id: str, attempt: int, provider: str, provider_message_id: str, now: float,
    ) -> Message | None:
        """SENDING -> SENT, for the attempt that claimed it."""
        m = MessageModel
        return self._update(
            message_id,
            [
                m.status.set(Status.SENT.value),
                m.provider.set(provider),
                m.provider_message_id.set(provider_message_id),
                m.sent_at.set(now),
                m.updated_at.set(now),
                _append_history(StatusChange(now, Status.SENT.value, attempt, provider)),
                # sweep_at is left alone (moving an index key costs two writes);
                # the sweeper postpones the rare SENT message still waiting then.
            ],
            (m.status == Status.SENDING.value) & (m.attempts == attempt),
            mine=lambda i: (i.status == Status.SENT.value and i.attempts == attempt
                            and i.provider_message_id == provider_message_id),
        )

    def unclaim(self, message_id: str, attempt: int, back_to: Status, now: float) -> bool:
        """Hand back the claim of ``attempt`` untried: ``back_to`` (QUEUED, or FAILED_TEMP due
        now), the attempt not counted."""
        m = MessageModel
        return self._update(
            message_id,
            [m.status.set(back_to.value), m.attempts.add(-1), m.retry_at.set(now),
             m.updated_at.set(now),
             _append_history(StatusChange(now, back_to.value, attempt, code=UNCLAIMED)),
             # A message never tried goes back with no provider (the claim named one).
             *([m.provider.remove()] if back_to is Status.QUEUED else [])],
            (m.status == Status.SENDING.value) & (m.attempts == attempt),
            mine=lambda i: i.status == back_to.value and i.attempts == attempt - 1
            and i.retry_at == now,
        ) is not None

    def set_provider(self, message_id: str, attempt: int, provider: str) -> bool:
        """The attempt that claimed the message goes through ``provider`` after all (the
        claim named another: failover, or a probe)."""
        m = MessageModel
        return self._update(
            message_id, [m.provider.set(provider)],
            (m.status == Status.SENDING.value) & (m.attempts == attempt),
            mine=lambda i: (i.status == Status.SENDING.value and i.attempts == attempt
                            and i.provider == provider),
        ) is not None

    def mark_failed_temp(
        self, message_id: str, attempt: int, code: str, reason: str, retry_at: float, now: float,
        provider: str | None = None, refused: bool = False,
    ) -> Message | None:
        """SENDING -> FAILED_TEMP, due again at ``retry_at``; ``provider`` is the one it
        failed at (the next attempt starts after it), ``refused`` when that provider can
        never send it (it is skipped from now on)."""
        m = MessageModel
        return self._update(
            message_id,
            [
                m.status.set(Status.FAILED_TEMP.value),
                m.error_code.set(code),
                m.error.set(reason),
                m.retry_at.set(retry_at),
                m.updated_at.set(now),
                m.sweep_at.set(retry_at + self.stuck_after_s),
                _append_history(StatusChange(now, Status.FAILED_TEMP.value, attempt, provider,
                                             code)),
                *([m.failed_provider.set(provider)] if provider else []),
                *([m.refused_by.add({provider})] if provider and refused else []),
            ],
            (m.status == Status.SENDING.value) & (m.attempts == attempt),
            mine=lambda i: (i.status == Status.FAILED_TEMP.value and i.attempts == attempt
                            and i.retry_at == retry_at),
        )

    def record_event(self, message_id: str, provider_message_id: str, status: str,
                     at: float) -> bool:
        """Add a provider's progress report to the timeline of the message it knows by
        ``provider_message_id``; False when no such message (yet). Capped: a provider
        that repeats itself cannot grow the item without bound."""
        m = MessageModel
        event = ProviderEvent(at, status).key()
        condition = ((m.provider_message_id == provider_message_id)
                     & (m.status == Status.SENT.value)
                     & (m.events.does_not_exist()
                        | ((size(m.events) < MAX_EVENTS) & ~m.events.contains(event))))
        return self._update(message_id, [m.events.set((m.events | []).append([event]))],
                            condition) is not None

    def mark_callback_queued(self, message_id: str) -> None:
        """Record that the final event is on the callbacks queue."""
        with dynamodb_errors("message update"):
            self._model(message_id).update(
                actions=[MessageModel.callback_state.set("QUEUED")],
                condition=MessageModel.message_id.exists(),
            )

    def due_for_sweep(self, lane: SweepLane, now: float) -> Iterator[tuple[str, float]]:
        """(message id, sweep_at) of the lane's unfinished messages whose sweep time has
        come, oldest first across the lane's shards (a merge of one query per shard, each
        read a page at a time as the caller goes, so a caller that stops early reads
        little). A query that fails raises ``BackendUnavailableError`` from the iteration;
        what the caller did before stands."""
        shards = [self._due_in_shard(shard, now) for shard in lane_shards(lane)]
        return heapq.merge(*shards, key=lambda entry: entry[1])

    def _due_in_shard(self, shard: int, now: float) -> Iterator[tuple[str, float]]:
        with dynamodb_errors("sweep index query"):
            items = iter(self._model.sweep_index.query(
                shard, MessageModel.sweep_at <= now, page_size=SWEEP_PAGE))
        while True:
            with dynamodb_errors("sweep index query"):
                item = next(items, None)
            if item is None:
                return
            yield str(item.message_id), float(item.sweep_at)

    def postpone_sweep(self, message_id: str, seen_at: float, next_at: float,
                       lane: SweepLane | None = None) -> bool:
        """Move the sweep time on (and into ``lane``) and count the turn, only if no one
        else did: one sweeper acts per turn. (A botocore retry of this write, when its
        answer was lost, fails the condition: the count never moves twice.)"""
        m = MessageModel
        actions: list[Action] = [m.sweep_at.set(next_at), m.sweep_count.add(1)]
        if lane is not None:
            actions.append(m.sweep_shard.set(sweep_shard(message_id, lane)))
        return self._update(message_id, actions, m.sweep_at == seen_at) is not None

    def scan_all(self) -> Iterable[Message]:
        """Every message (the reconcile audit only; the API never scans)."""
        with dynamodb_errors("message scan"):
            for item in self._model.scan(consistent_read=True):
                yield to_message(item)

    def page_for_client(
        self, client_id: str, since: float | None, until: float | None,
        after: tuple[float, str] | None, want: int, matches: Callable[[Message], bool],
        max_examined: int = 1000,
    ) -> tuple[list[Message], tuple[float, str] | None]:
        """Up to ``want`` of the client's messages, newest first, from the client index.

        Returns them and the position to continue from (None at the end).
        Filters other than time are applied to the fetched items, so at most
        ``max_examined`` index entries are read per call.
        """
        m = MessageModel
        low, high = since if since is not None else 0, until if until is not None else 1e12
        start = None
        if after is not None:
            start = {"client_id": {"S": client_id}, "created_at": {"N": repr(after[0])},
                     "message_id": {"S": after[1]}}
        found: list[Message] = []
        examined: list[tuple[float, str]] = []
        with dynamodb_errors("client index query"):
            keys = self._model.client_index.query(
                client_id, m.created_at.between(low, high), scan_index_forward=False,
                last_evaluated_key=start, page_size=min(100, max(want, 10)),
            )
            for chunk in _chunks(keys, 100):
                items = {i.message_id: i for i in self._model.batch_get([k.message_id for k in chunk],
                                                            consistent_read=True)}
                for key in chunk:
                    examined.append((float(key.created_at), str(key.message_id)))
                    item = items.get(key.message_id)
                    if item is not None and matches(msg := to_message(item)):
                        found.append(msg)
                        if len(found) == want:
                            return found, examined[-1]
                if len(examined) >= max_examined:
                    return found, examined[-1]
        return found, None


def _chunks(items: Iterable[MessageModel], size: int) -> Iterator[list[MessageModel]]:
    chunk: list[MessageModel] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
