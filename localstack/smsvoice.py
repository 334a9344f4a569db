"""AWS End User Messaging SMS (boto3 ``pinpoint-sms-voice-v2``) for the embedded emulator.

moto 5.2 has no backend for this API, so the emulator serves the part the gateway
uses, built as moto builds a service: a backend per account and region
(``smsvoice_backends``, a moto ``BackendDict``, so moto's reset clears it too) and a
``BaseResponse`` subclass speaking the JSON 1.0 protocol (``X-Amz-Target:
PinpointSMSVoiceV2.<Operation>``). ``application`` is the WSGI entry point;
``localstack.emulator`` routes the requests to it.

What it emulates:

- ``CreateConfigurationSet`` (a repeat with the same ``ClientToken`` returns the
  set; another is ``ConflictException`` ``RESOURCE_ALREADY_EXISTS``),
  ``DescribeConfigurationSets`` (``ConfigurationSetNames``, ``Filters``,
  ``MaxResults`` / ``NextToken``), ``DeleteConfigurationSet``.
- ``CreateEventDestination`` (exactly one of the three destination kinds; at most
  five per set; ``TEXT_SENT`` refused, as the API reference says),
  ``DeleteEventDestination``.
- ``SendTextMessage``. Every request is checked against botocore's model of the
  operation (required members, lengths, ranges, enums, patterns matched in full):
  a violation is ``ValidationException`` ``FIELD_VALIDATION_FAILED`` with
  ``Fields``; a value of the wrong JSON type is ``SerializationException``. The
  destination must be E.164 with a calling code phonenumbers knows (the gateway's
  rule for the local stage, so its example numbers pass). Then the outcome is drawn
  as the gateway's mock provider draws it (``MOCK_*`` variables of this process,
  read at each send):

  - TEMPORARY: ``ThrottlingException`` (what AWS answers past the account's rate).
  - PERMANENT: ``ConflictException`` with ``Reason``
    ``DESTINATION_PHONE_NUMBER_OPTED_OUT`` (AWS's refusal of a destination that
    opted out; the model's enum, and what senders treat as final).
  - ACCEPTED: ``{"MessageId": uuid}``; after ``MOCK_DLR_DELAY`` the events go to the
    SNS topic of every enabled event destination of the send's configuration set
    whose ``MatchingEventTypes`` match (``ALL``, ``TEXT_ALL`` or the type): a
    non-final ``TEXT_SUCCESSFUL``, then a final ``TEXT_DELIVERED`` or, when the DLR
    draw fails, ``TEXT_CARRIER_UNREACHABLE``. A ``TimeToLive`` shorter than the
    delay gives one final ``TEXT_TTL_EXPIRED`` at the TTL instead.

  The events follow AWS's documented SMS event shape ("Example AWS End User
  Messaging SMS event data"); ``context`` is present when the send had one.
  ``messageStatusDescription`` is AWS's text for SUCCESSFUL and DELIVERED and the
  emulator's own for the failures. ``DryRun`` validates and answers a MessageId,
  draws nothing and publishes nothing. ``MaxPrice`` below the message's price is
  ``ValidationException`` ``PRICE_OVER_THRESHOLD``; a missing ``MessageBody``
  is ``MISSING_PARAMETER`` (an emulator choice: the model leaves it optional).
- Any other operation: ``UnknownOperationException``, 400.
- ``GET /_aws/sms-voice/publishes`` (the emulator's own, read-only, in the
  ``/_aws`` place LocalStack gives its internal endpoints): what it has published to
  each SNS topic so far, ``{"<topic ARN>": {"publishes": n, "bytes": total,
  "largest": bytes}}``. Those publishes, and the SQS sends moto's SNS makes for
  them, happen inside the emulator, where no client hook counts them; ``make
  bench`` reads them here to price the events path (``bench/run.py``).
- ``POST /_aws/sms-voice/inbound`` (the emulator's own): a person's reply. The JSON
  body names ``TwoWayChannelArn`` (the SNS topic a real number's two-way channel
  names), ``OriginationNumber`` (the person), ``DestinationNumber`` (our number) and
  ``MessageBody``; the emulator publishes AWS's documented two-way message
  (``originationNumber``, ``destinationNumber``, ``messageBody``,
  ``inboundMessageId``, ``previousPublishedMessageId``; ``messageKeyword`` when the
  body is one of AWS's default keywords) to that topic and answers its
  ``InboundMessageId``. Phone numbers are not emulated, so the topic is given here
  rather than read off the number.

What it does not emulate: phone numbers, pools, sender IDs, registrations, opt-out
lists, keywords, spend limits and MPS quotas (any ``OriginationIdentity`` is
accepted and echoed as ``originationPhoneNumber``); CloudWatch Logs and Firehose
destinations (stored and described, never written to); ``mcc`` / ``mnc`` and
carrier names in events; AWS's price list (the prices below are illustrative);
IAM. Error HTTP statuses follow botocore's model, which gives these errors none:
400, as the JSON protocol answers a client error.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import phonenumbers
from botocore.model import Shape
from moto.core.base_backend import BackendDict, BaseBackend
from moto.core.exceptions import ServiceException
from moto.core.request import Request
from moto.core.responses import TYPE_RESPONSE, ActionResult, BaseResponse
from moto.utilities.utils import get_partition
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from chalicelib.domain.provider_errors import Outcome, mock_outcome, unit_draw
from chalicelib.domain.segments import Encoding, plan_segments
from chalicelib.domain.validation import validate_phone_number
from chalicelib.settings import MockProviderSettings, parse_duration

logger = logging.getLogger(__name__)

SERVICE = "pinpoint-sms-voice-v2"
TARGET_PREFIX = "PinpointSMSVoiceV2."
INTERNAL_PATH = "/_aws/sms-voice/"  # the emulator's own endpoints (not AWS's API)
PUBLISHES_PATH = INTERNAL_PATH + "publishes"
INBOUND_PATH = INTERNAL_PATH + "inbound"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
OPERATIONS = frozenset({
    "CreateConfigurationSet", "DescribeConfigurationSets", "DeleteConfigurationSet",
    "CreateEventDestination", "DeleteEventDestination", "SendTextMessage",
})
MAX_EVENT_DESTINATIONS = 5  # "Each configuration set can contain between 0 and 5 event destinations."
DESTINATION_KINDS = ("CloudWatchLogsDestination", "KinesisFirehoseDestination", "SnsDestination")
DEFAULT_ORIGINATION = "+18445550100"  # a toll-free number of the fictional 555-01xx range
DEFAULT_MESSAGE_TYPE = "TRANSACTIONAL"
# Illustrative prices per part in USD (price, carrier fee); the US pair is the one in
# AWS's example events. Not AWS's price list.
PRICES_PER_PART: dict[str, tuple[Decimal, Decimal]] = {"US": (Decimal("0.00581"), Decimal("0.00302"))}
OTHER_PRICE_PER_PART = (Decimal("0.04"), Decimal("0"))
ENCODING_NAMES = {Encoding.GSM7: "GSM", Encoding.UCS2: "UNICODE"}


# --- errors: each carries the model's error name (code) and members --------------

class InvalidRequestError(ServiceException):
    code = "ValidationException"

    def __init__(self, message: str, reason: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.fields = fields


class ConflictError(ServiceException):
    code = "ConflictException"

    def __init__(self, message: str, reason: str, resource_type: str | None = None,
                 resource_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.resource_type = resource_type
        self.resource_id = resource_id


class NotFoundError(ServiceException):
    code = "ResourceNotFoundException"

    def __init__(self, resource_type: str, resource_id: str) -> None:
        super().__init__(f"The {resource_type} {resource_id} does not exist.")
        self.resource_type = resource_type
        self.resource_id = resource_id


class ThrottledError(ServiceException):
    code = "ThrottlingException"
    message = "Rate exceeded."


class QuotaExceededError(ServiceException):
    code = "ServiceQuotaExceededException"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProtocolError(HTTPException):
    """An error of the JSON protocol itself, which the service model does not list."""

    code = 400

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(description=json.dumps({"__type": error_type, "Message": message}))
        self.error_type = error_type

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", JSON_CONTENT_TYPE), ("X-Amzn-Errortype", self.error_type)]


# --- the model's constraints ----------------------------------------------------

Violation = tuple[str, Any, str]  # (member path, its value, the constraint it breaks)


@functools.cache
def service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(SERVICE)


@functools.cache
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:  # a construct Python's re lacks: the pattern is not checked
        return None


def _wrong_type(path: str, expected: str) -> ProtocolError:
    return ProtocolError("SerializationException", f"Expected {expected} at '{path or 'body'}'")


def _length(shape: Shape, value: Any, size: int, path: str, what: str = "length") -> list[Violation]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        return [(path, value, f"Member must have {what} greater than or equal to {low}")]
    if high is not None and size > high:
        return [(path, value, f"Member must have {what} less than or equal to {high}")]
    return []


def _check_structure(shape: Any, value: Any, path: str) -> list[Violation]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "an object")
    found: list[Violation] = [(_join(path, name), None, "Member must not be null")
                              for name in shape.required_members if value.get(name) is None]
    for name, member in shape.members.items():
        if value.get(name) is not None:
            found += violations(member, value[name], _join(path, name))
    return found


def _check_list(shape: Any, value: Any, path: str) -> list[Violation]:
    if not isinstance(value, list):
        raise _wrong_type(path, "a list")
    found = _length(shape, value, len(value), path)
    for i, item in enumerate(value):
        found += violations(shape.member, item, f"{path}.{i + 1}")
    return found


def _check_map(shape: Any, value: Any, path: str) -> list[Violation]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "a map")
    found = _length(shape, value, len(value), path)
    for key, item in value.items():
        found += violations(shape.key, key, f"{path}.key") + violations(shape.value, item, f"{path}.{key}")
    return found


def _check_string(shape: Any, value: Any, path: str) -> list[Violation]:
    if not isinstance(value, str):
        raise _wrong_type(path, "a string")
    if shape.enum:
        return [] if value in shape.enum else [
            (path, value, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")]
    found = _length(shape, value, len(value), path)
    pattern = _pattern(shape.metadata["pattern"]) if "pattern" in shape.metadata else None
    if not found and pattern is not None and not pattern.fullmatch(value):
        found.append((path, value, f"Member must satisfy regular expression pattern: {pattern.pattern}"))
    return found


def _check_integer(shape: Any, value: Any, path: str) -> list[Violation]:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong_type(path, "an integer")
    return _length(shape, value, value, path, "value")


def _check_boolean(shape: Any, value: Any, path: str) -> list[Violation]:
    if not isinstance(value, bool):
        raise _wrong_type(path, "a boolean")
    return []


def _check_number(shape: Any, value: Any, path: str) -> list[Violation]:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _wrong_type(path, "a number")
    return []


_CHECKS: dict[str, Callable[[Any, Any, str], list[Violation]]] = {
    "structure": _check_structure, "list": _check_list, "map": _check_map,
    "string": _check_string, "integer": _check_integer, "long": _check_integer,
    "boolean": _check_boolean, "double": _check_number, "float": _check_number,
    "timestamp": _check_number,
}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def violations(shape: Shape, value: Any, path: str = "") -> list[Violation]:
    """Where ``value`` breaks the constraints of ``shape`` (botocore's model)."""
    check = _CHECKS.get(shape.type_name)
    return check(shape, value, path) if check else []


def field_error(found: list[Violation]) -> InvalidRequestError:
    """The ValidationException listing ``found``, worded as AWS's validation words it."""
    def one(path: str, value: Any, constraint: str) -> str:
        shown = "null " if value is None else f"'{value}' " if isinstance(value, str | int) else ""
        return f"Value {shown}at '{path}' failed to satisfy constraint: {constraint}"

    count = len(found)
    message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(
        one(*v) for v in found)
    return InvalidRequestError(message, "FIELD_VALIDATION_FAILED",
                               [{"Name": path, "Message": constraint} for path, _, constraint in found])


def checked_input(operation: str, body: str | bytes | None) -> dict[str, Any]:
    """The request's JSON members, once they meet the operation's input shape."""
    try:
        params = json.loads(body or "{}")
    except ValueError as exc:
        raise ProtocolError("SerializationException", f"The body is not valid JSON: {exc}") from exc
    shape = service_model().operation_model(operation).input_shape
    found = violations(shape, params)
    if found:
        raise field_error(found)
    return dict(params)


# --- the knobs: the mock provider's, from this process's environment ------------

def _rate(env: Mapping[str, str], name: str, default: float) -> float:
    value = float(env.get(name, str(default)))
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return value


@dataclass(frozen=True)
class Knobs:
    """Outcome rates, seed and report timing, named and defaulted as the mock's."""

    success_rate: float
    temp_fail_rate: float
    perm_fail_rate: float
    seed: int
    dlr_delay_s: float
    dlr_fail_rate: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Knobs:
        d = MockProviderSettings()
        return cls(
            success_rate=_rate(env, "MOCK_SUCCESS_RATE", d.success_rate),
            temp_fail_rate=_rate(env, "MOCK_TEMP_FAIL_RATE", d.temp_fail_rate),
            perm_fail_rate=_rate(env, "MOCK_PERM_FAIL_RATE", d.perm_fail_rate),
            seed=int(env.get("MOCK_SEED", str(d.seed))),
            dlr_delay_s=parse_duration(env.get("MOCK_DLR_DELAY", f"{d.dlr_delay_s}s")),
            dlr_fail_rate=_rate(env, "MOCK_DLR_FAIL_RATE", d.dlr_fail_rate),
        )


def draw_outcome(knobs: Knobs, context: Mapping[str, str], message_id: str) -> Outcome:
    """The mock provider's draw: by the gateway's (message id, attempt) when the
    Context carries them, else by this send's MessageId."""
    if "message_id" in context and "attempt" in context:
        draw = unit_draw(knobs.seed, context["message_id"], context["attempt"])
    else:
        draw = unit_draw(knobs.seed, message_id)
    return mock_outcome(draw, knobs.success_rate, knobs.temp_fail_rate, knobs.perm_fail_rate)


def report_fails(knobs: Knobs, context: Mapping[str, str], message_id: str) -> bool:
    """The mock provider's delivery-report draw, keyed by the gateway's message id."""
    return unit_draw(knobs.seed, context.get("message_id", message_id), "dlr") < knobs.dlr_fail_rate


# --- resources --------------------------------------------------------------------

@dataclass
class EventDestination:
    name: str
    matching_event_types: list[str]
    destinations: dict[str, dict[str, str]]  # kind (e.g. SnsDestination) -> its members
    enabled: bool = True

    def wants(self, event_type: str) -> bool:
        types = self.matching_event_types
        return "ALL" in types or event_type in types or (
            "TEXT_ALL" in types and event_type.startswith("TEXT_"))

    @property
    def topic_arn(self) -> str | None:
        return self.destinations.get("SnsDestination", {}).get("TopicArn")

    def to_dict(self) -> dict[str, Any]:
        return {"EventDestinationName": self.name, "Enabled": self.enabled,
                "MatchingEventTypes": list(self.matching_event_types), **self.destinations}


@dataclass
class ConfigurationSet:
    name: str
    arn: str
    client_token: str | None
    tags: list[dict[str, str]]
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    event_destinations: dict[str, EventDestination] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ConfigurationSetArn": self.arn, "ConfigurationSetName": self.name,
                "EventDestinations": [d.to_dict() for d in self.event_destinations.values()],
                "CreatedTimestamp": self.created}

    def filter_values(self, name: str) -> set[str]:
        """This set's values for a ``ConfigurationSetFilter`` name (defaults are never set here)."""
        if name == "event-destination-name":
            return set(self.event_destinations)
        if name == "matching-event-types":
            return {t for d in self.event_destinations.values() for t in d.matching_event_types}
        return set()


