"""The sender: one send job -> one attempt at the provider.

Outcomes: SENT; FAILED_TEMP, answered ``RetryAfter(delay)`` so the queue
holds the delay (a restart loses nothing); FAILED_PERM with the hold released.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from chalicelib.domain import stats
from chalicelib.domain.errors import BackendUnavailableError, NotFoundError
from chalicelib.domain.inbound import SOURCE_PROVIDER, OptOut
from chalicelib.domain.message import KIND_REPLY, Message
from chalicelib.domain.provider_errors import TEST_MODE, Outcome, SubmitResult
from chalicelib.domain.reports import OutboundSms
from chalicelib.domain.retry import RetryPolicy
from chalicelib.domain.routing import Route
from chalicelib.domain.status import Status
from chalicelib.domain.work import DONE, RetryAfter, SendJob, Step
from chalicelib.ports import (
    ClientReader,
    Clock,
    MessageStore,
    Notifier,
    Provider,
    StatsStore,
    Telemetry,
    WorkQueue,
)
from chalicelib.services.ledger import Ledger
from chalicelib.services.optouts import OptOutBook
from chalicelib.services.routing import Choice, Router

log = logging.getLogger(__name__)

# Writing SENT after the provider accepted is the one write whose loss can cause a
# second SMS (the claim is taken over later): it is tried this often, after these
# pauses, before the worker gives up on it.
MARK_SENT_PAUSES_S = (0.1, 0.5, 1.5)
# A sender with no provider to send through (a deployed stage without one) hands each
# record back for this long, untouched: the message stays QUEUED with its hold. A provider
# stored in SSM is in use within SETTINGS_MAX_AGE, so held messages leave within about 20
# minutes of the fix; a record waiting that long is replaced by a fresh copy before it could dead-letter.
NO_PROVIDER_RETRY_S = 900.0


PACE_WAIT_S = 2.0  # a worker waits for its provider's pace this long, then hands the record back
LATE_S = 0.05  # a worker this late for its pace slot (its thread was held up) books another
# A record that waits without being tried (no provider up, the pace) counts receives
# all the same; from this many on (the container passes the send queue's
# maxReceiveCount less 5), it is replaced by a fresh copy: a new record, so a long
# outage never dead-letters it.
FRESH_RECORD_AFTER = 20
MAX_WAIT_S = 900.0  # SQS's longest delay of a new record
UNCLAIM_TO = (Status.QUEUED.value, Status.FAILED_TEMP.value)  # a taken-over claim goes back due
# Providers' refusals of a recipient that opted out at the provider (Twilio's Advanced
# Opt-Out, AWS End User Messaging's opt-out list): recorded as the client's opt-out.
PROVIDER_OPT_OUT_CODES = frozenset({"21610", "DESTINATION_PHONE_NUMBER_OPTED_OUT"})
EXPIRED = "EXPIRED"  # error.code of a message not handed to a provider within its validity
RECIPIENT_OPTED_OUT = "RECIPIENT_OPTED_OUT"  # error.code: the person opted out meanwhile


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
        router: Router | None = None,
        send_queue: WorkQueue | None = None,
        sleep: Callable[[float], None] = time.sleep,
        fresh_record_after: int = FRESH_RECORD_AFTER,
        opt_outs: OptOutBook | None = None,
        clients: ClientReader | None = None,
        stats: StatsStore | None = None,
    ) -> None:
        self._clients = clients
        self._stats = stats
        self._fresh_after = fresh_record_after
        self._opt_outs = opt_outs
        self.policy = policy
        self._send_timeout_s = send_timeout_s
        self._messages = messages
        self._ledger = ledger
        self._telemetry = telemetry
        self._notifier = notifier
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._queue = send_queue
        if router is None and provider is not None:
            router = Router.single(provider, telemetry)
        self._router = router
        self._refusal = refusal or ("no provider" if router is None else None)

    def handle(self, message_id: str, route: str | None = None, country: str | None = None,
               parts: int = 1, receives: int = 1,
               time_enough: Callable[[], bool] | None = None) -> Step:
        """Make one attempt for ``message_id`` if it is due and a provider may take it.

        The provider is chosen before the claim (from the job's route), so the claim
        names it, and its pace slot is booked then: nothing is claimed while every
        provider of the route is down or over its pace (the record waits in the queue).
        After the claim, a retry moves on to the provider after the one it failed at,
        and a half-open breaker's probe slot is taken. A claim that cannot go ahead
        (no provider after all, too little time left) is handed back untried: no
        attempt is spent. ``time_enough`` says whether the invocation still has time
        for a provider call.
        """
        if self._refusal is not None or self._router is None:
            return self._hold(message_id)
        router = self._router
        job = SendJob(message_id, route, country, parts)
        now = self._clock()
        first_route = router.table.named(route)
        first = router.choose(first_route, country, message_id, now, take_probes=False)
        if first is None:
            return self._wait(job, receives, router.wait_s(first_route, now), "NoProviderUp")
        slot, pace_wait = self._pace(first.name, parts)
        if slot is None:
            return self._wait(job, receives, pace_wait, "SendPaced", grow=False)
        now = self._clock()
        msg = self._messages.claim(message_id, now, stale_before=now - self._send_timeout_s,
                                   provider=first.name)
        if msg is None:
            return self._not_claimed(message_id, now)
        self._telemetry.correlate(client_id=msg.client_id, request_id=msg.request_id)
        if msg.taken_over:
            done = self._taken_over(msg)
            if done is not None:
                return done
        if msg.expired(now):
            return self._expire(msg)
        if self._opted_out(msg):  # read before the pace slot's time, not between it and the call
            return self._refuse_opted_out(msg)
        return self._attempt(msg, job, first, first_route.name, slot, receives, time_enough, now)

    def _attempt(self, msg: Message, job: SendJob, first: Choice, first_route: str,
                 slot: float, receives: int, time_enough: Callable[[], bool] | None,
                 now: float) -> Step:
        """The claimed attempt: its provider, its pace slot, the call, its outcome."""
        router = self._router
        assert router is not None
        choice = self._reroute(msg, first, first_route, now)
        if choice is None:
            return self._hand_back(msg, job, receives, router.wait_s(self._route_of(msg, None),
                                                                     now), "NoProviderUp")
        if choice.name != first.name:
            booked, pace_wait = self._pace(choice.name, msg.parts)
            if booked is None:
                return self._hand_back(msg, job, receives, pace_wait, "SendPaced")
            slot = booked
        if not self._await_slot(choice.name, msg.parts, slot):
            return self._hand_back(msg, job, receives, 1.0, "SendPaced")
        if time_enough is not None and not time_enough():  # after any wait for the slot
            return self._hand_back(msg, job, receives, 1.0, "SendDeferredForTime")
        if msg.expired(self._clock()):  # the wait for the slot may have used it up
            return self._expire(msg)
        result = self._submit(msg, choice)
        step = self._outcome(msg, choice, result, now)
        router.record(choice, result)  # best effort, after the outcome is written
        return step

    def _taken_over(self, msg: Message) -> Step | None:
        """Its last worker died after claiming it, maybe after the provider took it: DONE
        when a provider says it has it (then it is SENT), else None (it is sent again)."""
        self._telemetry.count("SendClaimTakenOver")
        earlier = self._accepted_before(msg)
        if earlier is not None:
            log.info("claim taken over; the provider had the message already",
                     extra={"attempt": msg.attempts, "provider": earlier[0].name})
            return self._sent(msg, earlier[0],
                              SubmitResult(Outcome.ACCEPTED, provider_message_id=earlier[1]))
        log.warning("claim taken over from a worker that died mid-attempt; the provider "
                    "may get this message twice", extra={"attempt": msg.attempts})
        return None

    def _hand_back(self, msg: Message, job: SendJob, receives: int, wait_s: float,
                   metric: str) -> Step:
        """Give a claim back untried (the attempt is not counted), then wait unclaimed."""
        back = Status(msg.claimed_from) if msg.claimed_from in UNCLAIM_TO else Status.FAILED_TEMP
        self._messages.unclaim(msg.message_id, msg.attempts, back, self._clock())
        return self._wait(job, receives, wait_s, metric, grow=metric == "NoProviderUp")

    def _outcome(self, msg: Message, choice: Choice, result: SubmitResult, now: float) -> Step:
        message_id = msg.message_id
        if result.outcome is Outcome.ACCEPTED and result.dry_run:
            self._ledger.settle(message_id, Status.FAILED_PERM, TEST_MODE,
                                "test mode: the provider checked the message and did not send it",
                                msg.attempts, known=msg)
            return DONE
        if result.outcome is Outcome.ACCEPTED:
            return self._sent(msg, choice, result)
        code, reason = result.error_code or "UNKNOWN", result.reason or "provider error"
        route = self._route_of(msg, None)
        refused = msg.refused_by | ({choice.name} if result.provider_refused else set())
        assert self._router is not None
        usable = {p for p in route.providers if p in self._router.providers}
        if result.ends_message or (result.provider_refused and not usable - refused):
            # The message's own fault, or every provider of its route refused it.
            log.info("attempt refused for good", extra={
                "attempt": msg.attempts, "error_code": code, "provider": choice.name})
            # Read before the status is final: a START the person sends once the client
            # can see this refusal is newer than the provider's opt-out, and stands.
            refused_at = self._clock()
            self._ledger.settle(message_id, Status.FAILED_PERM, code, reason, msg.attempts,
                                known=msg)
            if code in PROVIDER_OPT_OUT_CODES:
                self._record_provider_opt_out(msg, refused_at)
            return DONE
        if self.policy.exhausted(msg.attempts):
            self._ledger.settle(
                message_id, Status.FAILED_PERM, "MAX_ATTEMPTS",
                f"gave up after {msg.attempts} attempts; last error: {reason}", msg.attempts,
                known=msg,
            )
            return DONE
        delay = self.policy.next_retry_delay(msg.attempts, self._rng)
        if msg.expires_at is not None and now + delay >= msg.expires_at:
            # The retry would come too late: no attempt is spent on it.
            return self._expire(msg, f"its validity period ends before the next attempt; "
                                     f"last error: {reason}")
        failed = self._messages.mark_failed_temp(message_id, msg.attempts, code, reason,
                                                 now + delay, self._clock(),
                                                 provider=choice.name,
                                                 refused=result.provider_refused)
        if failed is not None and self._stats is not None:
            self._count_failed_temp(msg, now)
        self._telemetry.count("MessageRetries")
        log.info("attempt failed; retry scheduled", extra={
            "attempt": msg.attempts, "error_code": code, "provider": choice.name,
            "retry_in_s": round(delay, 1)})
        return RetryAfter(delay)

    def _count_failed_temp(self, msg: Message, now: float) -> None:
        """Count the temporary failure in the client's statistics, after its status write
        (adapters.stats says what a crash between the two costs): never at the price of
        the attempt, whose outcome is written already."""
        assert self._stats is not None
        try:
            self._stats.add(msg.client_id, stats.failed_temporarily(), now)
        except BackendUnavailableError:
            log.warning("temporary failure not counted in the statistics")

    def _expire(self, msg: Message, reason: str | None = None) -> Step:
        """FAILED_PERM ``EXPIRED``, the hold released (and the callback sent, as for any
        final status): it was not handed to a provider within its validity period."""
        self._telemetry.count("MessagesExpired")
        log.info("validity period over; not sent", extra={"attempt": msg.attempts})
        self._ledger.settle(msg.message_id, Status.FAILED_PERM, EXPIRED,
                            reason or "not handed to a provider within its validity period",
                            msg.attempts, known=msg)
        return DONE

    def _opted_out(self, msg: Message) -> bool:
        """The person opted out of this client's messages since it was accepted. A keyword's
        confirmation (STOP's included) goes out all the same."""
        if self._opt_outs is None or msg.kind == KIND_REPLY:
            return False
        return self._opt_outs.is_opted_out(msg.client_id, msg.to)

    def _record_provider_opt_out(self, msg: Message, refused_at: float) -> None:
        """The provider refused the recipient as opted out there at ``refused_at``: the
        client's opt-out too (source ``provider``, as of then), so the next send is refused
        at acceptance. Best effort: the message is settled already."""
        if self._opt_outs is None or self._clients is None:
            return
        try:
            client = self._clients.client(msg.client_id)
            self._opt_outs.change(client, OptOut(msg.client_id, msg.to, True, refused_at,
                                                 SOURCE_PROVIDER), msg.request_id)
        except (NotFoundError, BackendUnavailableError):
            log.warning("could not record the provider's opt-out", exc_info=True)

    def _refuse_opted_out(self, msg: Message) -> Step:
        self._telemetry.count("RefusedOptedOutAtSend")
        log.info("recipient opted out since acceptance; not sent", extra={"to": msg.to})
        self._ledger.settle(msg.message_id, Status.FAILED_PERM, RECIPIENT_OPTED_OUT,
                            "the recipient opted out of this client's messages before it was "
                            "sent", msg.attempts, known=msg)
        return DONE

    def _route_of(self, msg: Message, job_route: str | None) -> Route:
        assert self._router is not None
        table = self._router.table
        if msg.route:
            return table.named(msg.route)
        if job_route:
            return table.named(job_route)
        return table.route_for(msg.to, msg.client_id, msg.sender,  # accepted before routing
                               msg.country if msg.country else ...)

    def _reroute(self, msg: Message, first: Choice, first_route: str,
                 now: float) -> Choice | None:
        """The provider this attempt goes through, knowing the message's history: after a
        failure at the claim's provider, the next one of the route; a half-open provider
        only with its probe slot won. None when no provider may take it now."""
        assert self._router is not None
        retry = msg.claimed_from == Status.FAILED_TEMP.value
        failed_at = msg.failed_provider if retry else None
        route = self._route_of(msg, None)
        if not failed_at and not msg.refused_by and route.name == first_route and not first.probe:
            return first
        choice = self._router.choose(route, msg.country, msg.message_id, now,
                                     failed_at=failed_at, refused=msg.refused_by)
        if choice is None:
            return None
        if choice.name == first.name:
            return choice
        if not self._messages.set_provider(msg.message_id, msg.attempts, choice.name):
            return None
        log.info("attempt moved to another provider", extra={
            "attempt": msg.attempts, "provider": choice.name, "failed_at": failed_at})
        return choice

    def _await_slot(self, name: str, parts: int, slot: float) -> bool:
        """Wait for the pace slot; a worker that woke (or got there) late by more than
        LATE_S books a new slot rather than crowd the next one. False when none is free
        within PACE_WAIT_S."""
        for _ in range(3):
            if slot <= 0:  # the provider has no pace
                return True
            wait = slot - self._clock()
            if wait > 0:
                self._sleep(wait)  # until its pace slot
            if self._clock() - slot <= LATE_S:
                return True
            self._telemetry.count("SendPaceSlotMissed")
            booked, _ = self._pace(name, parts)
            if booked is None:
                return False
            slot = booked
        return True

    def _pace(self, name: str, parts: int) -> tuple[float | None, float]:
        """(the clock time of the pace slot booked for ``parts`` at ``name``, 0) (0, 0 for
        a provider without a cap); (None, seconds until one may be free) when none is
        free within PACE_WAIT_S."""
        assert self._router is not None
        return self._router.pace(name, parts, self._clock(), PACE_WAIT_S)

    def _wait(self, job: SendJob, receives: int, base_s: float, metric: str,
              grow: bool = True) -> Step:
        """Hand the record back unclaimed for about ``base_s``, spread out, as a fresh
        record when it has come back often. ``grow``: longer the more often it came back
        (no provider up: nobody knows when one will be); else (the pace) about when the
        provider's bucket frees up, spread over as long again."""
        self._telemetry.count(metric)
        if grow:
            spread = min(MAX_WAIT_S, max(base_s, 2.0 ** min(receives - 1, 10)))
            delay = min(MAX_WAIT_S, spread * (1 + self._rng.random() * 0.5))
        else:
            delay = min(MAX_WAIT_S, base_s * (1 + self._rng.random()) + self._rng.random())
        if receives >= self._fresh_after and self._queue is not None:
            self._queue.send(job.body(), delay_s=int(delay))
            log.info("waiting for a provider; replaced by a fresh record",
                     extra={"receives": receives, "retry_in_s": int(delay)})
            return DONE
        return RetryAfter(delay)

    def _hold(self, message_id: str) -> Step:
        """No provider: nothing is claimed, sent or settled; the record comes back later."""
        self._telemetry.count("SendHeldNoProvider")
        log.error("no provider to send through; the message stays QUEUED",
                  extra={"message_id": message_id, "reason": self._refusal,
                         "retry_in_s": NO_PROVIDER_RETRY_S})
        return RetryAfter(NO_PROVIDER_RETRY_S)

    def _sent(self, msg: Message, choice: Choice, result: SubmitResult) -> Step:
        assert result.provider_message_id is not None
        sent = self._mark_sent(msg, choice.name, result.provider_message_id)
        if sent is not None and self._notifier:
            self._notifier.notify(sent)
        self._telemetry.count("MessagesSent")
        self._telemetry.record_ms("TimeToSent", (self._clock() - msg.created_at) * 1000)
        log.info("sent", extra={"attempt": msg.attempts, "to": msg.to,  # masked in logs
                                "provider": choice.name,
                                "provider_message_id": result.provider_message_id})
        return DONE

    def _mark_sent(self, msg: Message, provider: str, provider_message_id: str) -> Message | None:
        """SENT, tried again on a store fault: the write is conditional on this attempt,
        so a retry of a write that landed finds it done (None), never applies twice."""
        for pause in (*MARK_SENT_PAUSES_S, None):
            try:
                return self._messages.mark_sent(msg.message_id, msg.attempts, provider,
                                                provider_message_id, self._clock())
            except BackendUnavailableError:
                if pause is None:
                    raise
                log.warning("SENT write failed after the provider accepted; trying again",
                            extra={"attempt": msg.attempts})
                time.sleep(pause)
        return None  # not reached

    def _accepted_before(self, msg: Message) -> tuple[Choice, str] | None:
        """Ask each provider of the message's route whether it has the message already (the
        dead worker may have sent it through any of them)."""
        assert self._router is not None
        route = self._route_of(msg, None)
        for name in dict.fromkeys((msg.provider, *route.providers)):
            provider = self._router.providers.get(name or "")
            if provider is None:
                continue
            try:
                earlier = provider.accepted_before(msg.message_id)
            except Exception:  # noqa: BLE001 - not knowing is the usual case; submit again
                log.warning("could not ask the provider whether it had the message",
                            extra={"provider": name}, exc_info=True)
                continue
            if earlier is not None:
                return Choice(provider.name, provider), earlier
        return None

    def _submit(self, msg: Message, choice: Choice) -> SubmitResult:
        sms = OutboundSms(msg.message_id, msg.attempts, msg.to, msg.sender, msg.text, msg.parts,
                          msg.request_id, cost_cents=msg.cost_cents, sender_owned=msg.sender_owned,
                          message_type=msg.message_type, test_mode=msg.test_mode,
                          ttl_s=self._time_left(msg))
        started = time.perf_counter()
        try:
            return choice.provider.submit(sms)
        except Exception:  # noqa: BLE001 - any provider fault is a temporary failure
            log.exception("provider call failed", extra={"message_id": msg.message_id,
                                                         "provider": choice.name})
            return SubmitResult.failed("TIMEOUT")
        finally:
            self._telemetry.record_ms("ProviderLatency", (time.perf_counter() - started) * 1000)

    def _time_left(self, msg: Message) -> int | None:
        """Whole seconds of its validity period left (at least 1), for the provider."""
        if msg.expires_at is None:
            return None
        return max(1, int(msg.expires_at - self._clock()))

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
