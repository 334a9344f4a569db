"""A webhook poster that answers from a script and remembers each request."""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.domain.errors import CallbackRefusedError


class FakePoster:
    def __init__(self, *statuses: int, refuse: bool = False) -> None:
        self._statuses = list(statuses) or [200]
        self.refuse = refuse
        self.posted: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        if self.refuse:
            raise CallbackRefusedError("callback URL resolves to a private address")
        self.posted.append((url, body, dict(headers)))
        return self._statuses.pop(0) if len(self._statuses) > 1 else self._statuses[0]