# --- the text a send leaves, and its events ---------------------------------------

@dataclass(frozen=True)
class AcceptedText:
    """What an accepted send's events report."""

    message_id: str
    origination: str
    destination: str
    iso_country: str
    international: bool
    requested_ms: int
    encoding: str
    message_type: str
    context: dict[str, str]
    parts: int
    price: Decimal
    carrier_fee: Decimal

    def event(self, kind: EventKind, final: bool) -> dict[str, Any]:
        """The event in AWS's documented SMS event shape, stamped now."""
        event: dict[str, Any] = {
            "eventType": kind.event_type, "eventVersion": "1.0",
            "eventTimestamp": int(time.time() * 1000), "isFinal": final,
            "originationPhoneNumber": self.origination, "destinationPhoneNumber": self.destination,
            "isInternationalSend": self.international, "isoCountryCode": self.iso_country,
            "messageId": self.message_id, "messageRequestTimestamp": self.requested_ms,
            "messageEncoding": self.encoding, "messageType": self.message_type,
            "messageStatus": kind.status, "messageStatusDescription": kind.description,
        }
        if self.context:
            event["context"] = dict(self.context)
        event.update(totalMessageParts=self.parts, totalMessagePrice=float(self.price),
                     totalCarrierFee=float(self.carrier_fee))
        return event


