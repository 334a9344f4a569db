"""Delivery reports: capture the hold on DELIVERED, release it otherwise."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from chalicelib import observability
from chalicelib.adapters.messages import DynamoMessages
from chalicelib.adapters.queues import SqsQueues
from chalicelib.domain.provider_errors import classify
from chalicelib.domain.signing import verify
from chalicelib.domain.status import FINAL, Status
from chalicelib.errors import MalformedJsonError, NotFoundError, UnauthorizedError, ValidationError
from chalicelib.services.ledger import Ledger

log = logging.getLogger(__name__)

DELIVERED = "DELIVERED"
FAILED_REPORTS = frozenset({"UNDELIVERED", "REJECTED", "FAILED", "EXPIRED"})


MAX_REFERENCE = 64


class UnknownProviderMessageError(Exception):
    """No message is SENT with this reference and provider id (yet): retried, then
    dead-lettered."""


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on one message.

    ``reference`` is the gateway's message id, which the sender hands the
    provider with every submission and the provider echoes back (the mock
    does; HTTP SMS APIs call it a client reference, or carry it in a
    per-message status callback URL). The report is applied by that key, no
    index lookup, and only to the message the provider knows as
    ``provider_message_id``.
    """

    provider: str
    reference: str
    provider_message_id: str
    status: str
    error_code: str | None

    @classmethod
    def parse(cls, body: Any) -> DeliveryReport:
        if not isinstance(body, dict):
            raise ValidationError("a delivery report must be a JSON object")
        ref, pid, status = body.get("reference"), body.get("provider_message_id"), body.get("status")
        if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REFERENCE:
            raise ValidationError(
                f"'reference' (the gateway's message id, up to {MAX_REFERENCE} characters) "
                "is required", "reference")
        if not isinstance(pid, str) or not pid:
            raise ValidationError("'provider_message_id' is required", "provider_message_id")
        if status != DELIVERED and status not in FAILED_REPORTS:
            raise ValidationError(f"unknown delivery status {status!r}", "status")
        code = body.get("error_code")
        return cls(str(body.get("provider", "")), ref, pid, status,
                   code if isinstance(code, str) else None)

    def as_record(self) -> dict[str, Any]:
        return {"provider": self.provider, "reference": self.reference,
                "provider_message_id": self.provider_message_id, "status": self.status,
                "error_code": self.error_code}


class DlrService:
    def __init__(self, messages: DynamoMessages, ledger: Ledger) -> None:
        self._messages = messages
        self._ledger = ledger

    def apply(self, report: DeliveryReport) -> None:
        """Apply one report; duplicates and reports for settled messages are no-ops.

        One conditional write by key decides (the message must carry the
        report's provider id); only when it is refused is the message read,
        to tell a duplicate from a report that overtook the sender's SENT write.
        """
        message_id = report.reference
        observability.correlate(message_id=message_id)
        if report.status == DELIVERED:
            settled = self._ledger.settle(message_id, Status.DELIVERED,
                                          provider_message_id=report.provider_message_id)
        else:
            code = report.error_code or report.status
            settled = self._ledger.settle(message_id, Status.FAILED_PERM, code, classify(code)[1],
                                          provider_message_id=report.provider_message_id)
        if settled is not None:
            return
        current = self._messages.get(message_id)
        if current is None or current.status not in FINAL:
            # Not ours, or SENT (with this provider id) is not written yet.
            raise UnknownProviderMessageError(report.provider_message_id)
        log.info("duplicate or late delivery report ignored",
                 extra={"message_id": message_id, "dlr_status": report.status})


class DlrIntake:
    """The DLR webhook: authenticate the provider, validate, queue. Nothing else."""

    def __init__(self, secrets: dict[str, str], queues: SqsQueues, dlr_queue: str) -> None:
        self._secrets = secrets
        self._queues = queues
        self._dlr_queue = dlr_queue

    def accept(self, provider: str, raw: bytes, timestamp: str | None,
               signature: str | None) -> DeliveryReport:
        secret = self._secrets.get(provider)
        if secret is None:
            raise NotFoundError(f"unknown provider {provider!r}")
        if not verify(secret, timestamp, signature, raw, time.time()):
            raise UnauthorizedError("bad, missing or stale signature")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MalformedJsonError(f"the body is not valid JSON: {exc}") from exc
        report = DeliveryReport.parse({**body, "provider": provider} if isinstance(body, dict)
                                      else body)
        self._queues.send(self._dlr_queue, report.as_record())
        return report
