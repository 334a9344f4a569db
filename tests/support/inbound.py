"""The inbound service wired over the fakes of a ``World``, and crashes to inject into it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.inbound import InboundSms
from chalicelib.services.inbound import InboundService
from tests.fakes.inbound import FakeConversations, FakeInbound
from tests.fakes.world import World

PERSON, OUR_NUMBER = "+14155550111", "+14155550000"
T0 = 1_800_000_000.0


def inbound_sms(text: str = "STOP", provider: str = "twilio", sid: str = "SM1",
                from_number: str = PERSON, to_number: str = OUR_NUMBER,
                received_at: float = T0) -> InboundSms:
    return InboundSms(provider, sid, from_number, to_number, text, received_at)


@dataclass
class TwoWay:
    """A ``World`` with the inbound side: stored inbound messages, sender claims,
    opt-outs and the service over them."""

    world: World = field(default_factory=World)
    default_origins: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        w = self.world
        self.inbound = FakeInbound()
        self.conversations = FakeConversations(w.messages, self.default_origins)
        self.contacts = w.contacts
        self.opt_outs = w.opt_outs
        self.service = InboundService(self.inbound, self.conversations, w.accounts, w.messages,
                                      w.send_queue, self.opt_outs, w.callbacks, w.telemetry,
                                      w.clock)

    def events(self) -> list[dict[str, Any]]:
        """The events queued for clients, in order."""
        return [job["event"] for job in self.world.callbacks_queue.sent]


class Crash(Exception):
    """The process died here (no service catches it, as none catches a real crash)."""


@contextmanager
def crash_after(target: object, method: str, call: int = 1) -> Iterator[None]:
    """Make ``target.method`` do its work on its ``call``-th call, then crash."""
    original = getattr(target, method)
    calls = 0

    def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = original(*args, **kwargs)
        if calls == call:
            raise Crash(f"crashed after {method}")
        return result

    setattr(target, method, crashing)
    try:
        yield
    finally:
        setattr(target, method, original)
