"""What a worker service answers about one unit of work, and the jobs on the queues.

A service says ``DONE`` (the record may go) or ``RetryAfter(seconds)`` (it must
come back then); the queue edge turns that into a visibility change and a
batch-item failure. Job payloads are typed here, produced by services and
parsed once by the edge.
"""

from __future__ import annotations

import math
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


@dataclass(frozen=True)
class SendJob:
    """One attempt at the provider for a message (the send queue)."""

    message_id: str

    def body(self) -> dict[str, Any]:
        return {"message_id": self.message_id}

    def log_keys(self) -> dict[str, Any]:
        return {"message_id": self.message_id}

    @classmethod
    def parse(cls, body: Any) -> SendJob:
        if not isinstance(body, dict) or not isinstance(body.get("message_id"), str):
            raise JobError("a send job names its message_id")
        return cls(body["message_id"])


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