class EventKind(NamedTuple):
    event_type: str
    status: str
    description: str


Step = tuple[EventKind, bool]  # an event and its isFinal

# The descriptions of SUCCESSFUL and DELIVERED are AWS's, from its example events.
SUCCESSFUL = EventKind("TEXT_SUCCESSFUL", "SUCCESSFUL", "Message has been accepted by phone carrier")
DELIVERED = EventKind("TEXT_DELIVERED", "DELIVERED", "Message has been accepted by phone")
CARRIER_UNREACHABLE = EventKind("TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE",
                                "The recipient's carrier is unreachable")
TTL_EXPIRED = EventKind("TEXT_TTL_EXPIRED", "TTL_EXPIRED",
                        "The message was not handed off before its TimeToLive")


def timeline(knobs: Knobs, ttl_s: int | None, failed: bool) -> tuple[float, list[Step]]:
    """When a send's events go out (seconds from now), and which, in order."""
    if ttl_s is not None and ttl_s < knobs.dlr_delay_s:
        return float(ttl_s), [(TTL_EXPIRED, True)]
    return knobs.dlr_delay_s, [(SUCCESSFUL, False), (CARRIER_UNREACHABLE if failed else DELIVERED, True)]


def price_of(iso_country: str, parts: int) -> tuple[Decimal, Decimal]:
    price, fee = PRICES_PER_PART.get(iso_country, OTHER_PRICE_PER_PART)
    return price * parts, fee * parts


