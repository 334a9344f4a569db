"""The providers' circuit breakers on the routing table: one item of kind ``breaker`` per
provider (``name`` = the provider), shared by every worker.

Every change is a read and the pure transition (``chalicelib.domain.breaker``).
A transition (a new window, opening, closing, a probe) is written with a put
conditional on the version read, so no two workers overwrite each other: the one
that loses reads again and redoes its change on the fresh state. A plain count,
the common case, is an increment conditional only on the window and open state,
so counts of many workers at once never conflict (a read-modify-write of every
count measured here lost counts with four workers on one breaker). Each write
carries a token of its own (``writer``) and is conditional on a different one:
when botocore repeats a write whose answer was lost, the repeat fails its
condition, and the fresh read shows the token: the change is in, and is not made
twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure, pause_before_retry
from chalicelib.adapters.models import RoutingModel
from chalicelib.domain.breaker import (
    Breaker,
    BreakerConfig,
    after_outcomes,
    counts_only,
    take_probe,
    tripped,
)

log = logging.getLogger(__name__)

KIND = "breaker"
# A lost race reads again and retries; under many workers recording at once on one
# breaker a few may lose in a row, and a jittered pause spreads them.
TRIES = 8


class DynamoHealth:
    """``ProviderHealth`` on the routing table."""

    def __init__(self, routing: type[RoutingModel]) -> None:
        self._routing = routing

    def read(self, providers: Iterable[str]) -> dict[str, Breaker]:
        """Each named provider's breaker, from one Query (absent: closed and empty)."""
        names = list(providers)
        stored = {b.provider: b for b in self.all()}
        return {name: stored.get(name) or Breaker(name) for name in names}

    def all(self) -> list[Breaker]:
        """Every stored breaker, by provider name."""
        with dynamodb_errors("read breakers"):
            items = list(self._routing.query(KIND, consistent_read=True))
        return [to_breaker(item) for item in items]

    def record(self, provider: str, now: float, cfg: BreakerConfig, ok: int = 0,
               failed: int = 0, probe: bool = False) -> Breaker:
        """Count outcomes; the breaker's new state.

        The pure transition decides on a fresh read. A plain count (the same window and
        open state) is one increment conditional on that state, so workers counting at
        once never conflict; any other change (a new window, opening, closing, a probe's
        outcome) is a put conditional on the version read. Should every try lose its
        race, the outcomes are left uncounted and the latest state read is returned: a
        count is advice, and the other workers' counts are in."""
        token = uuid.uuid4().hex
        for attempt in range(TRIES):
            seen = self._get(provider)
            if seen.writer == token:
                return seen.breaker  # an earlier try landed; its answer was lost
            new = after_outcomes(seen.breaker, now, cfg, ok, failed, probe)
            if new == seen.breaker:
                return new
            if counts_only(seen.breaker, new):
                counted = self._add(seen.breaker, ok, failed, token)
                if counted is not None:
                    return self._trip(counted, now, cfg)
            elif self._put(new, seen.breaker.version, token):
                return new
            pause_before_retry(attempt)
        log.warning("breaker outcomes left uncounted after %d lost races",
                    TRIES, extra={"provider": provider, "ok": ok, "failed": failed})
        return self._get(provider).breaker

    def _trip(self, counted: Breaker, now: float, cfg: BreakerConfig) -> Breaker:
        """Open the breaker if the counts as stored (others' included) say so."""
        current = counted
        for attempt in range(TRIES):
            opened = tripped(current, now, cfg)
            if opened is current or self._put(opened, current.version, uuid.uuid4().hex):
                return opened
            pause_before_retry(attempt)
            current = self._get(current.provider).breaker
        return current

    def take_probe(self, seen: Breaker, now: float, cfg: BreakerConfig) -> bool:
        """Win the probe slot of ``seen`` (the breaker as read): exactly one worker does.
        A lost race on another change (a count) reads again and tries while the fresh
        state still offers a probe."""
        token = uuid.uuid4().hex
        current = seen
        for attempt in range(TRIES):
            taken = take_probe(current, now, cfg)
            if taken is None:
                return False
            if self._put(taken, current.version, token):
                return True
            pause_before_retry(attempt)
            fresh = self._get(seen.provider)
            if fresh.writer == token:
                return True
            current = fresh.breaker
        return False

    # -- items -------------------------------------------------------------------
    def _get(self, provider: str) -> _Seen:
        with dynamodb_errors("read breaker"):
            try:
                item = self._routing.get(KIND, provider, consistent_read=True)
            except self._routing.DoesNotExist:
                return _Seen(Breaker(provider), None)
        return _Seen(to_breaker(item), item.writer)

    def _add(self, seen: Breaker, ok: int, failed: int, token: str) -> Breaker | None:
        """Add the counts if the window and open state are still ``seen``'s; the breaker
        as stored after it, or None if they changed (a transition came between)."""
        r = self._routing
        shape = (r.window_start == seen.window_start) & (
            r.opened_at == seen.opened_at if seen.is_open else r.opened_at.does_not_exist())
        # botocore's repeat of a landed increment must not count it again.
        once = r.writer.does_not_exist() | (r.writer != token)
        item = r(KIND, seen.provider)
        with dynamodb_errors("count breaker outcomes"):
            try:
                item.update(actions=[r.ok.add(ok), r.failed.add(failed), r.version.add(1),
                                     r.writer.set(token)],
                            condition=r.name.exists() & shape & once)
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    return None
                raise
        return to_breaker(item)

    def _put(self, b: Breaker, expected_version: int, token: str) -> bool:
        """Write ``b`` if the stored version is still ``expected_version``; False if not."""
        r = self._routing
        item = r(KIND, b.provider, window_start=b.window_start, ok=b.ok, failed=b.failed,
                 opened_at=b.opened_at, probe_at=b.probe_at, opened_count=b.opened_count,
                 version=b.version, writer=token)
        condition = (r.name.does_not_exist() if expected_version == 0
                     else r.version == expected_version)
        with dynamodb_errors("write breaker"):
            try:
                item.save(condition=condition)
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    return False
                raise
        return True


@dataclass(frozen=True)
class _Seen:
    """A breaker as read, with the token of the write that made it."""

    breaker: Breaker
    writer: str | None


def to_breaker(item: RoutingModel) -> Breaker:
    return Breaker(provider=item.name, window_start=float(item.window_start or 0.0),
                   ok=int(item.ok or 0), failed=int(item.failed or 0),
                   opened_at=_float(item.opened_at), probe_at=_float(item.probe_at),
                   opened_count=int(item.opened_count or 0), version=int(item.version or 0))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
