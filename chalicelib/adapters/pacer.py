"""Provider pacing on the routing table: one GCRA bucket per provider, an item of kind
``pace`` (``name`` = the provider, ``tat``), shared by every worker.

A take is one conditional UpdateItem; the pure rule (``chalicelib.domain.pacing``)
gives its condition, so a write either books the parts on the TAT the condition
saw or changes nothing: no two workers book the same interval. The bucket's
burst is one part, so a grant is (nearly) always on an idle bucket: ``tat`` is
set to now + cost * T under the condition ``tat <= now - (cost - 1) * T``. A
bucket with a larger burst gets the busy branch too (``tat = tat + cost * T``
while ``now < tat <= bound``), as the clients' buckets do.

Each worker keeps the last TAT it saw per provider. The TAT only grows, so a
refusal that hint implies is real and costs no call; a grant is always the
database's. A write whose answer was lost carries a token (``writer``) and the
condition ``writer <> token``: botocore's repeat of it fails, and the read after
the failed condition shows the token, so the take is known granted, once.
"""

from __future__ import annotations

import uuid

from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure
from chalicelib.adapters.models import RoutingModel
from chalicelib.domain.pacing import booked, lag, pace
from chalicelib.domain.ratelimit import Decision, RateLimit, max_tat_allowed, settled

KIND = "pace"
# A lost condition reads the TAT and decides again; with a burst of one the first
# read settles it (refused, or the other branch), so a few tries are plenty.
TRIES = 4


class DynamoPacer:
    """``Pacer`` on the routing table."""

    def __init__(self, routing: type[RoutingModel]) -> None:
        self._routing = routing
        self._tat_hint: dict[str, float | None] = {}  # a lower bound of each bucket's TAT

    def take(self, provider: str, limit: RateLimit, parts: int, now: float) -> Decision:
        """Take ``parts`` tokens at ``now``, or say when to come back (``retry_after_s``)."""
        tat = self._tat_hint.get(provider)
        token = uuid.uuid4().hex
        for _ in range(TRIES):
            decision = pace(limit, tat, now, parts)
            if not decision.allowed:
                return decision
            if self._book(provider, limit, parts, now, tat, token):
                self._tat_hint[provider] = decision.new_tat
                return decision
            tat, writer = self._read(provider)
            if writer == token:  # this take landed; botocore's repeat lost its condition
                return settled(limit, tat if tat is not None else decision.new_tat, now)
        # Still racing (the hint kept choosing the wrong branch): come back in one interval.
        return Decision(False, tat if tat is not None else now, 0, lag(tat, now), limit.interval)

    def lag(self, provider: str, limit: RateLimit, now: float) -> float:
        """How far ahead of ``now`` the bucket is booked, in seconds (0 when idle)."""
        tat, _ = self._read(provider)
        return lag(tat, now)

    def _book(self, provider: str, limit: RateLimit, parts: int, now: float,
              tat: float | None, token: str) -> bool:
        """One conditional write of the take; False when the bucket was not as ``tat`` said."""
        r = self._routing
        bound = max_tat_allowed(limit, now, parts)
        fresh: Condition = r.writer.does_not_exist() | (r.writer != token)
        actions: list[Action] = [r.writer.set(token), r.updated_at.set(now)]
        if tat is None or tat <= now:
            # Idle: book from now.
            actions.append(r.tat.set(booked(limit, None, now, parts)))
            condition = r.tat.does_not_exist() | (r.tat <= min(now, bound))
        else:
            # Busy (a burst above one part): book after the TAT the others left.
            actions.append(r.tat.set(r.tat + parts * limit.interval))
            condition = (r.tat > now) & (r.tat <= bound)
        with dynamodb_errors("pace"):
            try:
                r(KIND, provider).update(actions=actions, condition=fresh & condition)
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    return False
                raise
        return True

    def _read(self, provider: str) -> tuple[float | None, str | None]:
        """The bucket's TAT (None: never used) and the token of its last write."""
        with dynamodb_errors("read pace"):
            try:
                item = self._routing.get(KIND, provider, consistent_read=True)
            except self._routing.DoesNotExist:
                return None, None
        tat = None if item.tat is None else float(item.tat)
        self._tat_hint[provider] = tat
        return tat, item.writer
