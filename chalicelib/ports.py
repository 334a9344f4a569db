"""The ports: what services need from the world, as Protocols.

Services import these and the domain, nothing else of ours. ``adapters/`` and
``providers/`` implement them against DynamoDB, SQS, HTTP and providers;
``tests/fakes/`` implements them in memory. Failures that trying again can fix
are ``BackendUnavailableError``; a lost conditional write is a ``None`` or
``False`` answer, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from chalicelib.domain.books import Settlement
from chalicelib.domain.breaker import Breaker, BreakerConfig
from chalicelib.domain.guards import SpendGuard
from chalicelib.domain.inbound import InboundMessage, OptOut
from chalicelib.domain.message import Balance, Client, Message
from chalicelib.domain.provider_errors import SubmitResult
from chalicelib.domain.ratelimit import Decision, RateLimit
from chalicelib.domain.reports import DeliveryReport, OutboundSms
from chalicelib.domain.routing import Route
from chalicelib.domain.signing import SecretVersions
from chalicelib.domain.stats import Bucket, Delta
from chalicelib.domain.status import Status, SweepLane


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch."""
        ...


class MessageStore(Protocol):
    """Messages; every status change is one conditional write that names its sources."""

    def get(self, message_id: str) -> Message | None: ...

    def put_new(self, message: Message) -> bool:
        """Write a new message; False if one with its id exists."""
        ...

    def claim(self, message_id: str, now: float, stale_before: float,
              provider: str | None = None) -> Message | None:
        """QUEUED, due FAILED_TEMP or abandoned SENDING -> SENDING, attempts + 1."""
        ...

    def mark_sent(self, message_id: str, attempt: int, provider: str, provider_message_id: str,
                  now: float) -> Message | None: ...

    def unclaim(self, message_id: str, attempt: int, back_to: Status, now: float) -> bool:
        """Hand back an untried claim: ``back_to``, the attempt not counted."""
        ...

    def set_provider(self, message_id: str, attempt: int, provider: str) -> bool:
        """The claimed attempt goes through ``provider`` (not the one the claim named)."""
        ...

    def mark_failed_temp(self, message_id: str, attempt: int, code: str, reason: str,
                         retry_at: float, now: float, provider: str | None = None,
                         refused: bool = False) -> Message | None: ...

    def record_event(self, message_id: str, provider_message_id: str, status: str,
                     at: float) -> bool:
        """Put a progress report on the timeline of the message known by that provider
        id; False when there is none (yet)."""
        ...

    def mark_callback_queued(self, message_id: str) -> None: ...

    def due_for_sweep(self, lane: SweepLane, now: float) -> Iterable[tuple[str, float]]:
        """(message id, sweep time) of the lane's messages whose sweep time has come,
        oldest first, read lazily as the caller goes."""
        ...

    def postpone_sweep(self, message_id: str, seen_at: float, next_at: float,
                       lane: SweepLane | None = None) -> bool:
        """Move the sweep time on and count the turn (``Message.sweeps`` + 1), only if
        the sweep time is still ``seen_at``."""
        ...

    def scan_all(self) -> Iterable[Message]: ...

    def page_for_client(self, client_id: str, since: float | None, until: float | None,
                        after: tuple[float, str] | None, want: int,
                        matches: Callable[[Message], bool],
                        ) -> tuple[list[Message], tuple[float, str] | None]: ...


class AccountStore(Protocol):
    """Clients and their balances, read; the money moves in ``Books``."""

    def find_by_key_hash(self, key_hash: str) -> Client | None: ...

    def balance(self, client_id: str) -> Balance: ...

    def webhook_secret_versions(self, client_id: str) -> SecretVersions: ...

    def rotate_webhook_secret(self, client_id: str, now: float) -> SecretVersions:
        """Make the next secret version current as of ``now`` (the previous one's grace)."""
        ...

    def topups(self, client_id: str) -> int: ...

    def scan_all(self) -> Iterator[tuple[Client, Balance]]: ...

    def is_operator_key(self, key_hash: str) -> bool:
        """True when ``key_hash`` is the operator key's (``ADMIN_API_KEY``)."""
        ...


