"""The sender: one send job -> one attempt at the provider.

Outcomes: SENT; FAILED_TEMP, answered ``RetryAfter(delay)`` so the queue
holds the delay (a restart loses nothing); FAILED_PERM with the hold released.
"""

from __future__ import annotations

import logging
import random
import time

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.message import Message
from chalicelib.domain.provider_errors import TEST_MODE, Outcome, SubmitResult
from chalicelib.domain.reports import OutboundSms
from chalicelib.domain.retry import RetryPolicy
from chalicelib.domain.status import Status
from chalicelib.domain.work import DONE, RetryAfter, Step
from chalicelib.ports import Clock, MessageStore, Notifier, Provider, Telemetry
from chalicelib.services.ledger import Ledger

log = logging.getLogger(__name__)

# Writing SENT after the provider accepted is the one write whose loss can cause a
# second SMS (the claim is taken over later): it is tried this often, after these
# pauses, before the worker gives up on it.
MARK_SENT_PAUSES_S = (0.1, 0.5, 1.5)
# A sender with no provider to send through (a deployed stage without one) hands each
# record back for this long, untouched: the message stays QUEUED with its hold. A provider
# stored in SSM is in use within SETTINGS_MAX_AGE, so held messages leave within about 20
# minutes of the fix; a record dead-letters only after the send queue's 25 receives (~6 h).
NO_PROVIDER_RETRY_S = 900.0


