"""A client's delivery statistics (``GET /v1/stats``): one query of its stored buckets."""

from __future__ import annotations

import time
from collections.abc import Mapping

from chalicelib.domain import stats
from chalicelib.domain.errors import UnprocessableError, ValidationError
from chalicelib.domain.message import Client
from chalicelib.domain.validation import parse_rfc3339
from chalicelib.ports import Clock, StatsStore
from chalicelib.services.manage import check_params

STATS_PARAMS = frozenset({"since", "until", "bucket"})


class StatsService:
    def __init__(self, store: StatsStore, clock: Clock = time.time) -> None:
        self._store = store
        self._clock = clock

    def query(self, params: Mapping[str, str]) -> stats.StatsQuery:
        """The checked query of ``GET /v1/stats``: 400 ``validation_error`` for an unknown
        bucket size, 422 ``unprocessable`` for a range of the documented shape it will not
        answer (``since`` not before ``until``, wider than the bucket size allows)."""
        check_params(params, STATS_PARAMS)
        since = parse_rfc3339(params["since"], "since") if "since" in params else None
        until = parse_rfc3339(params["until"], "until") if "until" in params else None
        try:
            return stats.stats_query(params.get("bucket"), since, until, self._clock())
        except stats.StatsQueryError as exc:
            if exc.field == "bucket":
                raise ValidationError(str(exc), "bucket") from exc
            raise UnprocessableError(str(exc), exc.field) from exc

    def series(self, client: Client, query: stats.StatsQuery) -> dict[str, object]:
        """The client's series and totals over the query's range: one read per stored
        bucket that saw anything, whatever the number of messages."""
        found = self._store.buckets(client.client_id, query.grain, query.since, query.until)
        return stats.series(query, found)
