"""Every write that moves money, each one DynamoDB transaction over the items it touches.

- hold: the client's item (rate bucket, ``available -> held``) and the new message
  item (``attribute_not_exists``);
- settle: the message item (its status change, conditional on the statuses it may
  leave) and the client's item (``held -> spent`` or ``-> available``);
- with both, the client's delivery statistics of the moment (two items of counters,
  ``adapters.stats``), so a status change is counted exactly once;
- top-up and adjustment: a new ledger entry (``attribute_not_exists``) and the
  client's item.

All or nothing, so no crash between two writes can strand credit, and a client
that reads a final status then reads a settled balance. Each transaction holds an
item that can only be written once (a new message, a new ledger entry, a status
change out of a status it leaves), so when botocore repeats a transaction whose
answer was lost, the repeat is cancelled by that condition and moves nothing; the
adapter then reads the item to tell its own earlier success from a lost race.
DynamoDB's ``ClientRequestToken`` makes such a repeat a no-op too, but only for 10
minutes and only on AWS (moto ignores it), so correctness does not rest on it.

Cost (README, "Money"): a transactional write costs two write units per KB per
item instead of one; see BENCHMARKS.md for the measured figures.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.accounts import read_client
from chalicelib.adapters.dynamo import dynamodb_errors, pause_before_retry
from chalicelib.adapters.messages import new_item, settle_update, settled, to_message
from chalicelib.adapters.models import (
    VELOCITY_PREFIX,
    ClientModel,
    ContactModel,
    LedgerEntryModel,
    MessageModel,
)
from chalicelib.adapters.stats import stats_updates
from chalicelib.domain import stats
from chalicelib.domain.books import Settlement
from chalicelib.domain.errors import (
    BackendUnavailableError,
    DailyLimitReachedError,
    DestinationVelocityError,
    InsufficientCreditError,
    NotFoundError,
    RateLimitedError,
)
from chalicelib.domain.guards import SpendGuard, daily_refusal, next_utc_day
from chalicelib.domain.message import Balance, Message
from chalicelib.domain.ratelimit import Decision, RateLimit, decide, max_tat_allowed
from chalicelib.domain.ratelimit import settled as rate_after

log = logging.getLogger(__name__)

# A lost write re-reads the bucket and tries the other branch. Under heavy
# concurrency on one client the bucket flips between idle and busy, and
# transactions on one item (the client's, its stats buckets') conflict, so a few
# tries may lose; a jittered pause that grows with each try spreads them (about
# 1.1 s of pauses in all at worst before "too busy").
TRIES = 10
CONDITION = "ConditionalCheckFailed"
CONFLICT = "TransactionConflict"


class _Cancelled(Exception):
    """A transaction was cancelled; the reason code of each of its items, in order."""

    def __init__(self, codes: tuple[str | None, ...]) -> None:
        super().__init__(codes)
        self.codes = codes

    def failed(self, index: int) -> bool:
        return index < len(self.codes) and self.codes[index] == CONDITION

    @property
    def conflict(self) -> bool:
        return CONFLICT in self.codes


class DynamoBooks:
    """Holds, settlements, top-ups and adjustments."""

    def __init__(self, clients: type[ClientModel], messages: type[MessageModel],
                 ledger: type[LedgerEntryModel], stuck_after_s: float,
                 contacts: type[ContactModel] | None = None) -> None:
        self._clients = clients
        self._messages = messages
        self._ledger = ledger
        self._contacts = contacts
        self._stuck_after_s = stuck_after_s
        # Last TAT seen per client; only a hint for which write to try first.
        self._tat_hint: dict[str, float | None] = {}
        # Last ``spend_day`` seen per client (the daily cap's counter): the same kind of
        # hint, for whether the hold adds to today's counter or starts it.
        self._day_hint: dict[str, str | None] = {}

    def _connection(self) -> Connection:
        return self._clients._get_connection().connection

    def _transact(self, what: str, saves: Sequence[tuple[Model, Condition]],
                  updates: Sequence[tuple[Model, list[Action], Condition | None]]) -> None:
        """Run one transaction; raise ``_Cancelled`` with its reasons (saves first, then
        updates, in order) if it was cancelled."""
        with dynamodb_errors(what):
            try:
                # A token of its own: a repeat by botocore is also a no-op on AWS.
                with TransactWrite(connection=self._connection(),
                                   client_request_token=str(uuid.uuid4())) as tx:
                    for item, condition in saves:
                        tx.save(item, condition=condition)
                    for item, actions, when in updates:
                        tx.update(item, actions=actions, condition=when)
            except TransactWriteError as exc:
                if exc.cause_response_code != "TransactionCanceledException":
                    raise
                reasons = exc.cancellation_reasons or []
                raise _Cancelled(tuple(r.code if r else None for r in reasons)) from exc

    # -- holds ---------------------------------------------------------------

    def hold_and_store(self, message: Message, limit: RateLimit, tokens: int,
                       guard: SpendGuard | None = None) -> Decision | None:
        """Take ``tokens`` from the rate bucket, hold the message's cost and write the
        message, all or nothing; with a ``guard``, add the cost to the client's daily
        counter within its cap and count the message in its velocity counter within the
        limit (block mode), in the same transaction.

        Returns the rate decision, or None when a message with this id exists
        already (nothing taken: an idempotent retry, or this call's own earlier
        success whose answer was lost). Raises ``RateLimitedError``,
        ``InsufficientCreditError``, ``DailyLimitReachedError`` or
        ``DestinationVelocityError``, having taken nothing.
        """
        client_id, cost = message.client_id, message.cost_cents
        guard = guard or SpendGuard()
        now = message.created_at
        refused = daily_refusal(guard, cost, 0)
        if refused is not None:
            raise DailyLimitReachedError(refused, next_utc_day(now))
        tat = self._tat_hint.get(client_id)
        for attempt in range(TRIES):
            if attempt:
                pause_before_retry(attempt)
                # Judge the retry at its own moment: a request that waited in a
                # queue must not be measured against the bucket at its old "now".
                now = time.time()
            idle = tat is None or tat <= now
            actions, condition, new_tat = self._admission(limit, tokens, cost, now, idle, tat)
            day_actions, day_condition = self._daily(guard, cost,
                                                     self._day_hint.get(client_id) == guard.day)
            item = new_item(self._messages, message, self._stuck_after_s)
            updates: list[tuple[Model, list[Action], Condition | None]] = [
                (self._clients(client_id), actions + day_actions,
                 condition if day_condition is None else condition & day_condition)]
            updates += self._velocity(client_id, guard)
            updates += self._stats(client_id, stats.accepted(message), message.created_at)
            try:
                self._transact("hold", [(item, MessageModel.message_id.does_not_exist())],
                               updates)
            except _Cancelled as cancelled:
                if cancelled.failed(0):
                    return None
                if cancelled.failed(1):
                    tat = self._refusal_or_tat(client_id, cost, limit, tokens, guard)
                if cancelled.failed(2):
                    raise DestinationVelocityError(
                        f"more than {guard.velocity.limit_per_hour if guard.velocity else 0} "
                        "messages this hour to numbers starting "
                        f"{(guard.velocity_key or '').split('#')[0]}; sends there are blocked "
                        "until the hour ends", guard.retry_after_s(time.time())) from None
                continue
            self._tat_hint[client_id] = new_tat
            if guard.daily_limit_cents is not None:
                self._day_hint[client_id] = guard.day
            return rate_after(limit, new_tat, now)
        raise BackendUnavailableError("the account is too busy; retry")

    @staticmethod
    def _daily(guard: SpendGuard, cost: int,
               same_day: bool) -> tuple[list[Action], Condition | None]:
        """The daily cap's part of the client-item write: add to today's counter within
        the cap, or start today's counter (the stored one is of an earlier day)."""
        cap = guard.daily_limit_cents
        if cap is None:
            return [], None
        day, cents = ClientModel.spend_day, ClientModel.spend_day_cents
        if same_day:
            return [cents.add(cost)], (day == guard.day) & (cents <= cap - cost)
        return ([day.set(guard.day), cents.set(cost)],
                day.does_not_exist() | (day != guard.day))

    def _velocity(self, client_id: str,
                  guard: SpendGuard) -> list[tuple[Model, list[Action], Condition | None]]:
        """The velocity counter's write in block mode: one more message to the
        destination range this hour, on condition it stays within the limit."""
        v, key = guard.velocity, guard.velocity_key
        if v is None or key is None or self._contacts is None or not guard.blocks:
            return []
        m = self._contacts
        expires = datetime.fromtimestamp(guard.velocity_expires_at or 0, UTC)
        return [(m(client_id, VELOCITY_PREFIX + key),
                 [m.hits.add(1), m.expires_at.set(expires)],
                 m.hits.does_not_exist() | (m.hits < v.limit_per_hour))]

    def _stats(self, client_id: str, delta: stats.Delta,
               at: float) -> list[tuple[Model, list[Action], Condition | None]]:
        """The delivery statistics' writes of a status change, for its transaction (after
        every conditional item, so the cancellation reasons keep their places)."""
        if self._contacts is None:
            return []
        return list(stats_updates(self._contacts, client_id, delta, at))

    @staticmethod
    def _admission(limit: RateLimit, tokens: int, cost: int, now: float, idle: bool,
                   tat: float | None) -> tuple[list[Action], Condition, float]:
        """The client-item write of a hold: its actions, condition and (expected) new TAT."""
        step = tokens * limit.interval
        credit = ClientModel.available_cents >= cost
        actions: list[Action] = [
            ClientModel.available_cents.set(ClientModel.available_cents - cost),
            ClientModel.held_cents.set(ClientModel.held_cents + cost),
            ClientModel.books_version.add(1),
        ]
        if idle:
            # Bucket at rest (TAT in the past): the new TAT starts from now.
            actions.append(ClientModel.tat.set(now + step))
            return (actions, credit & (ClientModel.tat.does_not_exist() | (ClientModel.tat <= now)),
                    now + step)
        # Busy: added to whatever TAT concurrent holds left (a transaction returns no
        # values, so the new TAT reported in the rate headers is the hint's).
        actions.append(ClientModel.tat.set(ClientModel.tat + step))
        bound = max_tat_allowed(limit, now, tokens)
        return (actions, credit & (ClientModel.tat > now) & (ClientModel.tat <= bound),
                max(tat or now, now) + step)

    def _refusal_or_tat(self, client_id: str, cost: int, limit: RateLimit, tokens: int,
                        guard: SpendGuard) -> float | None:
        """After a lost condition: raise the refusal it stands for, or return the real TAT
        (and note the real ``spend_day``). The bucket is judged at the moment its read
        ends: a read that waited (a busy table, a paused process) sees the sends admitted
        meanwhile, and a "now" from before it would count them against too little time."""
        item = self._client(client_id)
        now = time.time()
        tat = float(item.tat) if item.tat is not None else None
        self._tat_hint[client_id] = tat
        self._day_hint[client_id] = item.spend_day
        decision = decide(limit, tat, now, tokens)
        if not decision.allowed:
            raise RateLimitedError(decision, limit.burst)
        if item.available_cents < cost:
            raise InsufficientCreditError(
                f"this message costs {cost} cents; {int(item.available_cents)} available")
        today = int(item.spend_day_cents or 0) if item.spend_day == guard.day else 0
        refused = daily_refusal(guard, cost, today)
        if refused is not None:
            raise DailyLimitReachedError(refused, next_utc_day(now))
        return tat

    def _client(self, client_id: str) -> ClientModel:
        return read_client(self._clients, client_id)

    # -- settlements ---------------------------------------------------------

    def settle(self, message: Message, settlement: Settlement) -> Message | None:
        """Move ``message`` to its final status and its held cost on, all or nothing.

        None when the message is not in a state that may move (another writer
        settled it first, or it does not match the settlement's conditions).
        """
        actions, condition = settle_update(message, settlement)
        target = (ClientModel.spent_cents if settlement.into == "spent"
                  else ClientModel.available_cents)
        cost = message.cost_cents
        counted = stats.settled(message, settlement)
        money: list[Action] = [ClientModel.held_cents.set(ClientModel.held_cents - cost),
                 target.set(target + cost), ClientModel.books_version.add(1)]
        for attempt in range(TRIES):
            if attempt:
                pause_before_retry(attempt)
            try:
                self._transact("settle", [], [
                    (self._messages(message.message_id), actions, condition),
                    (self._clients(message.client_id), money, ClientModel.client_id.exists()),
                    *self._stats(message.client_id, counted, settlement.at)])
            except _Cancelled as cancelled:
                if cancelled.failed(0):
                    return self._own_settlement(message.message_id, settlement)
                if cancelled.failed(1):
                    raise NotFoundError(f"client {message.client_id} of message "
                                        f"{message.message_id} does not exist") from None
                continue
            return settled(message, settlement)
        raise BackendUnavailableError("the account is too busy; retry (settle)")

    def _own_settlement(self, message_id: str, s: Settlement) -> Message | None:
        """The message if this settlement's own earlier write settled it (its answer was
        lost), else None."""
        with dynamodb_errors("message read"):
            try:
                item = self._messages.get(message_id, consistent_read=True)
            except DoesNotExist:
                return None
        mine = (item.status == s.target.value and item.hold_state == s.hold.value
                and item.settled_at == s.at)
        return to_message(item) if mine else None

    # -- top-ups and adjustments ----------------------------------------------

    def top_up(self, client_id: str, entry_id: str, amount: int, note: str | None) -> bool:
        """Write the ledger entry and add it to the client's balance, together.

        True once the entry is in the books: written now, or found there (a repeat of
        this write after a lost answer, or an operator's second run with the same id).
        """
        entry = self._ledger(client_id, entry_id, kind="TOPUP", amount_cents=amount,
                             created_at=time.time(), note=note)
        actions: list[Action] = [
                   ClientModel.available_cents.set(ClientModel.available_cents + amount),
                   ClientModel.topup_cents.set(ClientModel.topup_cents + amount),
                   ClientModel.books_version.add(1)]
        return self._with_entry("top-up", entry, actions, ClientModel.client_id.exists())

    def adjust(self, client_id: str, entry_id: str, seen: Balance, fixed: Balance,
               note: str) -> bool:
        """Set the client's counters to ``fixed`` with a ledger entry saying why, only if
        the books are still exactly ``seen`` (no money moved since). False otherwise."""
        detail = json.dumps({"before": _counters(seen), "after": _counters(fixed)})
        entry = self._ledger(client_id, entry_id, kind="ADJUSTMENT",
                             amount_cents=fixed.available - seen.available,
                             created_at=time.time(), note=note, detail=detail)
        actions: list[Action] = [ClientModel.available_cents.set(fixed.available),
                   ClientModel.held_cents.set(fixed.held),
                   ClientModel.spent_cents.set(fixed.spent),
                   ClientModel.topup_cents.set(fixed.topups),
                   ClientModel.books_version.add(1)]
        unchanged = (ClientModel.available_cents == seen.available) \
            & (ClientModel.held_cents == seen.held) & (ClientModel.spent_cents == seen.spent) \
            & (ClientModel.topup_cents == seen.topups)
        unchanged &= (ClientModel.books_version == seen.version) if seen.version \
            else ClientModel.books_version.does_not_exist()
        try:
            return self._with_entry("adjustment", entry, actions, unchanged)
        except (NotFoundError, BackendUnavailableError):
            return False  # the books moved on, or are too busy now: judge them again

    def _with_entry(self, what: str, entry: LedgerEntryModel, actions: list[Action],
                    condition: Condition) -> bool:
        """The entry and the client's write together; True once the entry is there (it
        existed already: this same write, applied before its answer was lost)."""
        for attempt in range(TRIES):
            if attempt:
                pause_before_retry(attempt)
            try:
                self._transact(what, [(entry, LedgerEntryModel.entry_id.does_not_exist())],
                               [(self._clients(entry.client_id), actions, condition)])
            except _Cancelled as cancelled:
                if cancelled.failed(0):
                    return True
                if cancelled.failed(1):
                    raise NotFoundError("no such client, or its books moved on") from None
                continue  # a conflict with another transaction on the client's item
            return True
        raise BackendUnavailableError(f"the account is too busy ({what}); retry")


def _counters(b: Balance) -> dict[str, int]:
    return {"available": b.available, "held": b.held, "spent": b.spent, "topups": b.topups}