def country_of(number: str) -> str | None:
    """The ISO 3166-1 alpha-2 country of an E.164 number; the calling code's main one
    when phonenumbers does not place the number itself."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0)
    return None if region in (None, "ZZ", "001") else str(region)


class PublishLog:
    """What the emulator published to each SNS topic: how many messages, how many bytes.

    Read through ``GET /_aws/sms-voice/publishes``; kept on the backend, so moto's
    reset clears it with the rest.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, dict[str, int]] = {}

    def record(self, topic_arn: str, size: int) -> None:
        with self._lock:
            counts = self._topics.setdefault(topic_arn, {"publishes": 0, "bytes": 0, "largest": 0})
            counts["publishes"] += 1
            counts["bytes"] += size
            counts["largest"] = max(counts["largest"], size)

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {arn: dict(counts) for arn, counts in self._topics.items()}


def publish(topic_arn: str, event: dict[str, Any]) -> int:
    """Publish ``event`` as JSON to a topic of moto's SNS (its account and region from the
    ARN); the size of the message published, in bytes."""
    from moto.sns.models import sns_backends

    _, _, _, region, account, _ = topic_arn.split(":", 5)
    message = json.dumps(event)
    sns_backends[account][region].publish(message=message, arn=topic_arn)
    return len(message.encode())


