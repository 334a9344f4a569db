"""Delivery statistics per client and time bucket: what one status change adds, and how
stored buckets become the series ``GET /v1/stats`` answers. No I/O.

Each status change that counts adds a ``Delta`` to two stored buckets of the client:
its 5-minute bucket and its UTC day. The counters are plain sums, so a series in
5-minute or hourly buckets is the sum of 5-minute items, and one in days the day
items: reading costs one item per stored bucket in the range, never one per message.

Time to deliver goes into a histogram of fixed, log-spaced bins (each bin √2 wider
than the one before, from 50 ms to about ten hours), so histograms add up like the
counters and a percentile comes from the merged bins, within ±19 % of the true value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib.domain.books import Settlement
from chalicelib.domain.message import Message, rfc3339
from chalicelib.domain.status import HoldState, Status

# The counters of a bucket, in the order the API shows them. "expired" messages (not
# handed to a provider within their validity period) count in "failed_perm" too.
COUNTERS = ("accepted", "delivered", "failed_temp", "failed_perm", "cancelled", "expired",
            "parts", "spent_cents")
EXPIRED_CODE = "EXPIRED"

# The stored grains: a 5-minute bucket and a UTC day, each item one client's bucket.
FIVE_MINUTES, ONE_HOUR, ONE_DAY = 300, 3600, 86400
STORED = {"5m": FIVE_MINUTES, "1d": ONE_DAY}
# Each bucket size the API offers: its width, the stored grain it is summed from, and the
# widest range it answers (so a read touches at most a few hundred items).
BUCKETS: dict[str, tuple[int, str, int]] = {
    "5m": (FIVE_MINUTES, "5m", 2 * ONE_DAY),  # 576 items at most
    "1h": (ONE_HOUR, "5m", 2 * ONE_DAY),  # the same items, summed by the hour
    "1d": (ONE_DAY, "1d", 400 * ONE_DAY),  # 400 day items at most
}
# How long a stored bucket is kept (DynamoDB's TTL deletes it after that).
KEEP_S = {"5m": 35 * ONE_DAY, "1d": 800 * ONE_DAY}

# Latency bins: bin i holds times in [EDGES[i-1], EDGES[i]) ms; bin 0 everything under
# 50 ms, the last bin everything from its lower edge up.
LATENCY_BINS = 40
FIRST_EDGE_MS = 50.0
EDGES_MS = tuple(FIRST_EDGE_MS * math.sqrt(2) ** i for i in range(LATENCY_BINS - 1))


def latency_bin(ms: float) -> int:
    """The bin of a time to deliver of ``ms`` milliseconds."""
    if ms < FIRST_EDGE_MS:
        return 0
    index = int(math.floor(2 * math.log2(ms / FIRST_EDGE_MS))) + 1
    return min(index, LATENCY_BINS - 1)


def bin_value_ms(index: int) -> float:
    """What a time in bin ``index`` is reported as: the geometric middle of its edges
    (the first bin: half its upper edge; the last: its lower edge)."""
    if index <= 0:
        return FIRST_EDGE_MS / 2
    if index >= LATENCY_BINS - 1:
        return EDGES_MS[-1]
    return math.sqrt(EDGES_MS[index - 1] * EDGES_MS[index])


def percentiles(histogram: Mapping[int, int],
                qs: Iterable[float] = (0.5, 0.95, 0.99)) -> dict[str, int] | None:
    """``{"p50": ms, ...}`` from a histogram of bin -> count; None when it is empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    found: dict[str, int] = {}
    for q in qs:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index in sorted(histogram):
            seen += histogram[index]
            if seen >= rank:
                found[f"p{round(q * 100)}"] = round(bin_value_ms(index))
                break
    return found


@dataclass(frozen=True)
class Delta:
    """What one status change adds to its buckets."""

    counts: Mapping[str, int]
    latency_bin: int | None = None

    def __bool__(self) -> bool:
        return bool(self.counts) or self.latency_bin is not None


def accepted(msg: Message) -> Delta:
    """A message accepted (its hold taken): counted at its creation."""
    return Delta({"accepted": 1, "parts": msg.parts})


def failed_temporarily() -> Delta:
    return Delta({"failed_temp": 1})


