"""The services wired over fakes, as the container wires them over AWS."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from chalicelib.domain.message import Client
from chalicelib.domain.policy import PolicyDefaults
from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.retry import RetryPolicy
from chalicelib.services.accept import AcceptService
from chalicelib.services.callbacks import CallbackService
from chalicelib.services.dlr import DlrService
from chalicelib.services.ledger import Ledger
from chalicelib.services.optouts import OptOutBook
from chalicelib.services.sender import SenderService
from chalicelib.services.sweeper import Sweeper
from tests.fakes.accounts import FakeAccounts
from tests.fakes.books import FakeBooks
from tests.fakes.clock import FakeClock
from tests.fakes.contacts import FakeContacts
from tests.fakes.messages import FakeMessages
from tests.fakes.providers import ScriptedProvider
from tests.fakes.queues import FakeQueue
from tests.fakes.telemetry import FakeTelemetry
from tests.fakes.webhooks import FakePoster

DEFAULTS = PolicyDefaults(rate_limit_rps=100.0, rate_limit_burst=200, price_per_part_cents=5,
                          max_parts=10)
SEED_BODY = {"to": "+14155550123", "from": "TEST", "text": "Hello SMS Gateway!"}


@dataclass
class World:
    """Every port faked; services built on first use from the fields below."""

    script: list[Outcome | Exception] = field(default_factory=lambda: [Outcome.ACCEPTED])
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(15.0, 1800.0, 2.0, 10))
    defaults: PolicyDefaults = DEFAULTS
    poster: FakePoster = field(default_factory=FakePoster)
    clock: FakeClock = field(default_factory=FakeClock)
    telemetry: FakeTelemetry = field(default_factory=FakeTelemetry)
    accounts: FakeAccounts = field(default_factory=FakeAccounts)
    messages: FakeMessages = field(default_factory=FakeMessages)
    send_queue: FakeQueue = field(default_factory=lambda: FakeQueue("send"))
    callbacks_queue: FakeQueue = field(default_factory=lambda: FakeQueue("callbacks"))

    def __post_init__(self) -> None:
        self.provider = ScriptedProvider(self.script)
        self.contacts = FakeContacts()
        self.books = FakeBooks(self.accounts, self.messages, self.contacts)
        self.callbacks = CallbackService("master-secret", self.callbacks_queue, self.messages,
                                         self.accounts, self.poster, self.telemetry, self.clock)
        self.ledger = Ledger(self.books, self.messages, self.telemetry, self.callbacks,
                             self.clock)
        self.opt_outs = OptOutBook(self.contacts, self.callbacks, self.telemetry)
        self.accept = AcceptService(self.defaults, True, self.books, self.messages,
                                    self.send_queue, self.telemetry, self.clock,
                                    opt_outs=self.opt_outs, contacts=self.contacts)
        self.sender = SenderService(self.retry, 60.0, self.messages, self.ledger, self.provider,
                                    self.telemetry, self.callbacks, random.Random(7), self.clock)
        self.sweeper = Sweeper(300.0, 72 * 3600.0, self.messages, self.ledger, self.send_queue,
                               self.telemetry, self.clock)
        self.dlr = DlrService(self.messages, self.ledger, self.telemetry)

    def client(self, credit_cents: int = 1000, **own: object) -> Client:
        """A client with its own settings ``own`` (the rest from the defaults)."""
        client = Client(client_id=f"c{len(self.accounts.accounts) + 1}", name="test", **own)  # type: ignore[arg-type]
        return self.accounts.add(client, credit_cents)
