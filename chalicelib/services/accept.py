"""Accepting a message: validate, price, admit (rate limit + hold), store, enqueue;
and quoting one (validate and price only).

Writes per request, in this order:

1. one DynamoDB transaction: the client item (rate-limit bucket and credit hold)
   and the message item (``attribute_not_exists``, so an idempotent retry cannot
   create a twin). Refusals write nothing; a repeat of it moves nothing.
2. SQS ``SendMessage`` of the message id.

A message never exists without its hold nor a hold without its message; one
that is written but not enqueued (a crash, a lost send) is enqueued by the
sweeper. See README, "Money".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass

from chalicelib.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    DailyLimitReachedError,
    DestinationNotAllowedError,
    DestinationVelocityError,
    IdempotencyKeyReusedError,
    InsufficientCreditError,
    MaxPriceExceededError,
    RateLimitedError,
    RecipientOptedOutError,
    UnprocessableError,
    ValidationError,
)
from chalicelib.domain.guards import SpendGuard, allows_country, guard_for
from chalicelib.domain.message import Client, Message
from chalicelib.domain.policy import ClientPolicy, PolicyDefaults
from chalicelib.domain.pricing import Quote
from chalicelib.domain.ratelimit import Decision
from chalicelib.domain.routing import country_of
from chalicelib.domain.segments import SegmentPlan
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.validation import parse_quote_request, parse_send_request
from chalicelib.domain.work import SendJob, request_attributes
from chalicelib.ports import Books, Clock, ContactStore, MessageStore, Telemetry, WorkQueue
from chalicelib.services.optouts import OptOutBook
from chalicelib.services.routing import RouteTable

log = logging.getLogger(__name__)

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c7c1e-8a4e-4f57-9a43-3c1d2b0e5a11")
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class Accepted:
    message: Message
    replayed: bool
    rate: Decision | None
    limit: int  # the bucket's size, for RateLimit-Limit


def request_fingerprint(body: object) -> str:
    """A hash of the request body that ignores key order and spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def message_id_for(client_id: str, idempotency_key: str | None) -> str:
    """A random id, or one derived from (client, key) so retries find the original."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{client_id}\n{idempotency_key}"))


def _fits_burst(plan: SegmentPlan, policy: ClientPolicy) -> None:
    """422 for a message with more parts than the client's bucket holds: it could never
    be admitted."""
    burst = policy.rate_limit.burst
    if plan.count > burst:
        raise UnprocessableError(f"'text' needs {plan.count} parts; this client's rate limit "
                                 f"admits at most {burst} at once", "text")


class AcceptService:
    """The front door's one use case."""

    def __init__(
        self,
        defaults: PolicyDefaults,
        strict_phone_numbers: bool,
        books: Books,
        messages: MessageStore,
        send_queue: WorkQueue,
        telemetry: Telemetry,
        clock: Clock = time.time,
        routes: RouteTable | None = None,
        opt_outs: OptOutBook | None = None,
        contacts: ContactStore | None = None,
    ) -> None:
        self._routes = routes
        self._contacts = contacts
        self._opt_outs = opt_outs
        self._defaults = defaults
        self._strict = strict_phone_numbers
        self._books = books
        self._messages = messages
        self._send_queue = send_queue
        self._telemetry = telemetry
        self._clock = clock

    def policy_for(self, client: Client) -> ClientPolicy:
        return ClientPolicy.resolve(client, self._defaults)

    def accept(
        self,
        client: Client,
        body: object,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> Accepted:
        """Accept ``body`` for ``client``; raise a ``GatewayError`` to refuse it."""
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise ValidationError("Idempotency-Key must be 1-255 characters", "Idempotency-Key")
        policy = self.policy_for(client)
        limit = policy.rate_limit
        request = parse_send_request(body, policy.max_parts, self._strict, self._clock())
        if not policy.allows_sender(request.sender):
            raise UnprocessableError("this sender ID is not allowed for your account", "from")
        fingerprint = request_fingerprint(body)
        message_id = message_id_for(client.client_id, idempotency_key)
        if idempotency_key is not None:
            existing = self._messages.get(message_id)
            if existing is not None:
                return Accepted(self._replay(existing, fingerprint), True, None, limit.burst)

        _fits_burst(request.plan, policy)
        country = country_of(request.to)
        self._check_destination(client, request.to, country)
        cost = policy.price_of(request.plan.count, country)
        if request.max_price_cents is not None and cost > request.max_price_cents:
            self._telemetry.count("RefusedForPrice")
            raise MaxPriceExceededError(
                f"the message costs {cost} cents ({request.plan.count} part(s) at "
                f"{policy.price_per_part_for(country)} cents to {country or 'its country'}), "
                f"more than max_price_cents {request.max_price_cents}",
                cost, request.max_price_cents)
        now = self._clock()
        message = Message(
            message_id=message_id,
            client_id=client.client_id,
            to=request.to,
            sender=request.sender,
            text=request.text,
            encoding=request.plan.encoding.value,
            parts=request.plan.count,
            cost_cents=cost,
            status=Status.QUEUED,
            hold_state=HoldState.HELD,
            created_at=now,
            updated_at=now,
            client_reference=request.client_reference,
            request_hash=fingerprint if idempotency_key is not None else None,
            request_id=request_id,
            callback_url=request.callback_url or policy.callback_url,
            callback_on_sent=policy.callback_on_sent,
            send_at=request.send_at,
            expires_at=(request.send_at or now) + request.validity_period,
            sender_owned=policy.owns_sender(request.sender),
            message_type=policy.message_type,
            test_mode=policy.test_mode,
            route=(self._routes.route_for(request.to, client.client_id, request.sender,
                                          country).name
                   if self._routes is not None else None),
            country=country,
        )
        decision = self._admit(message, policy, guard_for(
            client.daily_limit_cents, client.velocity_limit, client.velocity_mode,
            message.to, now))
        if decision is None:
            existing = self._messages.get(message_id)
            if existing is not None and existing.request_id == request_id:
                # Our own write, whose answer was lost before a repeat of it.
                self._enqueue(existing)
                return self._accepted(existing, None, limit.burst)
            if existing is None:
                raise ConflictError("a request with this Idempotency-Key is in progress")
            # A concurrent request with the same key wrote first; nothing was held.
            return Accepted(self._replay(existing, fingerprint), True, None, limit.burst)
        if message.send_at is None:  # a scheduled message is enqueued by the sweeper
            self._enqueue(message)
        return self._accepted(message, decision, limit.burst)

    def quote(self, client: Client, body: object) -> Quote:
        """What ``body`` would cost ``client`` if it were sent now: validated as a send
        is (the same refusals), priced as a send is; nothing held, stored or sent."""
        policy = self.policy_for(client)
        request = parse_quote_request(body, policy.max_parts, self._strict)
        if request.sender is not None and not policy.allows_sender(request.sender):
            raise UnprocessableError("this sender ID is not allowed for your account", "from")
        _fits_burst(request.plan, policy)
        country = country_of(request.to)
        price = policy.price_per_part_for(country)
        return Quote(country=country, parts=request.plan.count,
                     encoding=request.plan.encoding.value, price_per_part_cents=price,
                     cost_cents=policy.price_of(request.plan.count, country))

    def _check_destination(self, client: Client, to: str, country: str | None) -> None:
        """Refuse, before anything is held, a destination the client does not allow
        (422 destination_not_allowed), then one that opted out (422 recipient_opted_out)."""
        if not allows_country(client.allowed_countries, country):
            self._telemetry.count("RefusedForCountry")
            raise DestinationNotAllowedError(
                f"this account does not send to {country or 'numbers of no known country'}",
                "to")
        if self._opt_outs is not None and self._opt_outs.is_opted_out(client.client_id, to):
            self._telemetry.count("RefusedForOptOut")
            raise RecipientOptedOutError("the recipient has opted out of your messages", "to")

    def _admit(self, message: Message, policy: ClientPolicy,
               guard: SpendGuard) -> Decision | None:
        """Take the rate-limit tokens and the hold, and store the message, together
        (within the daily cap and, in block mode, the velocity limit); count a refusal
        where it is decided. None when the message exists already."""
        try:
            # Carriers throttle parts, not requests: the bucket counts parts.
            decision = self._books.hold_and_store(message, policy.rate_limit, message.parts,
                                                  guard)
        except InsufficientCreditError:
            self._telemetry.count("RefusedForCredit")
            raise
        except RateLimitedError:
            self._telemetry.count("RateLimited")
            raise
        except DailyLimitReachedError:
            self._telemetry.count("RefusedForDailyLimit")
            raise
        except DestinationVelocityError:
            self._telemetry.count("RefusedForVelocity")
            log.warning("velocity guard refused a send",
                        extra={"to": message.to, "range": guard.velocity_key})
            raise
        except BackendUnavailableError:
            # If the transaction applied and only its answer was lost, the message is
            # there with its hold: it is accepted. Else nothing was taken.
            with contextlib.suppress(BackendUnavailableError):
                if self._messages.get(message.message_id) is not None:
                    return None
            raise
        if decision is not None:
            self._monitor_velocity(message, guard)
        return decision

    def _monitor_velocity(self, message: Message, guard: SpendGuard) -> None:
        """Monitor mode: count the accepted message in its destination range's hour and
        log (and count) when the range is past the limit; never refuse. A lost count is
        only a monitoring gap, so it is not retried."""
        v, key = guard.velocity, guard.velocity_key
        if v is None or key is None or guard.blocks or self._contacts is None:
            return
        try:
            seen = self._contacts.count_velocity(message.client_id, key,
                                                 guard.velocity_expires_at or 0)
        except BackendUnavailableError:
            log.warning("velocity count failed (monitor mode)",
                        extra={"message_id": message.message_id})
            return
        if seen > v.limit_per_hour:
            self._telemetry.count("VelocityExceededMonitored")
            log.warning("velocity limit passed (monitor mode: sent anyway)",
                        extra={"to": message.to, "range": key, "count": seen,
                               "limit": v.limit_per_hour, "message_id": message.message_id})

    def _accepted(self, message: Message, decision: Decision | None, limit: int) -> Accepted:
        self._telemetry.count("MessagesAccepted")
        return Accepted(message, False, decision, limit)

    def _replay(self, existing: Message, fingerprint: str) -> Message:
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used with a different request body"
            )
        return existing

    def _enqueue(self, message: Message) -> None:
        try:
            self._send_queue.send(SendJob.of(message).body(),
                                  attributes=request_attributes(message.request_id))
        except BackendUnavailableError:
            # The message and its hold are stored; the sweeper enqueues it once
            # it has waited STUCK_AFTER. Answering 202 is true: it will be sent.
            log.warning("enqueue failed; left QUEUED for the sweeper",
                        extra={"message_id": message.message_id})