def deliver(text: AcceptedText, targets: list[EventDestination], steps: list[Step],
            published: PublishLog | None = None) -> None:
    """Publish each step's event to the SNS targets that want it, in order, and note
    each publish in ``published``. Runs on a timer thread: it logs what fails and never
    raises."""
    for kind, final in steps:
        event = text.event(kind, final)
        for target in targets:
            if target.topic_arn is not None and target.wants(kind.event_type):
                try:
                    size = publish(target.topic_arn, event)
                except Exception:  # a deleted topic, a bad ARN: the other targets still get it
                    logger.exception("could not publish %s of message %s to %s", kind.event_type,
                                     text.message_id, target.topic_arn)
                    continue
                if published is not None:
                    published.record(target.topic_arn, size)


# --- the backend ------------------------------------------------------------------

@dataclass(frozen=True)
class TextRequest:
    """A ``SendTextMessage`` request, checked against the model."""

    destination: str
    body: str | None
    origination: str | None = None
    message_type: str | None = None
    configuration_set: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    ttl_s: int | None = None
    max_price: str | None = None
    dry_run: bool = False

    @classmethod
    def from_params(cls, p: Mapping[str, Any]) -> TextRequest:
        return cls(destination=p["DestinationPhoneNumber"], body=p.get("MessageBody"),
                   origination=p.get("OriginationIdentity"), message_type=p.get("MessageType"),
                   configuration_set=p.get("ConfigurationSetName"), context=dict(p.get("Context") or {}),
                   ttl_s=p.get("TimeToLive"), max_price=p.get("MaxPrice"), dry_run=bool(p.get("DryRun")))


