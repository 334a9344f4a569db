"""The contacts table: opt-outs per (client, number) and the velocity guard's counters.

One ``optout#<number>`` item per (client, number), a change stored only if newer
than the stored one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure
from chalicelib.adapters.models import OPT_OUT_PREFIX, VELOCITY_PREFIX, ContactModel
from chalicelib.domain.inbound import OptOut


def _opt_out(item: ContactModel) -> OptOut:
    return OptOut(item.client_id, item.key[len(OPT_OUT_PREFIX):], bool(item.opted_out),
                  float(item.changed_at or 0), item.source or "", item.keyword)


class DynamoContacts:
    """``ContactStore`` over the contacts table (opt-outs; velocity counters counted)."""

    def __init__(self, model: type[ContactModel]) -> None:
        self._model = model

    def opt_out_of(self, client_id: str, number: str) -> OptOut | None:
        with dynamodb_errors("opt-out read"):
            try:
                return _opt_out(self._model.get(client_id, OPT_OUT_PREFIX + number,
                                                consistent_read=True))
            except DoesNotExist:
                return None

    def set_opt_out(self, change: OptOut) -> bool:
        m = self._model
        item = m(change.client_id, OPT_OUT_PREFIX + change.number, opted_out=change.opted_out,
                 changed_at=change.changed_at, source=change.source, keyword=change.keyword)
        with dynamodb_errors("opt-out write"):
            try:
                item.save(condition=m.key.does_not_exist() | (m.changed_at < change.changed_at))
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    return False
                raise
        return True

    def page_opt_outs(self, client_id: str, after: str | None,
                      want: int) -> tuple[list[OptOut], str | None]:
        m = self._model
        start = ({"client_id": {"S": client_id}, "key": {"S": OPT_OUT_PREFIX + after}}
                 if after is not None else None)
        found: list[OptOut] = []
        with dynamodb_errors("opt-out list"):
            for item in m.query(client_id, m.key.startswith(OPT_OUT_PREFIX),
                                filter_condition=m.opted_out == True,  # noqa: E712
                                last_evaluated_key=start, consistent_read=True):
                found.append(_opt_out(item))
                if len(found) == want:
                    return found, found[-1].number
        return found, None

    def count_velocity(self, client_id: str, key: str, expires_at: int) -> int:
        m = self._model
        with dynamodb_errors("velocity count"):
            item = m(client_id, VELOCITY_PREFIX + key)
            item.update(actions=[m.hits.add(1),
                                 m.expires_at.set(datetime.fromtimestamp(expires_at, UTC))])
            return int(item.hits or 0)