def settled(msg: Message, s: Settlement) -> Delta:
    """A message's final status, counted at the settlement's time: delivered (with its
    time to deliver, from its send time) and its captured cost, or failed or cancelled."""
    counts: dict[str, int] = {}
    latency = None
    if s.target is Status.DELIVERED:
        counts["delivered"] = 1
        start = msg.send_at if msg.send_at else msg.created_at
        latency = latency_bin(max(0.0, s.at - start) * 1000)
    elif s.target is Status.FAILED_PERM:
        counts["failed_perm"] = 1
        if s.code == EXPIRED_CODE:
            counts["expired"] = 1
    elif s.target is Status.CANCELLED:
        counts["cancelled"] = 1
    if s.hold is HoldState.CAPTURED and msg.cost_cents:
        counts["spent_cents"] = msg.cost_cents
    return Delta(counts, latency)


def bucket_start(at: float, width: int) -> int:
    """The start (epoch seconds, UTC) of the bucket of ``width`` seconds holding ``at``."""
    return int(at // width) * width


@dataclass
class Bucket:
    """One bucket's sums (stored, or summed for the API)."""

    start: int
    counts: dict[str, int] = field(default_factory=dict)
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, other: Bucket) -> None:
        for name, value in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + value
        for index, value in other.histogram.items():
            self.histogram[index] = self.histogram.get(index, 0) + value

    def public(self) -> dict[str, object]:
        body: dict[str, object] = {name: int(self.counts.get(name, 0)) for name in COUNTERS}
        finished = sum(self.counts.get(n, 0) for n in ("delivered", "failed_perm"))
        body["delivery_rate"] = (round(self.counts.get("delivered", 0) / finished, 4)
                                 if finished else None)
        body["time_to_deliver_ms"] = percentiles(self.histogram)
        return body


@dataclass(frozen=True)
class StatsQuery:
    """A checked ``GET /v1/stats`` query: buckets of ``width`` from ``since`` to ``until``
    (both on bucket edges), summed from the stored ``grain``."""

    bucket: str
    since: int
    until: int

    @property
    def width(self) -> int:
        return BUCKETS[self.bucket][0]

    @property
    def grain(self) -> str:
        return BUCKETS[self.bucket][1]


class StatsQueryError(ValueError):
    """A query the API refuses, why, and the parameter to blame."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def stats_query(bucket: str | None, since: float | None, until: float | None,
                now: float) -> StatsQuery:
    """The query for these parameters (defaults: the last 24 h in 5-minute buckets), or
    ``StatsQueryError``. The range is widened to whole buckets."""
    name = bucket or "5m"
    if name not in BUCKETS:
        raise StatsQueryError(f"bucket must be one of {', '.join(BUCKETS)}", "bucket")
    width, _, widest = BUCKETS[name]
    end = until if until is not None else now
    begin = since if since is not None else end - ONE_DAY
    if begin >= end:
        raise StatsQueryError("since must be before until", "since")
    low, high = bucket_start(begin, width), bucket_start(end - 1e-6, width) + width
    if high - low > widest:
        raise StatsQueryError(f"{name} buckets cover at most {widest // 3600} hours; "
                              "ask for a shorter range or a wider bucket", "since")
    return StatsQuery(name, low, high)


def series(query: StatsQuery, stored: Iterable[Bucket]) -> dict[str, object]:
    """The API's answer: every bucket of the range, zero-filled, oldest first, and the
    totals, from the stored buckets of the query's grain."""
    width = query.width
    buckets = {start: Bucket(start) for start in range(query.since, query.until, width)}
    total = Bucket(query.since)
    for item in stored:
        if not query.since <= item.start < query.until:
            continue
        buckets[bucket_start(item.start, width)].add(item)
        total.add(item)
    return {
        "bucket": query.bucket,
        "since": rfc3339(query.since),
        "until": rfc3339(query.until),
        "totals": total.public(),
        "series": [{"start": rfc3339(b.start), **b.public()} for b in buckets.values()],
    }


def utc_day_start(at: float) -> int:
    return bucket_start(at, ONE_DAY)


def day_label(at: float) -> str:
    return datetime.fromtimestamp(utc_day_start(at), UTC).strftime("%Y-%m-%d")
