"""The message as the domain sees it, and how it is shown to clients."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chalicelib.domain.status import HoldState, Status


def rfc3339(epoch_s: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z."""
    moment = datetime.fromtimestamp(epoch_s, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class ProviderEvent:
    """A provider's report that did not end the message (``sent``, ``TEXT_SUCCESSFUL``)."""

    at: float
    status: str

    def public(self) -> dict[str, str]:
        return {"at": rfc3339(self.at), "status": self.status}

    def key(self) -> str:
        """How it is stored: ``"<epoch seconds> <status>"``."""
        return f"{self.at:.3f} {self.status}"

    @classmethod
    def parse(cls, key: str) -> ProviderEvent:
        at, _, status = key.partition(" ")
        return cls(float(at), status)


@dataclass(frozen=True)
class StatusChange:
    """One status change of a message, as its timeline shows it: the attempt and
    provider it was of, and the error code, where they apply."""

    at: float
    status: str
    attempt: int | None = None
    provider: str | None = None
    code: str | None = None

    def key(self) -> str:
        """How it is stored: ``"<epoch s> <status> <attempt> <provider> <code>"``, ``-``
        for each part that does not apply (none holds a space)."""
        parts = (self.attempt, self.provider, self.code)
        return " ".join([f"{self.at:.3f}", self.status,
                         *("-" if p is None else str(p).replace(" ", "_") for p in parts)])

    @classmethod
    def parse(cls, key: str) -> StatusChange:
        at, status, attempt, provider, code = (key.split(" ") + ["-"] * 5)[:5]
        return cls(float(at), status, int(attempt) if attempt.isdigit() else None,
                   None if provider == "-" else provider, None if code == "-" else code)


# What the timeline of an attempt handed back untried shows (it is not counted).
UNCLAIMED = "UNCLAIMED"


def timeline(history: tuple[StatusChange, ...],
             events: tuple[ProviderEvent, ...]) -> list[dict[str, object]]:
    """The gateway's status changes and the provider's reports, oldest first. A claim
    (SENDING) is stored without its attempt number: it is counted here, and a claim
    handed back untried does not count."""
    rows: list[tuple[float, int, dict[str, object]]] = []
    attempt = 0
    for order, change in enumerate(history):
        number = change.attempt
        if change.status == Status.SENDING.value:
            attempt += 1
            number = attempt
        elif change.code == UNCLAIMED:
            attempt = max(0, attempt - 1)
        rows.append((change.at, order, {
            "at": rfc3339(change.at), "status": change.status, "attempt": number,
            "provider": change.provider, "error_code": change.code, "source": "gateway"}))
    for event in events:
        rows.append((event.at, len(rows), {
            "at": rfc3339(event.at), "status": event.status, "attempt": None,
            "provider": None, "error_code": None, "source": "provider"}))
    return [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]))]


