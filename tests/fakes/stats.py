"""Delivery statistics in a dict, summed as the DynamoDB items are."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.domain.stats import STORED, Bucket, Delta, bucket_start


class FakeStats:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str, int], Bucket] = {}

    def add(self, client_id: str, delta: Delta, at: float) -> None:
        for grain, width in STORED.items():
            start = bucket_start(at, width)
            bucket = self.items.setdefault((client_id, grain, start), Bucket(start))
            bucket.add(Bucket(start, dict(delta.counts),
                              {delta.latency_bin: 1} if delta.latency_bin is not None else {}))

    def buckets(self, client_id: str, grain: str, since: int, until: int) -> list[Bucket]:
        return [b for (c, g, start), b in sorted(self.items.items())
                if c == client_id and g == grain and since <= start < until]

    def days(self, client_ids: Iterable[str], day_start: int) -> dict[str, Bucket]:
        return {c: b for c in client_ids if (b := self.items.get((c, "1d", day_start)))}
