"""The sender: one SQS record -> one attempt at the provider.

Outcomes: SENT; FAILED_TEMP with the record's next delivery pushed back by the
retry delay (the queue holds the delay, so a restart loses nothing);
FAILED_PERM with the hold released.
"""

from __future__ import annotations

import logging
import random
import time
from enum import StrEnum

from chalicelib import observability
from chalicelib.adapters.messages import DynamoMessages
from chalicelib.adapters.providers import OutboundSms, Provider
from chalicelib.adapters.queues import SqsQueues
from chalicelib.domain.message import Message
from chalicelib.domain.provider_errors import Outcome, SubmitResult
from chalicelib.domain.retry import RetryPolicy
from chalicelib.domain.status import Status
from chalicelib.services.ledger import Ledger, Notifier
from chalicelib.settings import Settings

log = logging.getLogger(__name__)


class Step(StrEnum):
    DONE = "done"  # delete the record
    RETRY = "retry"  # keep the record; it comes back after its visibility timeout


class SenderService:
    def __init__(
        self,
        settings: Settings,
        messages: DynamoMessages,
        ledger: Ledger,
        provider: Provider,
        queues: SqsQueues,
        rng: random.Random | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._s = settings
        self._messages = messages
        self._ledger = ledger
        self._provider = provider
        self._queues = queues
        self._rng = rng or random.Random()
        self._notifier = notifier
        self.policy = RetryPolicy(
            settings.retry_min_delay_s, settings.retry_max_delay_s,
            settings.retry_factor, settings.max_attempts,
        )

    def handle(self, message_id: str, receipt_handle: str) -> Step:
        """Make one attempt for ``message_id`` if it is due."""
        now = time.time()
        msg = self._messages.claim(message_id, now, stale_before=now - self._s.send_timeout_s)
        if msg is None:
            return self._not_claimed(message_id, receipt_handle, now)
        observability.correlate(client_id=msg.client_id, request_id=msg.request_id)
        result = self._submit(msg)
        if result.outcome is Outcome.ACCEPTED:
            assert result.provider_message_id is not None
            sent = self._messages.mark_sent(
                message_id, msg.attempts, self._provider.name, result.provider_message_id,
                time.time(), self._s.dlr_timeout_s,
            )
            if sent is not None and self._notifier:
                self._notifier.notify(sent)
            observability.count("MessagesSent")
            observability.record_ms("TimeToSent", observability.since_ms(msg.created_at))
            log.info("sent", extra={"attempt": msg.attempts, "to": msg.to,  # masked in logs
                                    "provider_message_id": result.provider_message_id})
            return Step.DONE
        code, reason = result.error_code or "UNKNOWN", result.reason or "provider error"
        if result.outcome is Outcome.PERMANENT:
            log.info("attempt refused for good", extra={"attempt": msg.attempts, "error_code": code})
            self._ledger.settle(message_id, Status.FAILED_PERM, code, reason, msg.attempts)
            return Step.DONE
        if self.policy.exhausted(msg.attempts):
            self._ledger.settle(
                message_id, Status.FAILED_PERM, "MAX_ATTEMPTS",
                f"gave up after {msg.attempts} attempts; last error: {reason}", msg.attempts,
            )
            return Step.DONE
        delay = self.policy.next_retry_delay(msg.attempts, self._rng)
        self._messages.mark_failed_temp(message_id, msg.attempts, code, reason, now + delay, time.time())
        self._queues.delay_redelivery(self._s.names.send_queue, receipt_handle, delay)
        observability.count("MessageRetries")
        log.info("attempt failed; retry scheduled", extra={
            "attempt": msg.attempts, "error_code": code, "retry_in_s": round(delay, 1)})
        return Step.RETRY

    def _submit(self, msg: Message) -> SubmitResult:
        sms = OutboundSms(msg.message_id, msg.attempts, msg.to, msg.sender, msg.text, msg.parts)
        started = time.perf_counter()
        try:
            return self._provider.submit(sms)
        except Exception:  # noqa: BLE001 - any provider fault is a temporary failure
            log.exception("provider call failed", extra={"message_id": msg.message_id})
            return SubmitResult.failed("TIMEOUT")
        finally:
            observability.record_ms("ProviderLatency", (time.perf_counter() - started) * 1000)

    def _not_claimed(self, message_id: str, receipt_handle: str, now: float) -> Step:
        current = self._messages.get(message_id)
        if current is None:
            log.warning("send record for an unknown message", extra={"message_id": message_id})
            return Step.DONE
        if current.status is Status.FAILED_TEMP and current.retry_at and current.retry_at > now:
            # An early duplicate of a record that is waiting out its backoff.
            self._queues.delay_redelivery(
                self._s.names.send_queue, receipt_handle, current.retry_at - now
            )
            return Step.RETRY
        # CANCELLED, already handled, or in the hands of another worker (if that
        # worker dies, the sweeper re-enqueues the message).
        if self._notifier:
            self._notifier.ensure_final_notified(current)
        log.info("send record skipped", extra={"message_id": message_id, "status": current.status.value})
        return Step.DONE
