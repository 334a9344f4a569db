"""Client callbacks: queued on every final status (and SENT on request), signed, retried."""

from __future__ import annotations

import json
import logging
import time

from chalicelib import observability
from chalicelib.adapters.accounts import DynamoAccounts
from chalicelib.adapters.messages import DynamoMessages
from chalicelib.adapters.queues import SqsQueues
from chalicelib.adapters.webhooks import CallbackRefusedError, WebhookSender
from chalicelib.domain.callbacks import FINAL_EVENTS, event_body
from chalicelib.domain.message import Message
from chalicelib.domain.signing import derive_secret, signature_headers
from chalicelib.domain.status import Status
from chalicelib.errors import ServiceUnavailableError
from chalicelib.settings import Settings

log = logging.getLogger(__name__)

QUEUED = "QUEUED"


class CallbackService:
    def __init__(self, settings: Settings, queues: SqsQueues, messages: DynamoMessages,
                 accounts: DynamoAccounts, sender: WebhookSender) -> None:
        self._s = settings
        self._queues = queues
        self._messages = messages
        self._accounts = accounts
        self._sender = sender

    def notify(self, message: Message) -> None:
        """Queue the event for ``message``'s status, if the client wants it."""
        if not message.callback_url:
            return
        wanted = message.status in FINAL_EVENTS or (
            message.status is Status.SENT and message.callback_on_sent)
        if not wanted:
            return
        record = {"client_id": message.client_id, "url": message.callback_url,
                  "event": event_body(message, message.updated_at)}
        try:
            self._queues.send(self._s.names.callbacks_queue, record, attributes=(
                {"request_id": message.request_id} if message.request_id else None))
        except ServiceUnavailableError:
            log.warning("callback not queued", extra={"message_id": message.message_id})
            if message.status in FINAL_EVENTS:
                raise  # the caller's record comes back and tries again
            return
        if message.status in FINAL_EVENTS:
            self._messages.mark_callback_queued(message.message_id)

    def ensure_final_notified(self, message: Message) -> None:
        """Recover a final event lost to a crash between the status write and the queue."""
        if message.status in FINAL_EVENTS and message.callback_url \
                and message.callback_state != QUEUED:
            self.notify(message)

    def deliver(self, record: dict[str, object]) -> bool:
        """POST one event; True when the client answered 2xx (or can never be reached)."""
        if not self._s.webhook_master_secret:
            # Never sign with an empty key: the event waits (then dead-letters).
            raise ServiceUnavailableError("WEBHOOK_MASTER_SECRET is not set")
        client_id, url = str(record["client_id"]), str(record["url"])
        body = json.dumps(record["event"], separators=(",", ":")).encode()
        version = self._accounts.webhook_secret_version(client_id)
        secret = derive_secret(self._s.webhook_master_secret, client_id, version)
        try:
            status = self._sender.post(url, body, signature_headers(secret, int(time.time()), body))
        except CallbackRefusedError as exc:
            log.warning("callback refused", extra={"client_id": client_id, "reason": str(exc)})
            observability.count("CallbacksFailed")
            return True  # retrying cannot help; the refusal is logged
        delivered = 200 <= status < 300
        observability.count("CallbacksDelivered" if delivered else "CallbacksFailed")
        log.info("callback attempt", extra={"client_id": client_id, "http_status": status,
                                            "delivered": delivered})
        return delivered
