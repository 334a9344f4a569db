"""The message store in a dict, with the adapter's conditional moves."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from chalicelib.domain.books import Settlement
from chalicelib.domain.message import Message, ProviderEvent
from chalicelib.domain.status import HoldState, Status, SweepLane, sources_of


@dataclass
class _Row:
    message: Message
    provider: str | None = None
    sweep_lane: SweepLane | None = None
    sweep_at: float | None = None


class FakeMessages:
    def __init__(self, stuck_after_s: float = 300.0) -> None:
        self.stuck_after_s = stuck_after_s
        self.rows: dict[str, _Row] = {}

    def get(self, message_id: str) -> Message | None:
        row = self.rows.get(message_id)
        return row.message if row else None

    def put_new(self, message: Message) -> bool:
        if message.message_id in self.rows:
            return False
        lane = SweepLane.TIMED if message.send_at else SweepLane.QUEUED
        sweep_at = message.send_at or message.created_at + self.stuck_after_s
        self.rows[message.message_id] = _Row(replace(message, attempts=0), sweep_lane=lane,
                                             sweep_at=sweep_at)
        return True

    def _move(self, message_id: str, allowed: Callable[[_Row], bool], **changes: object) -> Message | None:
        row = self.rows.get(message_id)
        if row is None or not allowed(row):
            return None
        row.message = replace(row.message, **changes)  # type: ignore[arg-type]
        return row.message

    def claim(self, message_id: str, now: float, stale_before: float,
              provider: str | None = None) -> Message | None:
        def ready(row: _Row) -> bool:
            m = row.message
            fresh = m.status is Status.QUEUED or (
                m.status is Status.FAILED_TEMP and (m.retry_at or 0) <= now)
            abandoned = m.status is Status.SENDING and (m.claimed_at or 0) < stale_before
            due = m.send_at is None or m.send_at <= now
            return (fresh or abandoned) and m.hold_state is HoldState.HELD and due

        row = self.rows.get(message_id)
        return self._move(message_id, ready, status=Status.SENDING,
                          attempts=(row.message.attempts + 1) if row else 0, updated_at=now,
                          claimed_from=row.message.status.value if row else None,
                          claimed_at=now,
                          provider=provider or (row.message.provider if row else None))

    def mark_sent(self, message_id: str, attempt: int, provider: str, provider_message_id: str,
                  now: float) -> Message | None:
        moved = self._move(message_id, lambda r: r.message.status is Status.SENDING
                           and r.message.attempts == attempt, status=Status.SENT,
                           provider_message_id=provider_message_id, sent_at=now, updated_at=now,
                           provider=provider)
        if moved is not None:
            self.rows[message_id].provider = provider
        return moved

    def unclaim(self, message_id: str, attempt: int, back_to: Status, now: float) -> bool:
        return self._move(message_id, lambda r: r.message.status is Status.SENDING
                          and r.message.attempts == attempt, status=back_to,
                          attempts=attempt - 1, retry_at=now, updated_at=now,
                          **({"provider": None} if back_to is Status.QUEUED else {})) is not None

    def set_provider(self, message_id: str, attempt: int, provider: str) -> bool:
        return self._move(message_id, lambda r: r.message.status is Status.SENDING
                          and r.message.attempts == attempt, provider=provider) is not None

    def mark_failed_temp(self, message_id: str, attempt: int, code: str, reason: str,
                         retry_at: float, now: float, provider: str | None = None,
                         refused: bool = False) -> Message | None:
        row = self.rows.get(message_id)
        extra: dict[str, object] = {}
        if provider:
            extra["failed_provider"] = provider
            if refused and row is not None:
                extra["refused_by"] = row.message.refused_by | {provider}
        moved = self._move(message_id, lambda r: r.message.status is Status.SENDING
                           and r.message.attempts == attempt, status=Status.FAILED_TEMP,
                           error_code=code, error=reason, retry_at=retry_at, updated_at=now,
                           **extra)
        if moved is not None:
            self.rows[message_id].sweep_at = retry_at + self.stuck_after_s
        return moved

    def settle(self, message: Message, s: Settlement) -> Message | None:
        """The message half of ``FakeBooks.settle``: the adapter's condition and write."""
        def allowed(row: _Row) -> bool:
            m = row.message
            return (m.status in sources_of(s.target) and m.hold_state is HoldState.HELD
                    and m.client_id == message.client_id and m.cost_cents == message.cost_cents
                    and (s.attempt is None or m.attempts == s.attempt)
                    and (s.due_by is None or (row.sweep_at is not None
                                              and row.sweep_at <= s.due_by))
                    and (s.provider_message_id is None
                         or m.provider_message_id == s.provider_message_id
                         or (m.status is Status.SENDING and m.provider_message_id is None
                             and m.claimed_from != Status.FAILED_TEMP.value))
                    and (s.provider is None or m.provider == s.provider))

        changes: dict[str, object] = (
            {"error_code": s.code, "error": s.reason or s.code} if s.code is not None else {})
        if s.provider_cost is not None:
            changes["provider_cost"] = s.provider_cost
        if s.provider_message_id is not None:
            changes["provider_message_id"] = s.provider_message_id
        moved = self._move(message.message_id, allowed, status=s.target, hold_state=s.hold,
                           updated_at=s.at, **changes)
        if moved is not None:
            row = self.rows[message.message_id]
            row.sweep_at = row.sweep_lane = None
        return moved

    def record_event(self, message_id: str, provider_message_id: str, status: str,
                     at: float) -> bool:
        row = self.rows.get(message_id)
        event = ProviderEvent(at, status)
        m = row.message if row else None
        if m is None or m.provider_message_id != provider_message_id \
                or m.status is not Status.SENT or len(m.events) >= 20 \
                or event.key() in {e.key() for e in m.events}:
            return False
        row.message = replace(m, events=(*m.events, ProviderEvent.parse(event.key())))  # type: ignore[union-attr]
        return True

    def mark_callback_queued(self, message_id: str) -> None:
        self._move(message_id, lambda r: True, callback_state="QUEUED")

    def due_for_sweep(self, lane: SweepLane, now: float) -> list[tuple[str, float]]:
        return sorted(((mid, r.sweep_at) for mid, r in self.rows.items()
                       if r.sweep_lane is lane and r.sweep_at is not None and r.sweep_at <= now),
                      key=lambda pair: pair[1])

    def postpone_sweep(self, message_id: str, seen_at: float, next_at: float,
                       lane: SweepLane | None = None) -> bool:
        row = self.rows.get(message_id)
        if row is None or row.sweep_at != seen_at:
            return False
        row.sweep_at = next_at
        row.message = replace(row.message, sweeps=row.message.sweeps + 1)
        if lane is not None:
            row.sweep_lane = lane
        return True

    def scan_all(self) -> Iterable[Message]:
        return [r.message for r in self.rows.values()]

    def page_for_client(self, client_id: str, since: float | None, until: float | None,
                        after: tuple[float, str] | None, want: int,
                        matches: Callable[[Message], bool],
                        ) -> tuple[list[Message], tuple[float, str] | None]:
        low, high = since if since is not None else 0, until if until is not None else 1e12
        if high < low:  # as DynamoDB: a BETWEEN whose bounds cross is a ValidationException
            raise ValueError("BETWEEN bounds cross")
        ordered = sorted((r.message for r in self.rows.values() if r.message.client_id == client_id
                          and (since is None or r.message.created_at >= since)
                          and (until is None or r.message.created_at <= until)),
                         key=lambda m: (m.created_at, m.message_id), reverse=True)
        if after is not None:
            ordered = [m for m in ordered if (m.created_at, m.message_id) < after]
        found = [m for m in ordered if matches(m)]
        if len(found) > want:
            last = found[want - 1]
            return found[:want], (last.created_at, last.message_id)
        return found, None
