"""Delivery statistics in the contacts table: one item per client, stored grain and bucket
(``stats#5m#<start>``, ``stats#1d#<start>``), of atomic counters (ADD).

The counts of a hold and a settlement are written inside that write's own
transaction (``DynamoBooks``), so a status change is counted exactly when it
happens: never twice, never lost. A temporary failure is counted by a plain
UpdateItem after its status write (``add``): a crash between the two misses one
count, and botocore repeating that ADD after a lost answer counts it twice; it is
not money, and a transaction would double the cost of every retry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pynamodb.attributes import NumberAttribute
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import dynamodb_errors
from chalicelib.adapters.models import STATS_PREFIX, ContactModel
from chalicelib.domain.stats import (
    COUNTERS,
    KEEP_S,
    LATENCY_BINS,
    STORED,
    Bucket,
    Delta,
    bucket_start,
)


def stats_key(grain: str, start: int) -> str:
    return f"{STATS_PREFIX}{grain}#{start:010d}"


def _counter(name: str) -> NumberAttribute:
    attribute: NumberAttribute = getattr(ContactModel, f"stat_{name}")
    return attribute


def _bin(index: int) -> NumberAttribute:
    attribute: NumberAttribute = getattr(ContactModel, f"lat_{index:02d}")
    return attribute


def stats_updates(model: type[ContactModel], client_id: str, delta: Delta,
                  at: float) -> list[tuple[ContactModel, list[Action], None]]:
    """The writes of ``delta`` at ``at``: one per stored grain (for a transaction)."""
    if not delta:
        return []
    writes: list[tuple[ContactModel, list[Action], None]] = []
    for grain, width in STORED.items():
        start = bucket_start(at, width)
        actions: list[Action] = [_counter(n).add(v) for n, v in delta.counts.items() if v]
        if delta.latency_bin is not None:
            actions.append(_bin(delta.latency_bin).add(1))
        actions.append(model.expires_at.set(
            datetime.fromtimestamp(start + width + KEEP_S[grain], UTC)))
        writes.append((model(client_id, stats_key(grain, start)), actions, None))
    return writes


def to_bucket(item: ContactModel) -> Bucket:
    start = int(item.key.rsplit("#", 1)[1])
    counts = {n: int(v) for n in COUNTERS if (v := getattr(item, f"stat_{n}")) is not None}
    histogram = {i: int(v) for i in range(LATENCY_BINS)
                 if (v := getattr(item, f"lat_{i:02d}")) is not None and v}
    return Bucket(start, counts, histogram)


class DynamoStats:
    """``StatsStore`` over the contacts table."""

    def __init__(self, model: type[ContactModel]) -> None:
        self._model = model
        self.items_read = 0  # every stats item read by this store (bench and tests)

    def add(self, client_id: str, delta: Delta, at: float) -> None:
        """Count ``delta`` outside any transaction (a temporary failure)."""
        with dynamodb_errors("stats update"):
            for item, actions, _ in stats_updates(self._model, client_id, delta, at):
                item.update(actions=actions)

    def buckets(self, client_id: str, grain: str, since: int, until: int) -> list[Bucket]:
        """The client's stored buckets of ``grain`` starting in ``[since, until)``: one
        Query, one item per bucket that saw anything."""
        m = self._model
        found: list[Bucket] = []
        with dynamodb_errors("stats query"):
            for item in m.query(client_id, m.key.between(stats_key(grain, since),
                                                         stats_key(grain, until - 1))):
                found.append(to_bucket(item))
        self.items_read += len(found)
        return found

    def days(self, client_ids: Iterable[str], day_start: int) -> dict[str, Bucket]:
        """Each client's day bucket starting at ``day_start`` (absent: nothing that day),
        in batches of 100 keys."""
        key = stats_key("1d", day_start)
        found: dict[str, Bucket] = {}
        with dynamodb_errors("stats read"):
            for item in self._model.batch_get([(c, key) for c in client_ids]):
                found[item.client_id] = to_bucket(item)
        self.items_read += len(found)
        return found