class SmsVoiceBackend(BaseBackend):
    """Configuration sets and sends of one account in one region."""

    def __init__(self, region_name: str, account_id: str) -> None:
        super().__init__(region_name, account_id)
        self.configuration_sets: dict[str, ConfigurationSet] = {}
        self.published = PublishLog()
        self._lock = threading.Lock()

    def _arn(self, name: str) -> str:
        partition = get_partition(self.region_name)
        return f"arn:{partition}:sms-voice:{self.region_name}:{self.account_id}:configuration-set/{name}"

    def _find(self, name_or_arn: str) -> ConfigurationSet:
        found = self.configuration_sets.get(name_or_arn) or next(
            (c for c in self.configuration_sets.values() if c.arn == name_or_arn), None)
        if found is None:
            raise NotFoundError("configuration-set", name_or_arn)
        return found

    def create_configuration_set(self, name: str, tags: list[dict[str, str]],
                                 client_token: str | None) -> ConfigurationSet:
        with self._lock:
            existing = self.configuration_sets.get(name)
            if existing is not None:
                if client_token is not None and client_token == existing.client_token:
                    return existing  # a retry of the same request
                raise ConflictError(f"The configuration set {name} already exists.",
                                        "RESOURCE_ALREADY_EXISTS", "configuration-set", name)
            created = ConfigurationSet(name, self._arn(name), client_token, tags)
            self.configuration_sets[name] = created
            return created

    def describe_configuration_sets(self, names: list[str],
                                    filters: list[dict[str, Any]]) -> list[ConfigurationSet]:
        with self._lock:
            chosen = [self._find(n) for n in names] if names else list(self.configuration_sets.values())
            return [c for c in chosen
                    if all(c.filter_values(f["Name"]) & set(f["Values"]) for f in filters)]

    def delete_configuration_set(self, name_or_arn: str) -> ConfigurationSet:
        with self._lock:
            found = self._find(name_or_arn)
            return self.configuration_sets.pop(found.name)

    def create_event_destination(self, set_name: str, destination: EventDestination) -> ConfigurationSet:
        with self._lock:
            found = self._find(set_name)
            if destination.name in found.event_destinations:
                raise ConflictError(f"The event destination {destination.name} already exists.",
                                        "RESOURCE_ALREADY_EXISTS", "event-destination", destination.name)
            if len(found.event_destinations) >= MAX_EVENT_DESTINATIONS:
                raise QuotaExceededError(
                    f"A configuration set holds at most {MAX_EVENT_DESTINATIONS} event destinations.",
                    "EVENT_DESTINATIONS_PER_CONFIGURATION_SET")
            found.event_destinations[destination.name] = destination
            return found

    def delete_event_destination(self, set_name: str, name: str) -> tuple[ConfigurationSet, EventDestination]:
        with self._lock:
            found = self._find(set_name)
            if name not in found.event_destinations:
                raise NotFoundError("event-destination", name)
            return found, found.event_destinations.pop(name)

    def _targets(self, set_name: str | None) -> list[EventDestination]:
        if set_name is None:
            return []
        with self._lock:
            return [d for d in self._find(set_name).event_destinations.values() if d.enabled]

    def send_text_message(self, request: TextRequest, knobs: Knobs) -> str:
        """Check, draw and schedule one send; its MessageId, or the refusal AWS would give."""
        text = accepted_text(request, str(uuid.uuid4()))
        targets = self._targets(request.configuration_set)
        if request.dry_run:
            return text.message_id
        outcome = draw_outcome(knobs, request.context, text.message_id)
        if outcome is Outcome.TEMPORARY:
            raise ThrottledError()
        if outcome is Outcome.PERMANENT:
            raise ConflictError(f"The destination phone number {request.destination} opted out.",
                                    "DESTINATION_PHONE_NUMBER_OPTED_OUT")
        if targets:
            delay, steps = timeline(knobs, request.ttl_s,
                                    report_fails(knobs, request.context, text.message_id))
            timer = threading.Timer(delay, deliver, args=(text, targets, steps, self.published))
            timer.daemon = True
            timer.start()
        return text.message_id


