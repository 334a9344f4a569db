"""What a worker service answers about one unit of work, and the jobs on the queues.

A service says ``DONE`` (the record may go) or ``RetryAfter(seconds)`` (it must
come back then); the queue edge turns that into a visibility change and a
batch-item failure. Job payloads are typed here, produced by services and
parsed once by the edge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final


class Done:
    """The unit of work is finished (or can never be done); drop its record."""

    def __repr__(self) -> str:
        return "DONE"


DONE: Final = Done()


@dataclass(frozen=True)
class RetryAfter:
    """Keep the record; it must come back after ``seconds``."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0 or math.isinf(self.seconds):
            raise ValueError(f"a retry delay must be finite and >= 0, got {self.seconds}")


Step = Done | RetryAfter


class JobError(ValueError):
    """A queue record whose body is not the job it should be."""


def required_strings(body: Mapping[str, Any], names: Iterable[str], max_chars: int,
                     what: str) -> dict[str, str]:
    """``body``'s ``names``, each a string of 1 to ``max_chars`` characters; ``JobError``
    naming the first that is not (``what``: the kind of record, for the message)."""
    found = {}
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= max_chars:
            raise JobError(f"{what} names its {name}")
        found[name] = value
    return found


@dataclass(frozen=True)
class SendJob:
    """One attempt at the provider for a message (the send queue).

    It carries what choosing a provider needs (the route chosen at acceptance, the
    destination's country, the parts for the provider's pace), so the sender picks
    one before it claims the message, and the claim names it. Records queued before
    routing carry the id alone: the sender routes them from the message.
    """

    message_id: str
    route: str | None = None
    country: str | None = None
    parts: int = 1

    @classmethod
    def of(cls, message: Any) -> SendJob:
        """The job of a ``Message``."""
        return cls(message.message_id, message.route, message.country, message.parts)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message_id": self.message_id}
        if self.route:
            body["route"] = self.route
        if self.country:
            body["country"] = self.country
        if self.parts != 1:
            body["parts"] = self.parts
        return body

    def log_keys(self) -> dict[str, Any]:
        return {"message_id": self.message_id}

    @classmethod
    def parse(cls, body: Any) -> SendJob:
        if not isinstance(body, dict) or not isinstance(body.get("message_id"), str):
            raise JobError("a send job names its message_id")
        route, country, parts = body.get("route"), body.get("country"), body.get("parts", 1)
        return cls(body["message_id"], route if isinstance(route, str) else None,
                   country if isinstance(country, str) else None,
                   parts if isinstance(parts, int) and not isinstance(parts, bool)
                   and 1 <= parts <= 100 else 1)


@dataclass(frozen=True)
class CallbackJob:
    """One client callback event to POST (the callbacks queue)."""

    client_id: str
    url: str
    event: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "url": self.url, "event": self.event}

    @property
    def message_id(self) -> str | None:
        value = self.event.get("message_id")
        return value if isinstance(value, str) else None

    def log_keys(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "message_id": self.message_id}

    @classmethod
    def parse(cls, body: Any) -> CallbackJob:
        if not isinstance(body, dict):
            raise JobError("a callback job is an object")
        client_id, url, event = body.get("client_id"), body.get("url"), body.get("event")
        if not isinstance(client_id, str) or not isinstance(url, str) or not isinstance(event, dict):
            raise JobError("a callback job names client_id, url and event")
        return cls(client_id, url, event)


def request_attributes(request_id: str | None) -> dict[str, str] | None:
    """The queue message attributes that carry a request's id on to the next function."""
    return {"request_id": request_id} if request_id else None


def report_backoff(receives: int) -> float:
    """Seconds before a delivery report that matched no message is tried again: 1, 2, 4, 8..."""
    return float(2 ** min(max(receives, 1) - 1, 12))
