"""AWS End User Messaging SMS (``aws-sms``): boto3's ``pinpoint-sms-voice-v2`` client.

Submission is one ``SendTextMessage``. The gateway's message id travels in its
``Context``, which AWS echoes in every delivery event; the events go from the
configuration set's event destination to an SNS topic, and from there (raw
delivery) to the DLR queue, where ``parse_event`` reads them. IAM is the
trust boundary on that path (the queue policy admits the topic only), so
there is no webhook and nothing to sign.

Errors are classified by the API's exception: throttling, service quotas and
5xx are temporary; so are refused access and a missing resource (the
configuration set or origination identity): faults of our account or set-up,
which an operator fixes, not of the message, so they must not fail every queued
message for good. Validation errors and conflicts (an opted-out destination)
are permanent. ``error.code`` keeps
AWS's ``Reason`` where it gave one (``DESTINATION_PHONE_NUMBER_OPTED_OUT``),
else the exception's name; ``error.message`` keeps its message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.inbound import InboundSms
from chalicelib.domain.provider_errors import Outcome, SubmitResult
from chalicelib.domain.reports import (
    DELIVERED,
    MAX_REFERENCE,
    PROGRESS,
    DeliveryReport,
    OutboundSms,
    epoch_seconds,
    price_text,
)
from chalicelib.domain.work import JobError, required_strings
from chalicelib.settings import AwsSmsSettings

log = logging.getLogger(__name__)

NAME = "aws-sms"
TEMPORARY_ERRORS = frozenset({"ThrottlingException", "ServiceQuotaExceededException",
                              "InternalServerException", "ServiceUnavailableException",
                              "RequestTimeoutException",
                              # the account's or the set-up's, not the message's:
                              "AccessDeniedException", "ResourceNotFoundException",
                              "UnrecognizedClientException", "ExpiredTokenException"})
PERMANENT_ERRORS = frozenset({"ValidationException", "ConflictException"})
# ValidationException reasons that are this account's set-up, not the message's: no
# origination identity or registration for the destination, the country blocked, the
# price cap. Another provider of the route may send it.
REFUSED_REASONS = frozenset({"DESTINATION_COUNTRY_BLOCKED", "INVALID_IDENTITY_FOR_DESTINATION_COUNTRY",
                             "INTERNATIONAL_SENDING_NOT_SUPPORTED", "PRICE_OVER_THRESHOLD",
                             "SENDER_ID_NOT_REGISTERED", "SENDER_ID_NOT_SUPPORTED",
                             "SENDER_ID_REQUIRES_REGISTRATION", "RESOURCE_NOT_ACCESSIBLE"})
# AWS allows TimeToLive from 5 s to 259,200 s (72 h).
MIN_TTL_S, MAX_TTL_S = 5, 259_200
# Final messageStatus values that mean the handset (or, where carriers give no
# handset receipt, the carrier) has it.
DELIVERED_STATUSES = frozenset({"DELIVERED", "SUCCESSFUL"})
# Final failures, as the gateway's report statuses (unlisted ones are FAILED).
FAILURE_STATUSES = {
    "TTL_EXPIRED": "EXPIRED",
    "INVALID": "REJECTED",
    "INVALID_MESSAGE": "REJECTED",
    "BLOCKED": "REJECTED",
    "CARRIER_BLOCKED": "REJECTED",
    "SPAM": "REJECTED",
    "PROTECT_BLOCKED": "REJECTED",
    "OPTED_OUT": "REJECTED",
    "MAX_PRICE_EXCEEDED": "REJECTED",
    "UNREACHABLE": "UNDELIVERED",
    "CARRIER_UNREACHABLE": "UNDELIVERED",
    "UNKNOWN": "UNDELIVERED",
}


class AwsSmsProvider:
    """The ``Provider`` of AWS End User Messaging SMS."""

    name = NAME

    def __init__(self, client: Any, settings: AwsSmsSettings, configuration_set: str) -> None:
        self._client = client
        self._s = settings
        self._configuration_set = settings.configuration_set or configuration_set

    def request(self, sms: OutboundSms) -> dict[str, Any]:
        """The ``SendTextMessage`` parameters for ``sms``."""
        params: dict[str, Any] = {
            "DestinationPhoneNumber": sms.to,
            "MessageBody": sms.text,
            "MessageType": sms.message_type or self._s.message_type,
            "ConfigurationSetName": self._configuration_set,
            "Context": {"message_id": sms.message_id, "attempt": str(sms.attempt)},
        }
        origination = sms.sender if sms.sender_owned else self._s.origination_identity
        if origination:
            params["OriginationIdentity"] = origination
        if sms.ttl_s is not None:
            params["TimeToLive"] = max(MIN_TTL_S, min(MAX_TTL_S, int(sms.ttl_s)))
        if self._s.max_price_per_part:
            params["MaxPrice"] = self._s.max_price_per_part
        if sms.test_mode:
            params["DryRun"] = True
        return params

    def accepted_before(self, message_id: str) -> str | None:
        """Cannot say: AWS End User Messaging SMS has no lookup by our reference."""
        return None

    def submit(self, sms: OutboundSms) -> SubmitResult:
        params = self.request(sms)
        described = {"configuration_set": params["ConfigurationSetName"],
                     "origination_identity": params.get("OriginationIdentity"),
                     "message_type": params["MessageType"], "dry_run": sms.test_mode}
        try:
            answer = self._client.send_text_message(**params)
        except ClientError as exc:
            result = classify_error(exc)
            log.info("SendTextMessage refused", extra={**described, "error_code": result.error_code})
            return result
        except BotoCoreError as exc:  # no answer: timeouts, connection failures
            log.warning("SendTextMessage unanswered", extra={**described,
                                                             "error": type(exc).__name__})
            return SubmitResult(Outcome.TEMPORARY, error_code="TIMEOUT",
                                reason=f"no answer from AWS End User Messaging: {type(exc).__name__}")
        provider_id = str(answer["MessageId"])
        log.info("SendTextMessage accepted", extra={**described, "provider_message_id": provider_id})
        return SubmitResult(Outcome.ACCEPTED, provider_message_id=provider_id, dry_run=sms.test_mode)


def classify_error(exc: ClientError) -> SubmitResult:
    """Temporary or permanent, with AWS's reason as the code and its message."""
    error: Mapping[str, Any] = exc.response.get("Error", {})
    name = str(error.get("Code") or "UnknownError")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    reason = exc.response.get("Reason") or error.get("Reason")
    code = str(reason) if reason else name
    message = f"{name}: {error.get('Message') or 'no message'}"
    if name in TEMPORARY_ERRORS or status >= 500 or status == 429:
        return SubmitResult(Outcome.TEMPORARY, error_code=code, reason=message)
    if name in PERMANENT_ERRORS or 400 <= status < 500:
        return SubmitResult(Outcome.PERMANENT, error_code=code, reason=message,
                            provider_refused=code in REFUSED_REASONS)
    return SubmitResult(Outcome.TEMPORARY, error_code=code, reason=message)


