"""The money writes over the fake accounts and messages, all or nothing like the adapter's
transactions."""

from __future__ import annotations

from chalicelib.domain import stats
from chalicelib.domain.books import Settlement
from chalicelib.domain.errors import (
    DailyLimitReachedError,
    DestinationVelocityError,
    InsufficientCreditError,
    RateLimitedError,
)
from chalicelib.domain.guards import SpendGuard, daily_refusal, next_utc_day
from chalicelib.domain.message import Balance, Message
from chalicelib.domain.ratelimit import Decision, RateLimit, decide, settled
from tests.fakes.accounts import FakeAccounts
from tests.fakes.contacts import FakeContacts
from tests.fakes.messages import FakeMessages
from tests.fakes.stats import FakeStats


class FakeBooks:
    def __init__(self, accounts: FakeAccounts, messages: FakeMessages,
                 contacts: FakeContacts | None = None, stats: FakeStats | None = None) -> None:
        self._accounts = accounts
        self._messages = messages
        self._contacts = contacts or FakeContacts()
        self.stats = stats or FakeStats()  # counted with each hold and settlement
        self.spend_by_day: dict[tuple[str, str], int] = {}  # (client, UTC day) -> cents held

    def hold_and_store(self, message: Message, limit: RateLimit, tokens: int,
                       guard: SpendGuard | None = None) -> Decision | None:
        if self._messages.get(message.message_id) is not None:
            return None
        a = self._accounts._get(message.client_id)
        now, cost = message.created_at, message.cost_cents
        decision = decide(limit, a.tat, now, tokens)
        if not decision.allowed:
            raise RateLimitedError(decision, limit.burst)
        if a.available < cost:
            raise InsufficientCreditError(
                f"this message costs {cost} cents; {a.available} available")
        guard = guard or SpendGuard()
        day = (message.client_id, guard.day)
        refused = daily_refusal(guard, cost, self.spend_by_day.get(day, 0))
        if refused is not None:
            raise DailyLimitReachedError(refused, next_utc_day(now))
        counter = (message.client_id, guard.velocity_key or "")
        if guard.blocks and guard.velocity is not None and \
                self._contacts.counters.get(counter, 0) >= guard.velocity.limit_per_hour:
            raise DestinationVelocityError("velocity", guard.retry_after_s(now))
        self._messages.put_new(message)
        if guard.daily_limit_cents is not None:
            self.spend_by_day[day] = self.spend_by_day.get(day, 0) + cost
        if guard.blocks:
            self._contacts.counters[counter] = self._contacts.counters.get(counter, 0) + 1
        a.tat, a.available, a.held = decision.new_tat, a.available - cost, a.held + cost
        a.version += 1
        self.stats.add(message.client_id, stats.accepted(message), message.created_at)
        return settled(limit, decision.new_tat, now)

    def settle(self, message: Message, settlement: Settlement) -> Message | None:
        a = self._accounts._get(message.client_id)
        moved = self._messages.settle(message, settlement)
        if moved is None:
            return None
        a.held -= message.cost_cents
        if settlement.into == "spent":
            a.spent += message.cost_cents
        else:
            a.available += message.cost_cents
        a.version += 1
        self.stats.add(message.client_id, stats.settled(message, settlement), settlement.at)
        return moved

    def top_up(self, client_id: str, entry_id: str, amount: int, note: str | None) -> bool:
        a = self._accounts._get(client_id)
        if entry_id in a.ledger:
            return True  # in the books already
        a.ledger[entry_id] = amount
        a.available += amount
        a.topups += amount
        a.version += 1
        return True

    def adjust(self, client_id: str, entry_id: str, seen: Balance, fixed: Balance,
               note: str) -> bool:
        a = self._accounts.accounts.get(client_id)
        if a is None or self._accounts.balance(client_id) != seen:
            return False
        a.adjustments[entry_id] = note
        a.available, a.held, a.spent, a.topups = fixed.available, fixed.held, fixed.spent, \
            fixed.topups
        a.version += 1
        return True


def strand(accounts: FakeAccounts, client_id: str, **counters: int) -> None:
    """Set-up: move a client's counters off their records, as a bug or a hand edit would."""
    a = accounts._get(client_id)
    for name, value in counters.items():
        setattr(a, name, value)
    a.version += 1
