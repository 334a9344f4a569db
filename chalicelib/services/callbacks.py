"""Client callbacks: queued on every final status (and SENT on request), signed, retried."""

from __future__ import annotations

import json
import logging
import time

from chalicelib.domain.callbacks import FINAL_EVENTS, event_body, retry_delay
from chalicelib.domain.errors import BackendUnavailableError, CallbackRefusedError
from chalicelib.domain.message import Message
from chalicelib.domain.signing import DEFAULT_GRACE_S, webhook_headers, webhook_id
from chalicelib.domain.status import Status
from chalicelib.domain.work import DONE, CallbackJob, RetryAfter, Step, request_attributes
from chalicelib.ports import AccountStore, Clock, MessageStore, Telemetry, WebhookPoster, WorkQueue
from chalicelib.services.webhook_secrets import WebhookSecrets

log = logging.getLogger(__name__)

QUEUED = "QUEUED"


class CallbackService:
    def __init__(self, master_secret: str, callbacks_queue: WorkQueue, messages: MessageStore,
                 accounts: AccountStore, poster: WebhookPoster, telemetry: Telemetry,
                 clock: Clock = time.time, *, secret_grace_s: float = DEFAULT_GRACE_S) -> None:
        self._master_secret = master_secret
        self._secrets = WebhookSecrets(master_secret, accounts, secret_grace_s, clock)
        self._queue = callbacks_queue
        self._messages = messages
        self._accounts = accounts
        self._poster = poster
        self._telemetry = telemetry
        self._clock = clock

    def notify(self, message: Message) -> None:
        """Queue the event for ``message``'s status, if the client wants it."""
        if not message.callback_url:
            return
        wanted = message.status in FINAL_EVENTS or (
            message.status is Status.SENT and message.callback_on_sent)
        if not wanted:
            return
        job = CallbackJob(message.client_id, message.callback_url,
                          event_body(message, message.updated_at))
        try:
            self._queue.send(job.body(), attributes=request_attributes(message.request_id))
        except BackendUnavailableError:
            log.warning("callback not queued", extra={"message_id": message.message_id})
            if message.status in FINAL_EVENTS:
                raise  # the caller's record comes back and tries again
            return
        if message.status in FINAL_EVENTS:
            self._messages.mark_callback_queued(message.message_id)

    def send_event(self, client_id: str, url: str | None, event: dict[str, object],
                   request_id: str | None = None) -> bool:
        """Queue one event that is not a message's status (an inbound message, an opt-out)
        for ``url``, signed and retried as status events are; False when there is no URL.
        ``BackendUnavailableError`` when it could not be queued (the caller tries again:
        the event id is the same every time, so receivers drop a repeat)."""
        if not url:
            return False
        self._queue.send(CallbackJob(client_id, url, dict(event)).body(),
                         attributes=request_attributes(request_id))
        return True

    def ensure_final_notified(self, message: Message) -> None:
        """Recover a final event lost to a crash between the status write and the queue."""
        if message.status in FINAL_EVENTS and message.callback_url \
                and message.callback_state != QUEUED:
            self.notify(message)

    def deliver(self, job: CallbackJob, receives: int) -> Step:
        """POST one event; DONE when the client answered 2xx (or can never be reached),
        else come back on the callback schedule."""
        if not self._master_secret:
            # Never sign with an empty key: the event waits (then dead-letters).
            raise BackendUnavailableError("WEBHOOK_MASTER_SECRET is not set")
        body = json.dumps(job.event, separators=(",", ":")).encode()
        headers = self._signed_headers(job, body)
        try:
            status = self._poster.post(job.url, body, headers)
        except CallbackRefusedError as exc:
            log.warning("callback refused", extra={"client_id": job.client_id, "reason": str(exc)})
            self._telemetry.count("CallbacksFailed")
            return DONE  # retrying cannot help; the refusal is logged
        delivered = 200 <= status < 300
        self._telemetry.count("CallbacksDelivered" if delivered else "CallbacksFailed")
        log.info("callback attempt", extra={"client_id": job.client_id, "http_status": status,
                                            "delivered": delivered})
        return DONE if delivered else RetryAfter(retry_delay(receives))

    def _signed_headers(self, job: CallbackJob, body: bytes) -> dict[str, str]:
        """Standard Webhooks headers, signed by each secret in force (two during a rotation)."""
        keys = self._secrets.signing_keys(job.client_id)
        return webhook_headers(keys, webhook_id(job.event, body), int(self._clock()), body)