def is_event(body: Any) -> bool:
    """Whether a DLR-queue record is an AWS End User Messaging event (not a gateway report)."""
    return isinstance(body, dict) and "messageId" in body and (
        "eventType" in body or "messageStatus" in body)


def parse_event(body: Mapping[str, Any]) -> DeliveryReport:
    """An SMS event, in AWS's documented shape, as the gateway's report.

    Final DELIVERED or SUCCESSFUL captures; any other final status releases,
    with AWS's status as the error code and its description as the message;
    a non-final event only goes on the message's timeline.
    """
    context = body.get("context")
    reference = context.get("message_id") if isinstance(context, dict) else None
    provider_id = body.get("messageId")
    if not isinstance(reference, str) or not 0 < len(reference) <= MAX_REFERENCE:
        raise JobError("an SMS event without the gateway's message id in its context")
    if not isinstance(provider_id, str) or not 0 < len(provider_id) <= 4 * MAX_REFERENCE:
        raise JobError("an SMS event without a messageId")
    event_type = str(body.get("eventType") or "")[:64]
    status = str(body.get("messageStatus") or event_type.removeprefix("TEXT_"))[:64].upper()
    description = body.get("messageStatusDescription")
    common: dict[str, Any] = {"provider_status": event_type or status,
                              "occurred_at": epoch_seconds(body.get("eventTimestamp"), 1000),
                              "provider_cost": _cost(body)}
    if body.get("isFinal") not in (True, "true", "True"):
        return DeliveryReport(NAME, reference, provider_id, PROGRESS, **common)
    if status in DELIVERED_STATUSES:
        return DeliveryReport(NAME, reference, provider_id, DELIVERED, **common)
    return DeliveryReport(NAME, reference, provider_id, FAILURE_STATUSES.get(status, "FAILED"),
                          error_code=status or "UNKNOWN",
                          error_message=str(description)[:512] if description else None,
                          **common)


def _cost(body: Mapping[str, Any]) -> str | None:
    """What AWS charged: ``totalMessagePrice`` plus ``totalCarrierFee``, USD, exact."""
    price = price_text(body.get("totalMessagePrice"))
    if price is None:
        return None
    fee = price_text(body.get("totalCarrierFee")) or "0"
    return price_text(str(Decimal(price) + Decimal(fee)))


MAX_INBOUND_FIELD = 128  # inboundMessageId is a UUID; numbers are at most 16 characters


def parse_inbound(body: Any, now: float) -> InboundSms:
    """A two-way message as AWS End User Messaging publishes it to the number's SNS topic
    (``originationNumber``: the person, ``destinationNumber``: our number,
    ``messageBody``, ``inboundMessageId``), given raw (the subscription's raw delivery)
    or inside SNS's envelope (``Type: Notification``, the payload as ``Message``, its
    ``Timestamp`` the time received). ``JobError`` when it is not one. The payload
    carries no time of its own: without the envelope, it was received ``now``."""
    received = now
    if isinstance(body, dict) and body.get("Type") == "Notification" and isinstance(
            body.get("Message"), str):
        received = _sns_time(body.get("Timestamp")) or now
        try:
            body = json.loads(body["Message"])
        except ValueError as exc:
            raise JobError("an SNS notification whose Message is not JSON") from exc
    if not isinstance(body, dict):
        raise JobError("a two-way SMS message is a JSON object")
    fields = required_strings(body, ("inboundMessageId", "originationNumber",
                                     "destinationNumber"), MAX_INBOUND_FIELD,
                              "a two-way SMS message")
    text = body.get("messageBody")
    return InboundSms(NAME, fields["inboundMessageId"], fields["originationNumber"],
                      fields["destinationNumber"], text if isinstance(text, str) else "",
                      received)


def _sns_time(value: Any) -> float | None:
    """SNS's ``Timestamp`` (ISO 8601, ``2026-12-02T10:00:00.000Z``) as epoch seconds."""
    from datetime import datetime

    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