def accepted_text(request: TextRequest, message_id: str) -> AcceptedText:
    """The send as its events will describe it; refuses what AWS refuses before sending."""
    if request.body is None:
        raise InvalidRequestError("MessageBody is required.", "MISSING_PARAMETER",
                                  [{"Name": "MessageBody", "Message": "Member must not be null"}])
    country = country_of(request.destination) if validate_phone_number(request.destination, False) else None
    if country is None:
        raise field_error([("DestinationPhoneNumber", request.destination,
                            "Member must be a phone number in E.164 format")])
    plan = plan_segments(request.body)
    price, fee = price_of(country, plan.count)
    if request.max_price is not None and price > Decimal(request.max_price):
        raise InvalidRequestError(f"The price of the message, {price} USD, is over MaxPrice "
                                  f"{request.max_price}.", "PRICE_OVER_THRESHOLD")
    origination = request.origination or DEFAULT_ORIGINATION
    home = country_of(origination) if origination.startswith("+") else None
    return AcceptedText(
        message_id=message_id, origination=origination, destination=request.destination,
        iso_country=country, international=home is not None and home != country,
        requested_ms=int(time.time() * 1000), encoding=ENCODING_NAMES[plan.encoding],
        message_type=request.message_type or DEFAULT_MESSAGE_TYPE, context=request.context,
        parts=plan.count, price=price, carrier_fee=fee)


smsvoice_backends = BackendDict(SmsVoiceBackend, SERVICE)


# --- the responses ------------------------------------------------------------------

def event_destination_from(params: Mapping[str, Any]) -> EventDestination:
    """The event destination a ``CreateEventDestination`` request describes."""
    kinds = {k: dict(params[k]) for k in DESTINATION_KINDS if params.get(k) is not None}
    if len(kinds) != 1:
        reason = "MISSING_PARAMETER" if not kinds else "PARAMETERS_CANNOT_BE_USED_TOGETHER"
        raise InvalidRequestError(f"Give exactly one of {', '.join(DESTINATION_KINDS)}.", reason)
    types = list(params["MatchingEventTypes"])
    if "TEXT_SENT" in types:
        raise field_error([("MatchingEventTypes", types, "The TEXT_SENT event type is not supported")])
    return EventDestination(params["EventDestinationName"], types, kinds)


def page(items: list[Any], params: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """One page of ``items`` by ``MaxResults`` and ``NextToken`` (an offset here)."""
    token = params.get("NextToken")
    try:
        start = int(token) if token is not None else 0
    except ValueError:
        start = -1
    if not 0 <= start <= len(items):
        raise InvalidRequestError("The NextToken is not valid.", "INVALID_NEXT_TOKEN")
    size = params.get("MaxResults") or len(items) or 1
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class SmsVoiceResponse(BaseResponse):
    """The JSON protocol of ``pinpoint-sms-voice-v2`` over ``SmsVoiceBackend``."""

    def __init__(self) -> None:
        super().__init__(service_name=SERVICE)

    @property
    def backend(self) -> SmsVoiceBackend:
        return smsvoice_backends[self.current_account][self.region]

    def call_action(self) -> TYPE_RESPONSE:
        operation = self._get_action()
        if operation not in OPERATIONS:
            error = ProtocolError("UnknownOperationException", f"Unknown operation {operation!r}.")
            return 400, dict(error.get_headers()), str(error.description)
        return super().call_action()

    def _params(self) -> dict[str, Any]:
        return checked_input(self._get_action(), self.body)

    def create_configuration_set(self) -> ActionResult:
        p = self._params()
        created = self.backend.create_configuration_set(
            p["ConfigurationSetName"], list(p.get("Tags") or []), p.get("ClientToken"))
        return ActionResult({"ConfigurationSetArn": created.arn, "ConfigurationSetName": created.name,
                             "Tags": created.tags, "CreatedTimestamp": created.created})

    def describe_configuration_sets(self) -> ActionResult:
        p = self._params()
        found = self.backend.describe_configuration_sets(
            list(p.get("ConfigurationSetNames") or []), list(p.get("Filters") or []))
        sets, token = page(found, p)
        return ActionResult({"ConfigurationSets": [c.to_dict() for c in sets], "NextToken": token})

    def delete_configuration_set(self) -> ActionResult:
        deleted = self.backend.delete_configuration_set(self._params()["ConfigurationSetName"])
        return ActionResult(deleted.to_dict())

    def create_event_destination(self) -> ActionResult:
        p = self._params()
        destination = event_destination_from(p)
        found = self.backend.create_event_destination(p["ConfigurationSetName"], destination)
        return ActionResult({"ConfigurationSetArn": found.arn, "ConfigurationSetName": found.name,
                             "EventDestination": destination.to_dict()})

    def delete_event_destination(self) -> ActionResult:
        p = self._params()
        found, removed = self.backend.delete_event_destination(
            p["ConfigurationSetName"], p["EventDestinationName"])
        return ActionResult({"ConfigurationSetArn": found.arn, "ConfigurationSetName": found.name,
                             "EventDestination": removed.to_dict()})

    def send_text_message(self) -> ActionResult:
        request = TextRequest.from_params(self._params())
        message_id = self.backend.send_text_message(request, Knobs.from_env(os.environ))
        return ActionResult({"MessageId": message_id})


class _ServerRequest(Request):
    from_wsgi_server = True  # the WSGI server adds the Date header


def publishes() -> dict[str, dict[str, int]]:
    """Every backend's publishes by topic ARN (summed, should two backends share a topic)."""
    out: dict[str, dict[str, int]] = {}
    for regions in list(smsvoice_backends.values()):
        for backend in list(regions.values()):
            for arn, counts in backend.published.snapshot().items():
                total = out.setdefault(arn, {"publishes": 0, "bytes": 0, "largest": 0})
                total["publishes"] += counts["publishes"]
                total["bytes"] += counts["bytes"]
                total["largest"] = max(total["largest"], counts["largest"])
    return out


# AWS's default keywords, which every number answers on its own; the two-way payload
# names the one a message matched in ``messageKeyword``.
DEFAULT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT",
                              "OPTOUT", "REVOKE", "START", "UNSTOP", "YES", "HELP", "INFO"})
