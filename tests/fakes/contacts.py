"""Opt-outs and velocity counters in dicts, with the adapter's "newer change wins" rule."""

from __future__ import annotations

from chalicelib.domain.inbound import OptOut


class FakeContacts:
    def __init__(self) -> None:
        self.opt_outs: dict[tuple[str, str], OptOut] = {}
        self.counters: dict[tuple[str, str], int] = {}

    def opt_out_of(self, client_id: str, number: str) -> OptOut | None:
        return self.opt_outs.get((client_id, number))

    def set_opt_out(self, change: OptOut) -> bool:
        key = (change.client_id, change.number)
        seen = self.opt_outs.get(key)
        if seen is not None and seen.changed_at >= change.changed_at:
            return False
        self.opt_outs[key] = change
        return True

    def page_opt_outs(self, client_id: str, after: str | None,
                      want: int) -> tuple[list[OptOut], str | None]:
        numbers = sorted(n for (c, n), o in self.opt_outs.items()
                         if c == client_id and o.opted_out and (after is None or n > after))
        page = [self.opt_outs[(client_id, n)] for n in numbers[:want]]
        return page, (page[-1].number if len(numbers) > want else None)

    def count_velocity(self, client_id: str, key: str, expires_at: int) -> int:
        self.counters[(client_id, key)] = self.counters.get((client_id, key), 0) + 1
        return self.counters[(client_id, key)]