class SenderService:
    def __init__(
        self,
        policy: RetryPolicy,
        send_timeout_s: float,
        messages: MessageStore,
        ledger: Ledger,
        provider: Provider | None,
        telemetry: Telemetry,
        notifier: Notifier | None = None,
        rng: random.Random | None = None,
        clock: Clock = time.time,
        refusal: str | None = None,
    ) -> None:
        self.policy = policy
        self._send_timeout_s = send_timeout_s
        self._messages = messages
        self._ledger = ledger
        self._provider = provider
        self._telemetry = telemetry
        self._notifier = notifier
        self._rng = rng or random.Random()
        self._clock = clock
        self._refusal = refusal or ("no provider" if provider is None else None)

    def handle(self, message_id: str) -> Step:
        """Make one attempt for ``message_id`` if it is due (and there is a provider)."""
        if self._refusal is not None:
            return self._hold(message_id)
        now = self._clock()
        msg = self._messages.claim(message_id, now, stale_before=now - self._send_timeout_s,
                                   provider=self._active().name)
        if msg is None:
            return self._not_claimed(message_id, now)
        self._telemetry.correlate(client_id=msg.client_id, request_id=msg.request_id)
        if msg.taken_over:
            # Its last worker died after claiming it, maybe after the provider took it.
            self._telemetry.count("SendClaimTakenOver")
            earlier = self._accepted_before(message_id)
            if earlier is not None:
                log.info("claim taken over; the provider had the message already",
                         extra={"attempt": msg.attempts})
                return self._sent(msg, SubmitResult(Outcome.ACCEPTED,
                                                    provider_message_id=earlier))
            log.warning("claim taken over from a worker that died mid-attempt; the provider "
                        "may get this message twice", extra={"attempt": msg.attempts})
        result = self._submit(msg)
        if result.outcome is Outcome.ACCEPTED and result.dry_run:
            self._ledger.settle(message_id, Status.FAILED_PERM, TEST_MODE,
                                "test mode: the provider checked the message and did not send it",
                                msg.attempts, known=msg)
            return DONE
        if result.outcome is Outcome.ACCEPTED:
            return self._sent(msg, result)
        code, reason = result.error_code or "UNKNOWN", result.reason or "provider error"
        if result.outcome is Outcome.PERMANENT:
            log.info("attempt refused for good", extra={"attempt": msg.attempts, "error_code": code})
            self._ledger.settle(message_id, Status.FAILED_PERM, code, reason, msg.attempts,
                                known=msg)
            return DONE
        if self.policy.exhausted(msg.attempts):
            self._ledger.settle(
                message_id, Status.FAILED_PERM, "MAX_ATTEMPTS",
                f"gave up after {msg.attempts} attempts; last error: {reason}", msg.attempts,
                known=msg,
            )
            return DONE
        delay = self.policy.next_retry_delay(msg.attempts, self._rng)
        self._messages.mark_failed_temp(message_id, msg.attempts, code, reason, now + delay,
                                        self._clock())
        self._telemetry.count("MessageRetries")
        log.info("attempt failed; retry scheduled", extra={
            "attempt": msg.attempts, "error_code": code, "retry_in_s": round(delay, 1)})
        return RetryAfter(delay)

    def _hold(self, message_id: str) -> Step:
        """No provider: nothing is claimed, sent or settled; the record comes back later."""
        self._telemetry.count("SendHeldNoProvider")
        log.error("no provider to send through; the message stays QUEUED",
                  extra={"message_id": message_id, "reason": self._refusal,
                         "retry_in_s": NO_PROVIDER_RETRY_S})
        return RetryAfter(NO_PROVIDER_RETRY_S)

    def _active(self) -> Provider:
        assert self._provider is not None  # handle() holds every record without one
        return self._provider

    def _sent(self, msg: Message, result: SubmitResult) -> Step:
        assert result.provider_message_id is not None
        sent = self._mark_sent(msg, result.provider_message_id)
        if sent is not None and self._notifier:
            self._notifier.notify(sent)
        self._telemetry.count("MessagesSent")
        self._telemetry.record_ms("TimeToSent", (self._clock() - msg.created_at) * 1000)
        log.info("sent", extra={"attempt": msg.attempts, "to": msg.to,  # masked in logs
                                "provider_message_id": result.provider_message_id})
        return DONE

    def _mark_sent(self, msg: Message, provider_message_id: str) -> Message | None:
        """SENT, tried again on a store fault: the write is conditional on this attempt,
        so a retry of a write that landed finds it done (None), never applies twice."""
        for pause in (*MARK_SENT_PAUSES_S, None):
            try:
                return self._messages.mark_sent(msg.message_id, msg.attempts, self._active().name,
                                                provider_message_id, self._clock())
            except BackendUnavailableError:
                if pause is None:
                    raise
                log.warning("SENT write failed after the provider accepted; trying again",
                            extra={"attempt": msg.attempts})
                time.sleep(pause)
        return None  # not reached

    def _accepted_before(self, message_id: str) -> str | None:
        try:
            return self._active().accepted_before(message_id)
        except Exception:  # noqa: BLE001 - not knowing is the usual case; submit again
            log.warning("could not ask the provider whether it had the message",
                        exc_info=True)
            return None

    def _submit(self, msg: Message) -> SubmitResult:
        sms = OutboundSms(msg.message_id, msg.attempts, msg.to, msg.sender, msg.text, msg.parts,
                          msg.request_id, cost_cents=msg.cost_cents, sender_owned=msg.sender_owned,
                          message_type=msg.message_type, test_mode=msg.test_mode)
        started = time.perf_counter()
        try:
            return self._active().submit(sms)
        except Exception:  # noqa: BLE001 - any provider fault is a temporary failure
            log.exception("provider call failed", extra={"message_id": msg.message_id})
            return SubmitResult.failed("TIMEOUT")
        finally:
            self._telemetry.record_ms("ProviderLatency", (time.perf_counter() - started) * 1000)

    def _not_claimed(self, message_id: str, now: float) -> Step:
        current = self._messages.get(message_id)
        if current is None:
            log.warning("send record for an unknown message", extra={"message_id": message_id})
            return DONE
        self._telemetry.correlate(client_id=current.client_id, request_id=current.request_id)
        if current.status is Status.FAILED_TEMP and current.retry_at and current.retry_at > now:
            # An early duplicate of a record that is waiting out its backoff.
            return RetryAfter(current.retry_at - now)
        # CANCELLED, already handled, or in the hands of another worker (if that
        # worker dies, the sweeper re-enqueues the message).
        if self._notifier:
            self._notifier.ensure_final_notified(current)
        log.info("send record skipped", extra={"status": current.status.value})
        return DONE
