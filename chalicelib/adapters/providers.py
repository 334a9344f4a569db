"""SMS providers behind one small interface. Only the mock exists so far.

A real provider (SMPP, Twilio, ...) implements ``Provider.submit`` and maps
its errors onto ``domain.provider_errors`` codes.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from pynamodb.exceptions import PynamoDBException

from chalicelib import observability
from chalicelib.adapters.accounts import is_condition_failure
from chalicelib.adapters.models import ProviderSendModel
from chalicelib.adapters.queues import SqsQueues
from chalicelib.domain.provider_errors import Outcome, SubmitResult, mock_outcome, unit_draw
from chalicelib.settings import MockProviderSettings

MOCK_TEMP_CODE = "ESME_RTHROTTLED"
MOCK_PERM_CODE = "ESME_RINVDSTADR"


@dataclass(frozen=True)
class OutboundSms:
    """What a provider needs to send one message."""

    message_id: str
    attempt: int
    to: str
    sender: str
    text: str
    parts: int


class Provider(Protocol):
    name: str

    def submit(self, sms: OutboundSms) -> SubmitResult:
        """Hand one message to the provider."""
        ...


class MockProvider:
    """A provider with configurable, reproducible outcomes.

    The outcome of (message id, attempt) is drawn from ``MOCK_SEED``, so a
    test run is repeatable. Acceptances are recorded in a DynamoDB table with
    a conditional put: a re-submission of an accepted message returns the
    same provider id and is not a second SMS. Each acceptance schedules a
    delivery report on the DLR queue, in the same shape as the DLR webhook.
    """

    name = "mock"

    def __init__(self, settings: MockProviderSettings, queues: SqsQueues, dlr_queue: str) -> None:
        self._s = settings
        self._queues = queues
        self._dlr_queue = dlr_queue

    def submit(self, sms: OutboundSms) -> SubmitResult:
        if self._s.latency_ms:
            time.sleep(self._s.latency_ms / 1000)
        draw = unit_draw(self._s.seed, sms.message_id, sms.attempt)
        outcome = mock_outcome(draw, self._s.success_rate, self._s.temp_fail_rate, self._s.perm_fail_rate)
        if outcome is not Outcome.ACCEPTED:
            # A message this provider already accepted stays accepted: a
            # re-submission after a worker crash must not turn it into a failure.
            earlier = self._accepted_before(sms.message_id)
            if earlier is not None:
                return SubmitResult(Outcome.ACCEPTED, provider_message_id=earlier)
            return SubmitResult.failed(
                MOCK_TEMP_CODE if outcome is Outcome.TEMPORARY else MOCK_PERM_CODE)
        provider_id = self._record(sms)
        # Also on a re-submission: the first report may have been lost with a
        # crashed worker, and the DLR function ignores duplicates.
        self._emit_dlr(sms.message_id, provider_id)
        return SubmitResult(Outcome.ACCEPTED, provider_message_id=provider_id)

    def _accepted_before(self, message_id: str) -> str | None:
        try:
            return str(ProviderSendModel.get(message_id, consistent_read=True).provider_message_id)
        except ProviderSendModel.DoesNotExist:
            return None

    def _record(self, sms: OutboundSms) -> str:
        provider_id = f"mock-{uuid.uuid4().hex}"
        item = ProviderSendModel(
            sms.message_id, provider_message_id=provider_id, attempt=sms.attempt, sent_at=time.time()
        )
        try:
            item.save(condition=ProviderSendModel.message_id.does_not_exist())
            return provider_id
        except PynamoDBException as exc:
            if not is_condition_failure(exc):
                raise
        existing = ProviderSendModel(sms.message_id)
        existing.update(actions=[ProviderSendModel.submissions.add(1)])
        return str(existing.provider_message_id)

    def _emit_dlr(self, message_id: str, provider_id: str) -> None:
        failed = unit_draw(self._s.seed, message_id, "dlr") < self._s.dlr_fail_rate
        report = {
            "provider": self.name,
            "reference": message_id,
            "provider_message_id": provider_id,
            "status": "UNDELIVERED" if failed else "DELIVERED",
            "error_code": "UNDELIVERED" if failed else None,
            "occurred_at": time.time(),
        }
        self._queues.send(self._dlr_queue, report, delay_s=self._s.dlr_delay_s,
                          attributes=observability.correlation_attributes())
