"""The mock provider: reproducible outcomes, its own record of sends, signed reports.

The outcome of (message id, attempt) is drawn from ``MOCK_SEED``, so a test
run is repeatable. Acceptances are recorded in a DynamoDB table with a
conditional put: a re-submission of an accepted message returns the same
provider id and is not a second SMS. Each acceptance schedules a delivery
report on the DLR queue, in the shape its webhook (``POST /v1/dlr/mock``,
HMAC-signed with ``DLR_SECRETS``' ``mock=`` secret) accepts too.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.adapters.dynamo import is_condition_failure
from chalicelib.adapters.models import ProviderSendModel
from chalicelib.domain.dlr_signature import verify
from chalicelib.domain.errors import MalformedJsonError, UnauthorizedError, ValidationError
from chalicelib.domain.inbound import InboundSms
from chalicelib.domain.provider_errors import Outcome, SubmitResult, mock_outcome, unit_draw
from chalicelib.domain.reports import DeliveryReport, OutboundSms, report_problem
from chalicelib.domain.work import JobError, request_attributes, required_strings
from chalicelib.ports import WorkQueue
from chalicelib.settings import MockProviderSettings

NAME = "mock"
# Its errors are SMPP 3.4 command_status names, classified in domain.provider_errors.
MOCK_TEMP_CODE = "ESME_RTHROTTLED"
MOCK_PERM_CODE = "ESME_RINVDSTADR"


class MockProvider:
    """The ``Provider`` and ``ReportSource`` of the mock."""

    name = NAME

    def __init__(self, settings: MockProviderSettings, sends: type[ProviderSendModel],
                 dlr_queue: WorkQueue, report_secret: str | None = None) -> None:
        self._s = settings
        self._sends = sends
        self._dlr_queue = dlr_queue
        self._report_secret = report_secret

    def submit(self, sms: OutboundSms) -> SubmitResult:
        if sms.test_mode:
            return SubmitResult(Outcome.ACCEPTED, provider_message_id=f"test-{sms.message_id}",
                                dry_run=True)
        if self._s.latency_ms:
            time.sleep(self._s.latency_ms / 1000)
        draw = unit_draw(self._s.seed, sms.message_id, sms.attempt)
        outcome = mock_outcome(draw, self._s.success_rate, self._s.temp_fail_rate, self._s.perm_fail_rate)
        if outcome is not Outcome.ACCEPTED:
            # A message this provider already accepted stays accepted: a
            # re-submission after a worker crash must not turn it into a failure.
            earlier = self._recorded(sms.message_id)
            if earlier is not None:
                self._emit_dlr(sms.message_id, earlier, sms.request_id)
                return SubmitResult(Outcome.ACCEPTED, provider_message_id=earlier)
            return SubmitResult.failed(
                MOCK_TEMP_CODE if outcome is Outcome.TEMPORARY else MOCK_PERM_CODE)
        provider_id = self._record(sms)
        # Also on a re-submission: the first report may have been lost with a
        # crashed worker, and the DLR function ignores duplicates.
        self._emit_dlr(sms.message_id, provider_id, sms.request_id)
        return SubmitResult(Outcome.ACCEPTED, provider_message_id=provider_id)

    def parse_report(self, raw: bytes, headers: Mapping[str, str], now: float,
                     query: Mapping[str, str] | None = None) -> DeliveryReport:
        """A report posted to the webhook: signed, then shaped like the DLR queue's."""
        if not self._report_secret or not verify(
                self._report_secret, headers.get("x-signature-timestamp"),
                headers.get("x-signature"), raw, now):
            raise UnauthorizedError("bad, missing or stale signature")
        try:
            body: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MalformedJsonError(f"the body is not valid JSON: {exc}") from exc
        problem = report_problem(body)
        if problem is not None:
            raise ValidationError(problem[1], problem[0])
        return DeliveryReport.parse({**body, "provider": NAME})

    def accepted_before(self, message_id: str) -> str | None:
        """The id this provider gave ``message_id``, if it took it (its own record).

        This provider's side runs in the worker that called it: a report it had not
        sent yet died with that worker. A real provider reports every message it took,
        so the mock sends the report again for one it finds here (the DLR function
        ignores a duplicate)."""
        earlier = self._recorded(message_id)
        if earlier is not None:
            self._emit_dlr(message_id, earlier, None)
        return earlier

    def _recorded(self, message_id: str) -> str | None:
        try:
            return str(self._sends.get(message_id, consistent_read=True).provider_message_id)
        except self._sends.DoesNotExist:
            return None

    def _record(self, sms: OutboundSms) -> str:
        provider_id = f"mock-{uuid.uuid4().hex}"
        item = self._sends(
            sms.message_id, provider_message_id=provider_id, attempt=sms.attempt, sent_at=time.time()
        )
        try:
            item.save(condition=ProviderSendModel.message_id.does_not_exist())
            return provider_id
        except PynamoDBException as exc:
            if not is_condition_failure(exc):
                raise
        existing = self._sends.get(sms.message_id, consistent_read=True)
        if existing.provider_message_id == provider_id:
            return provider_id  # our own write, repeated after its answer was lost
        existing.update(actions=[ProviderSendModel.submissions.add(1)])
        return str(existing.provider_message_id)

    def _emit_dlr(self, message_id: str, provider_id: str, request_id: str | None) -> None:
        failed = unit_draw(self._s.seed, message_id, "dlr") < self._s.dlr_fail_rate
        report = {
            **DeliveryReport(NAME, message_id, provider_id,
                             "UNDELIVERED" if failed else "DELIVERED",
                             "UNDELIVERED" if failed else None).body(),
            "occurred_at": time.time(),
        }
        self._dlr_queue.send(report, delay_s=self._s.dlr_delay_s,
                             attributes=request_attributes(request_id))


# -- replies: inbound messages from the mock's "phones" ------------------------------
MAX_INBOUND_FIELD = 128


def inbound_body(from_number: str, to_number: str, text: str, received_at: float,
                 provider_message_id: str | None = None) -> dict[str, Any]:
    """A reply as the mock puts it on the inbound queue (``make inbound``): a person
    at ``from_number`` writing ``text`` to the gateway's number ``to_number``."""
    return {"provider": NAME, "provider_message_id": provider_message_id or f"mock-in-{uuid.uuid4().hex}",
            "from": from_number, "to": to_number, "text": text, "received_at": received_at}


def is_inbound(body: Any) -> bool:
    """Whether an inbound-queue record is the mock's (not AWS End User Messaging's)."""
    return isinstance(body, dict) and body.get("provider") == NAME


def parse_inbound(body: Mapping[str, Any]) -> InboundSms:
    """The mock's reply as an inbound message; ``JobError`` when it is not one."""
    fields = required_strings(body, ("provider_message_id", "from", "to"), MAX_INBOUND_FIELD,
                              "a mock inbound message")
    text, received = body.get("text"), body.get("received_at")
    if not isinstance(received, int | float) or isinstance(received, bool):
        raise JobError("a mock inbound message has its received_at (epoch seconds)")
    return InboundSms(NAME, fields["provider_message_id"], fields["from"], fields["to"],
                      text if isinstance(text, str) else "", float(received))
