"""The operator's view (``/v1/admin/*``, the ``ADMIN_API_KEY``): every client with its
balance and today's traffic, the queues and their dead letters, each provider's health."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.domain import stats
from chalicelib.domain.breaker import BreakerConfig, in_window
from chalicelib.domain.routing import Availability
from chalicelib.ports import AccountStore, Clock, ProviderHealth, StatsStore, WorkQueue


@dataclass(frozen=True)
class WatchedQueue:
    name: str  # send, dlr, callbacks, inbound
    queue: WorkQueue
    dead_letters: WorkQueue


class OperatorView:
    def __init__(self, accounts: AccountStore, store: StatsStore,
                 queues: Sequence[WatchedQueue], health: ProviderHealth,
                 providers: Callable[[], Mapping[str, str | None]], breaker: BreakerConfig,
                 clock: Clock = time.time) -> None:
        self._accounts = accounts
        self._stats = store
        self._queues = queues
        self._health = health
        self._providers = providers  # name -> why it cannot send (None: usable)
        self._breaker = breaker
        self._clock = clock

    def clients(self) -> list[dict[str, object]]:
        """Every client, its balance and its traffic of today (UTC): a scan of the
        clients (an operator's page, not a client's) and one day item per client."""
        everyone = sorted(self._accounts.scan_all(), key=lambda cb: cb[0].client_id)
        today = self._stats.days([c.client_id for c, _ in everyone],
                                 stats.utc_day_start(self._clock()))
        rows: list[dict[str, object]] = []
        for client, balance in everyone:
            day = today.get(client.client_id) or stats.Bucket(0)
            rows.append({
                "id": client.client_id, "name": client.name,
                "credit_cents": balance.available, "held_cents": balance.held,
                "spent_cents": balance.spent,
                "today": {name: int(day.counts.get(name, 0)) for name in stats.COUNTERS},
            })
        return rows

    def queues(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        for watched in self._queues:
            depth = watched.queue.depth()
            rows.append({"name": watched.name, **depth,
                         "dead_letters": watched.dead_letters.depth()["visible"]})
        return rows

    def providers(self) -> list[dict[str, object]]:
        """Each provider the code knows: usable or why not, its breaker and its success
        rate in the breaker's current window (None: no outcomes in it)."""
        problems = self._providers()
        now = self._clock()
        breakers = self._health.read(list(problems))
        rows: list[dict[str, object]] = []
        for name, problem in problems.items():
            b = breakers[name]
            availability = b.availability(now)
            state = ("closed" if availability is Availability.UP
                     else "half_open" if availability is Availability.PROBE else "open")
            window = in_window(b, now, self._breaker)
            rate = window.success_rate()
            rows.append({"name": name, "usable": problem is None, "reason": problem,
                         "breaker": state, "opened_count": b.opened_count,
                         "success_rate": round(rate, 4) if rate is not None else None,
                         "window_ok": window.ok, "window_failed": window.failed})
        return rows
