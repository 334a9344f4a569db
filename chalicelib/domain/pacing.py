"""Provider pacing: ``PROVIDER_MPS``, each provider's cap of parts per second, for all
workers together.

It is the GCRA of ``ratelimit`` (one TAT per provider) with a burst of one part:
a burst of N would let N + MPS parts through in the second after a quiet spell,
while the cap is MPS parts in *any* second. With a burst of one, parts go one
interval (1 / MPS) apart and no one-second window (half open) holds more than
MPS of them.

A message goes to the provider in one request, however many parts it has, so it
cannot wait for its parts one by one. A take of ``cost`` parts is therefore
allowed when ``TAT <= now - (cost - burst) * T``: for a one-part message that is
plain GCRA; a longer one waits until the bucket has been idle for the intervals
of its extra parts, then books all of them from now (TAT = now + cost * T). Each
grant then has the intervals of its parts free before it (the idle time) and
after it (the booking), and with an integer MPS no one-second window holds more
than MPS parts (a fractional MPS rounds up). A message of more parts than MPS is
let through when the bucket is idle long enough, and so exceeds the cap in its
own second; the bucket then stays booked for cost / MPS seconds, so the average
holds.

What the provider sees is the grants shifted by each call's own delay (the
bucket's write, the worker's thread): two grants an exact interval apart can
arrive closer. So the sender runs a provider's bucket ``PACE_MARGIN`` slower than its cap
(``paced_limit``): six
grants at MPS=5 span 1.1 s, not 1.0 s, and the provider still sees at most MPS
parts in any second when a call is delayed up to a tenth of a second more than
another. The cost: a provider gets at most MPS / 1.1 parts per second.

The TAT only ever grows (a grant books from ``now`` at least, past the old TAT),
so a TAT read earlier is a lower bound: a refusal it implies is a real one.
"""

from __future__ import annotations

from chalicelib.domain.ratelimit import Decision, RateLimit, max_tat_allowed, settled

PACE_BURST = 1  # parts; see the module docstring
PACE_MARGIN = 0.1  # the bucket runs this much slower than the cap (call delays vary)


def pace_limit(parts_per_s: float) -> RateLimit:
    """A bucket of ``parts_per_s`` parts per second, one part at a time."""
    return RateLimit(rate_per_s=parts_per_s, burst=PACE_BURST)


def paced_limit(cap_per_s: float) -> RateLimit:
    """The bucket the sender takes from for a provider capped at ``cap_per_s``: the cap
    less ``PACE_MARGIN``."""
    return pace_limit(cap_per_s / (1 + PACE_MARGIN))


def pace(limit: RateLimit, tat: float | None, now: float, cost: int = 1) -> Decision:
    """Decide a take of ``cost`` parts (one message) from a provider's bucket whose TAT is
    ``tat`` (None: never used). Refused, ``retry_after_s`` is when it would be allowed
    (if no other take comes first)."""
    if cost < 1:
        raise ValueError("a take is of one part or more")
    bound = max_tat_allowed(limit, now, cost)
    if tat is None or tat <= bound:
        return settled(limit, booked(limit, tat, now, cost), now)
    return Decision(False, tat, 0, lag(tat, now), tat - bound)


def booked(limit: RateLimit, tat: float | None, now: float, cost: int) -> float:
    """The TAT after a granted take of ``cost`` parts."""
    return max(tat if tat is not None else now, now) + cost * limit.interval


def lag(tat: float | None, now: float) -> float:
    """How far ahead of ``now`` the bucket is booked, in seconds (0 when idle)."""
    return max(0.0, (tat if tat is not None else now) - now)