class Books(Protocol):
    """Every write that moves money: atomic over the items it touches (the money and
    the record that explains it), and a no-op when repeated."""

    def hold_and_store(self, message: Message, limit: RateLimit, tokens: int,
                       guard: SpendGuard | None = None) -> Decision | None:
        """Take ``tokens``, hold the message's cost and store it, all or nothing; None
        when a message with its id exists (nothing taken); else raise the refusal.

        ``guard``: the client's daily cap (``DailyLimitReachedError``) and, in block
        mode, its velocity counter (``DestinationVelocityError``), moved in the same
        transaction."""
        ...

    def settle(self, message: Message, settlement: Settlement) -> Message | None:
        """The final status and the hold's settlement together; None if it lost."""
        ...

    def top_up(self, client_id: str, entry_id: str, amount: int, note: str | None) -> bool:
        """The ledger entry and the balance together; False if the entry existed."""
        ...

    def adjust(self, client_id: str, entry_id: str, seen: Balance, fixed: Balance,
               note: str) -> bool:
        """Set the counters to ``fixed`` (with a ledger entry) if they are still ``seen``."""
        ...


class KeyStore(Protocol):
    """Who holds which API key (as its SHA-256): each key belongs to at most one client."""

    def upsert(self, client_id: str, name: str, key_hash: str, credit_cents: int) -> bool:
        """Create the client holding ``key_hash``; False if it exists (nothing changed).
        ``ConflictError`` if another client holds the key."""
        ...

    def set_api_key(self, client_id: str, key_hash: str) -> None:
        """Give the client ``key_hash`` and release its old key; ``ConflictError`` if
        another client holds it, ``NotFoundError`` if there is no such client."""
        ...

    def set_operator_key(self, key_hash: str) -> None:
        """Make ``key_hash`` the operator key (older ones stop working); ``ConflictError``
        if a client holds it."""
        ...


class StatsStore(Protocol):
    """Each client's delivery statistics per stored time bucket (``domain.stats``)."""

    def add(self, client_id: str, delta: Delta, at: float) -> None:
        """Count ``delta`` in the buckets of ``at`` (the counts of holds and settlements
        are written by ``Books`` in their own transactions)."""
        ...

    def buckets(self, client_id: str, grain: str, since: int, until: int) -> list[Bucket]:
        """The stored buckets of ``grain`` starting in ``[since, until)`` (absent: empty)."""
        ...

    def days(self, client_ids: Iterable[str], day_start: int) -> dict[str, Bucket]:
        """Each client's day bucket starting at ``day_start`` (absent: nothing that day)."""
        ...


class PriceStore(Protocol):
    """A client's prices per destination country (the operator's price list)."""

    def client(self, client_id: str) -> Client:
        """The client, read consistently; ``NotFoundError`` when there is none."""
        ...

    def set_country_price(self, client_id: str, country: str,
                          cents: int | None) -> Mapping[str, int]:
        """Set (None: remove) one country's price without losing a rival writer's change
        to another country; the whole list as stored."""
        ...


class ClientReader(Protocol):
    """One client by id (the inbound service: whose message it is, its settings)."""

    def client(self, client_id: str) -> Client:
        """The client, read consistently; ``NotFoundError`` when there is none."""
        ...


class WorkQueue(Protocol):
    """One work queue; its records come back until they are deleted."""

    name: str

    def send(self, body: Mapping[str, Any], delay_s: int = 0,
             attributes: Mapping[str, str] | None = None) -> None: ...

    def depth(self) -> dict[str, int]:
        """``visible``, ``in_flight`` and ``delayed`` record counts."""
        ...

    def delay_redelivery(self, receipt_handle: str, delay_s: float) -> bool:
        """Make an in-flight record come back after ``delay_s``; best effort."""
        ...


class Provider(Protocol):
    """An SMS provider as the sender sees it (``providers/`` has one module each)."""

    name: str

    def submit(self, sms: OutboundSms) -> SubmitResult:
        """Hand one message over; provider faults are a TEMPORARY result, not an exception."""
        ...

    def accepted_before(self, message_id: str) -> str | None:
        """The provider's id for ``message_id`` if it accepted it already; None when it
        did not, or cannot say (then a re-submission may send it twice)."""
        ...


class ReportSource(Protocol):
    """A provider that posts delivery reports to ``POST /v1/dlr/{provider}``."""

    name: str

    def parse_report(self, raw: bytes, headers: Mapping[str, str], now: float,
                     query: Mapping[str, str]) -> DeliveryReport:
        """Verify the request came from the provider, then read its report.

        ``headers`` have lower-case names; ``query`` is the URL's query string.
        Raises ``UnauthorizedError`` or ``ForbiddenError`` for a bad signature and
        ``ValidationError`` or ``MalformedJsonError`` for a body that is not a report.
        """
        ...