@dataclass(frozen=True)
class Message:
    """One SMS with its status and the state of its credit hold."""

    message_id: str
    client_id: str
    to: str
    sender: str
    text: str
    encoding: str
    parts: int
    cost_cents: int
    status: Status
    hold_state: HoldState
    created_at: float
    updated_at: float
    attempts: int = 0
    client_reference: str | None = None
    error_code: str | None = None
    error: str | None = None
    provider_message_id: str | None = None
    request_hash: str | None = None
    request_id: str | None = None
    retry_at: float | None = None
    callback_url: str | None = None
    callback_on_sent: bool = False
    callback_state: str | None = None
    send_at: float | None = None
    sent_at: float | None = None
    provider: str | None = None
    provider_cost: str | None = None  # what the provider reported charging, USD decimal
    sender_owned: bool = False
    message_type: str = "TRANSACTIONAL"
    test_mode: bool = False
    events: tuple[ProviderEvent, ...] = ()  # the provider's reports that settled nothing
    claimed_from: str | None = None  # the status the last claim took it from
    claimed_at: float | None = None  # when the last claim was made
    sweeps: int = 0  # the sweeper's turns on it (each one postpones its next further)
    route: str | None = None  # the route chosen when it was accepted (None: the default)
    country: str | None = None  # the destination's ISO country code
    failed_provider: str | None = None  # the provider its last attempt failed at
    refused_by: frozenset[str] = frozenset()  # providers that cannot send it (their refusal)
    # When it must have been handed to a provider (epoch s): later, it ends EXPIRED.
    # ``send_at`` (or its acceptance) + its ``validity_period``; None: accepted before
    # validity periods (no expiry).
    expires_at: float | None = None
    kind: str = "message"  # or KIND_REPLY: the gateway's confirmation of a keyword
    history: tuple[StatusChange, ...] = ()  # every status change, oldest first (timeline)

    @property
    def taken_over(self) -> bool:
        """Its last claim took it from a worker that died mid-attempt (after its submit
        may have begun): the one case where the provider can get it twice."""
        return self.claimed_from == Status.SENDING.value

    @property
    def validity_period(self) -> int | None:
        """Seconds from its send time (``send_at``, else acceptance) to ``expires_at``."""
        if self.expires_at is None:
            return None
        return round(self.expires_at - (self.send_at or self.created_at))

    def expired(self, now: float) -> bool:
        """Its validity period is over: it may no longer be handed to a provider."""
        return self.expires_at is not None and now >= self.expires_at

    def public(self) -> dict[str, object]:
        """The JSON body of ``GET /v1/messages/{id}``."""
        body: dict[str, object] = {
            "id": self.message_id,
            "status": self.status.value,
            "to": self.to,
            "from": self.sender,
            "text": self.text,
            "parts": self.parts,
            "cost_cents": self.cost_cents,
            "attempts": self.attempts,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "encoding": self.encoding,
            "client_reference": self.client_reference,
            "error": None,
            "provider": self.provider,
            "route": self.route,
            "provider_message_id": self.provider_message_id,
            "provider_cost": ({"amount": self.provider_cost, "currency": "USD"}
                              if self.provider_cost is not None else None),
            "provider_events": [event.public() for event in self.events],
            "timeline": timeline(self.history, self.events),
            "send_at": rfc3339(self.send_at) if self.send_at else None,
            "expires_at": rfc3339(self.expires_at) if self.expires_at else None,
            "validity_period": self.validity_period,
        }
        if self.error_code or self.error:
            body["error"] = {"code": self.error_code, "message": self.error}
        return body


KIND_MESSAGE, KIND_REPLY = "message", "keyword_reply"


@dataclass(frozen=True)
class Balance:
    """A client's money, in cents. ``initial + topups == available + held + spent``."""

    available: int
    held: int
    spent: int
    initial: int
    topups: int
    version: int = 0  # moves on with every money write; a repair is conditional on it
    # The daily cap's counter: cents held on ``spend_day`` (a UTC day); not money, so
    # not compared.
    spend_day: str | None = field(default=None, compare=False)
    spend_day_cents: int = field(default=0, compare=False)

    def held_on(self, day: str) -> int:
        """Cents held on the UTC day ``day`` (what the daily cap counts)."""
        return self.spend_day_cents if self.spend_day == day else 0

    @property
    def drift(self) -> int:
        """How far the books are off; 0 when they balance."""
        return self.initial + self.topups - (self.available + self.held + self.spent)


@dataclass(frozen=True)
class Client:
    """A client as authentication sees it: identity and per-client overrides."""

    client_id: str
    name: str
    price_per_part_cents: int | None = None
    rate_limit_rps: float | None = None
    rate_limit_burst: int | None = None
    callback_url: str | None = None
    callback_on_sent: bool = False
    webhook_secret_version: int = 1
    allowed_senders: frozenset[str] = frozenset()
    max_parts: int | None = None
    message_type: str | None = None  # TRANSACTIONAL or PROMOTIONAL; None: the provider default
    test_mode: bool = False  # its messages are checked by the provider, never sent or charged
    # Cents per part by destination country (ISO code); not hashed (a dict is not hashable).
    country_prices: Mapping[str, int] = field(default_factory=dict, hash=False)
    # Two-way and compliance (README, "Two-way and compliance").
    inbound_url: str | None = None  # where its inbound messages are posted (signed events)
    help_text: str | None = None  # the reply to HELP / INFO; None: the standard wording
    allowed_countries: frozenset[str] = frozenset()  # ISO codes; empty: every country
    daily_limit_cents: int | None = None  # what it may hold per UTC day; None: no cap
    velocity_limit: int | None = None  # messages per hour to one destination range
    velocity_mode: str | None = None  # block (default) or monitor