INBOUND_FIELDS = ("TwoWayChannelArn", "OriginationNumber", "DestinationNumber", "MessageBody")


def two_way_message(origination: str, destination: str, body: str) -> dict[str, Any]:
    """A two-way message as AWS End User Messaging SMS publishes it to a number's
    ``TwoWayChannelArn`` ("Two-way SMS message format")."""
    message: dict[str, Any] = {
        "originationNumber": origination, "destinationNumber": destination,
        "messageBody": body, "inboundMessageId": str(uuid.uuid4()),
        "previousPublishedMessageId": uuid.uuid4().hex,
    }
    keyword = " ".join(body.split()).upper()
    if keyword in DEFAULT_KEYWORDS:
        message["messageKeyword"] = keyword
    return message


def receive_inbound(environ: dict[str, Any]) -> Response:
    """``POST /_aws/sms-voice/inbound``: a person's reply, published as AWS would."""
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        params = json.loads(environ["wsgi.input"].read(size) or b"{}")
    except (ValueError, UnicodeDecodeError):
        params = None
    if not isinstance(params, dict) or not all(
            isinstance(params.get(name), str) and params[name] for name in INBOUND_FIELDS):
        return Response(json.dumps({"message": "a JSON object with the strings "
                                               + ", ".join(INBOUND_FIELDS)}),
                        status=400, content_type="application/json")
    topic = params["TwoWayChannelArn"]
    message = two_way_message(params["OriginationNumber"], params["DestinationNumber"],
                              params["MessageBody"])
    try:
        publish(topic, message)
    except Exception as exc:  # noqa: BLE001 - no such topic: the caller's mistake, said
        return Response(json.dumps({"message": f"could not publish to {topic}: {exc}"}),
                        status=404, content_type="application/json")
    return Response(json.dumps({"InboundMessageId": message["inboundMessageId"]}),
                    content_type="application/json")


def internal_application(environ: dict[str, Any],
                         start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI: the emulator's own endpoints under ``INTERNAL_PATH``."""
    path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
    if path == INBOUND_PATH and method == "POST":
        return receive_inbound(environ)(environ, start_response)
    if path not in (PUBLISHES_PATH, INBOUND_PATH):
        response = Response(json.dumps({"message": "not found"}), status=404,
                            content_type="application/json")
    elif path == INBOUND_PATH:
        response = Response(json.dumps({"message": "POST only"}), status=405,
                            headers={"Allow": "POST"}, content_type="application/json")
    elif method not in ("GET", "HEAD"):
        response = Response(json.dumps({"message": "read-only: GET"}), status=405,
                            headers={"Allow": "GET, HEAD"}, content_type="application/json")
    else:
        response = Response(json.dumps(publishes(), sort_keys=True), content_type="application/json")
    return response(environ, start_response)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """WSGI: answer one ``PinpointSMSVoiceV2.*`` request."""
    status, headers, body = SmsVoiceResponse.dispatch(_ServerRequest(environ))
    headers = {k: v for k, v in headers.items() if k != "status"}
    response = Response(body, status=status, headers=headers)
    return response(environ, start_response)
