"""Accepting a message: validate, price, admit (rate limit + hold), store, enqueue.

Writes per request, in this order, each a single-item conditional write:

1. client item: rate-limit bucket and credit hold together (refusals write nothing);
2. message item: ``attribute_not_exists``, so an idempotent retry cannot create a twin;
3. SQS ``SendMessage`` of the message id.

No DynamoDB transaction: moto copies every table a transaction touches, and on
AWS a transaction costs twice the write units. The order makes every crash
window fail safe: a message is only ever written after its hold, and only
enqueued after it is written. See README, "Money".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass

from chalicelib.adapters.accounts import DynamoAccounts
from chalicelib.adapters.messages import DynamoMessages
from chalicelib.adapters.queues import SqsQueues
from chalicelib.domain.message import Client, Message
from chalicelib.domain.pricing import price_cents
from chalicelib.domain.ratelimit import Decision, RateLimit
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.validation import parse_send_request
from chalicelib.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    ServiceUnavailableError,
    ValidationError,
)
from chalicelib.settings import Settings

log = logging.getLogger(__name__)

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1c7c1e-8a4e-4f57-9a43-3c1d2b0e5a11")
MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class Accepted:
    message: Message
    replayed: bool
    rate: Decision | None


def request_fingerprint(body: object) -> str:
    """A hash of the request body that ignores key order and spacing."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def message_id_for(client_id: str, idempotency_key: str | None) -> str:
    """A random id, or one derived from (client, key) so retries find the original."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{client_id}\n{idempotency_key}"))


class AcceptService:
    """The front door's one use case."""

    def __init__(
        self,
        settings: Settings,
        accounts: DynamoAccounts,
        messages: DynamoMessages,
        queues: SqsQueues,
    ) -> None:
        self._s = settings
        self._accounts = accounts
        self._messages = messages
        self._queues = queues

    def rate_limit_for(self, client: Client) -> RateLimit:
        return RateLimit(
            rate_per_s=client.rate_limit_rps or self._s.rate_limit_rps,
            burst=client.rate_limit_burst or self._s.rate_limit_burst,
        )

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
        request = parse_send_request(body, client.max_parts or self._s.max_parts,
                                     self._s.strict_phone_numbers)
        if client.allowed_senders and request.sender not in client.allowed_senders:
            raise ValidationError("this sender ID is not allowed for your account", "from")
        fingerprint = request_fingerprint(body)
        message_id = message_id_for(client.client_id, idempotency_key)
        if idempotency_key is not None:
            existing = self._messages.get(message_id)
            if existing is not None:
                return Accepted(self._replay(existing, fingerprint), True, None)

        limit = self.rate_limit_for(client)
        if request.plan.count > limit.burst:
            raise ValidationError(
                f"'text' needs {request.plan.count} parts; this client's rate limit admits at "
                f"most {limit.burst} at once", "text")
        price = client.price_per_part_cents or self._s.price_per_part_cents
        cost = price_cents(request.plan.count, price)
        now = time.time()
        # Carriers throttle parts, not requests: the bucket counts parts.
        decision = self._accounts.admit(client.client_id, cost, limit, request.plan.count, now)
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
            callback_url=request.callback_url or client.callback_url,
            callback_on_sent=client.callback_on_sent,
            send_at=request.send_at,
        )
        if not self._store(message):
            existing = self._messages.get(message_id)
            if existing is not None and existing.request_id == request_id:
                # Our own write, applied before a retry of it lost its condition.
                self._enqueue(existing)
                return Accepted(existing, False, decision)
            # A concurrent request with the same key wrote first: undo our hold.
            self._accounts.unhold(client.client_id, cost)
            if existing is None:
                raise ConflictError("a request with this Idempotency-Key is in progress")
            return Accepted(self._replay(existing, fingerprint), True, decision)
        if message.send_at is None:  # a scheduled message is enqueued by the sweeper
            self._enqueue(message)
        return Accepted(message, False, decision)

    def _store(self, message: Message) -> bool:
        """Write the message; if the write fails outright, give the hold back."""
        try:
            return self._messages.put_new(message)
        except ServiceUnavailableError:
            # Only when the message is surely not there; if we cannot tell, the
            # hold stays (fail safe) and `make reconcile` reports it.
            with contextlib.suppress(ServiceUnavailableError):
                if self._messages.get(message.message_id) is None:
                    self._accounts.unhold(message.client_id, message.cost_cents)
            raise

    def _replay(self, existing: Message, fingerprint: str) -> Message:
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used with a different request body"
            )
        return existing

    def _enqueue(self, message: Message) -> None:
        attributes = {"request_id": message.request_id} if message.request_id else None
        try:
            self._queues.send(
                self._s.names.send_queue, {"message_id": message.message_id}, attributes=attributes
            )
        except ServiceUnavailableError:
            # The message and its hold are stored; the sweeper enqueues it once
            # it has waited STUCK_AFTER. Answering 202 is true: it will be sent.
            log.warning("enqueue failed; left QUEUED for the sweeper",
                        extra={"message_id": message.message_id})