class WebhookPoster(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST; the HTTP status, or 0 when no answer came. ``CallbackRefusedError``
        when the URL may never be called."""
        ...


class Telemetry(Protocol):
    """What services tell observability: counters, durations and log correlation."""

    def count(self, name: str, value: int = 1) -> None: ...

    def count_failure(self, reason: str) -> None: ...

    def count_for_provider(self, name: str, provider: str) -> None:
        """A counter with the provider as a dimension."""
        ...

    def record_ms(self, name: str, milliseconds: float) -> None: ...

    def correlate(self, **keys: Any) -> None:
        """Add keys (``client_id``, ``message_id``...) to this unit of work's logs."""
        ...

    def scope(self, **keys: Any) -> AbstractContextManager[None]:
        """Keys for one part of the work (one swept message), then the old ones."""
        ...


class Notifier(Protocol):
    """Queues client callbacks for status changes."""

    def notify(self, message: Message) -> None: ...

    def ensure_final_notified(self, message: Message) -> None: ...


class RouteBook(Protocol):
    """Routes and provider costs, as operators store them (readers cache them)."""

    def routes(self) -> list[Route]: ...

    def put_route(self, route: Route) -> None:
        """Create or replace the route of that name."""
        ...

    def delete_route(self, name: str) -> bool:
        """False when there was no such route."""
        ...

    def costs(self) -> dict[tuple[str, str], int]:
        """(provider, country) -> what the provider charges per part, in micro-dollars."""
        ...

    def put_cost(self, provider: str, country: str, micros: int) -> None: ...


class ProviderHealth(Protocol):
    """The providers' circuit breakers, shared by every worker."""

    def read(self, providers: Iterable[str]) -> dict[str, Breaker]:
        """Each named provider's breaker (a closed, empty one when none is stored)."""
        ...

    def record(self, provider: str, now: float, cfg: BreakerConfig, ok: int = 0,
               failed: int = 0, probe: bool = False) -> Breaker:
        """Count outcomes (opening or closing the breaker as they say); the new state."""
        ...

    def take_probe(self, seen: Breaker, now: float, cfg: BreakerConfig) -> bool:
        """Win the half-open breaker's probe slot; False when another worker has it."""
        ...

    def all(self) -> list[Breaker]: ...


class Pacer(Protocol):
    """Each provider's parts-per-second cap, one GCRA bucket per provider for all workers."""

    def take(self, provider: str, limit: RateLimit, parts: int, now: float) -> Decision:
        """Take ``parts`` tokens, or say when to come back (``retry_after_s``)."""
        ...

    def lag(self, provider: str, limit: RateLimit, now: float) -> float:
        """How far ahead of ``now`` the bucket is booked, in seconds (0 when idle)."""
        ...


class ContactStore(Protocol):
    """Per client and person: who opted out, and the velocity guard's counters."""

    def opt_out_of(self, client_id: str, number: str) -> OptOut | None:
        """The number's last opt-out or opt-in with this client, read consistently; None
        when it never had one."""
        ...

    def set_opt_out(self, change: OptOut) -> bool:
        """Store ``change`` unless a change at the same time or later is stored (a late or
        repeated keyword cannot undo a newer one); True when it was stored."""
        ...

    def page_opt_outs(self, client_id: str, after: str | None,
                      want: int) -> tuple[list[OptOut], str | None]:
        """The client's opted-out numbers in number order, after ``after``; with the
        number to continue after (None at the end)."""
        ...

    def count_velocity(self, client_id: str, key: str, expires_at: int) -> int:
        """Count one message in a velocity counter (monitor mode); its new count."""
        ...


class InboundStore(Protocol):
    """Inbound messages, stored once each."""

    def put_new(self, message: InboundMessage) -> bool:
        """False when one with its id is stored (a duplicate)."""
        ...

    def get(self, inbound_id: str) -> InboundMessage | None: ...

    def mark_done(self, inbound_id: str, reply_id: str | None) -> None:
        """Every effect of it is applied (a duplicate of it is dropped from then on)."""
        ...

    def page_for_client(self, client_id: str, since: float | None, until: float | None,
                        after: tuple[float, str] | None, want: int,
                        matches: Callable[[InboundMessage], bool],
                        ) -> tuple[list[InboundMessage], tuple[float, str] | None]: ...


class Conversations(Protocol):
    """Who an inbound message is for, and which outbound message it answers."""

    def owner_of(self, number: str) -> str | None:
        """The client that owns ``number`` as a sender ID (``make client SENDER_IDS=``)."""
        ...

    def last_outbound(self, person: str, our_number: str,
                      client_id: str | None = None) -> Message | None:
        """The newest message to ``person`` that went out from ``our_number`` (of
        ``client_id``, when given); None when there is none."""
        ...
