"""Validation of a send request: numbers, sender IDs, text and references."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import phonenumbers

from chalicelib.domain.callbacks import MAX_URL_CHARS, url_problem
from chalicelib.domain.errors import UnprocessableError, ValidationError
from chalicelib.domain.segments import SegmentPlan, plan_segments

# The patterns are the OpenAPI document's (ECMA-262 and Python read them alike): a
# test compares the document with these constants. Character classes, not "\\d",
# which in Python takes any Unicode digit (e.g. Arabic-Indic) into a stored number.
SENDER_ID_PATTERN = "^[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*$"  # at least one letter
MAX_SENDER_ID_CHARS = 11
SHORT_CODE_PATTERN = "^[0-9]{3,8}$"
MIN_E164_DIGITS, MAX_E164_DIGITS = 7, 15
MAX_TEXT_CHARS = 1600  # Twilio's cap; ten UCS-2 parts hold 670, ten GSM parts 1,530
MAX_REFERENCE_CHARS = 128
# http(s), a host with no credentials, no white space anywhere.
CALLBACK_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@:\s][^/?#@\s]*(?:[/?#][^\s]*)?$"
RFC3339_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                   r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")


def e164_pattern() -> str:
    """E.164 with a country calling code phonenumbers knows, as one regular expression.

    Country codes are prefix-free, so the code's length fixes how many digits may
    follow it: 7 to 15 digits in all.
    """
    by_length: dict[int, list[str]] = {}
    for code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        by_length.setdefault(len(str(code)), []).append(str(code))
    branches = [f"(?:{'|'.join(codes)})[0-9]{{{MIN_E164_DIGITS - n},{MAX_E164_DIGITS - n}}}"
                for n, codes in sorted(by_length.items())]
    return f"^\\+(?:{'|'.join(branches)})$"


E164 = re.compile(e164_pattern())
ALPHANUMERIC_SENDER = re.compile(SENDER_ID_PATTERN)
SHORT_CODE = re.compile(SHORT_CODE_PATTERN)
RFC3339 = re.compile(RFC3339_PATTERN)
CALLBACK_URL = re.compile(CALLBACK_URL_PATTERN)
FIELDS = frozenset({"to", "from", "text", "client_reference", "callback_url", "send_at",
                    "max_price_cents", "validity_period"})
QUOTE_FIELDS = frozenset({"to", "from", "text"})  # POST /v1/quote: ``from`` optional
MAX_SCHEDULE_AHEAD_S = 35 * 86400  # Twilio's bound for SendAt
# How long a message may wait to be handed to a provider (seconds): AWS End User
# Messaging's TimeToLive bounds, 5 s to 72 h; the default is the longest.
MIN_VALIDITY_S, MAX_VALIDITY_S = 5, 259_200
DEFAULT_VALIDITY_S = MAX_VALIDITY_S


@dataclass(frozen=True)
class SendRequest:
    """A validated ``POST /v1/messages`` body and its segment plan."""

    to: str
    sender: str
    text: str
    client_reference: str | None
    plan: SegmentPlan
    callback_url: str | None = None
    send_at: float | None = None
    max_price_cents: int | None = None  # refuse the message if it would cost more
    validity_period: int = DEFAULT_VALIDITY_S  # seconds from send_at (or acceptance)


@dataclass(frozen=True)
class QuoteRequest:
    """A validated ``POST /v1/quote`` body: what would be sent, and its segment plan."""

    to: str
    sender: str | None
    text: str
    plan: SegmentPlan


def validate_phone_number(value: str, strict: bool) -> bool:
    """True for an E.164 number phonenumbers accepts.

    ``strict`` asks phonenumbers whether the number exists in its country's
    numbering plan; otherwise it must only have E.164's shape and a country
    calling code phonenumbers knows (the local stage uses that, so that the
    seed's example ``+1234567890`` is accepted).
    """
    return bool(E164.fullmatch(value)) and (not strict or _in_numbering_plan(value))


def _in_numbering_plan(value: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(value, None)))
    except phonenumbers.NumberParseException:
        return False


def _phone_number(value: str, field: str, strict: bool) -> str:
    """``value`` if it is a number; 400 for a wrong shape, 422 outside the numbering plan."""
    if not E164.fullmatch(value):
        raise ValidationError(f"'{field}' must be an E.164 phone number, e.g. +14155550123",
                              field)
    if strict and not _in_numbering_plan(value):
        raise UnprocessableError(f"'{field}' is not a number in its country's numbering plan",
                                 field)
    return value


def parse_phone_number(value: object, field: str, strict: bool) -> str:
    """``value`` if it is an E.164 number (400 for a wrong shape or type, 422 outside the
    numbering plan when ``strict``)."""
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be an E.164 phone number, e.g. +14155550123",
                              field)
    return _phone_number(value, field, strict)


def parse_opt_out_request(body: object, strict: bool) -> str:
    """The number of ``POST /v1/opt-outs``."""
    fields = _object(body, frozenset({"number"}))
    if "number" not in fields:
        raise ValidationError("'number' is required", "number")
    return parse_phone_number(fields["number"], "number", strict)


def has_lone_surrogate(value: object) -> bool:
    """True if ``value`` (a decoded JSON value) holds a lone UTF-16 surrogate anywhere.

    JSON's ``\\ud800`` escape decodes to one; it cannot be encoded as UTF-8, so it
    would fail the DynamoDB write, the logs and the answer itself.
    """
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    return False


def printable_name(name: str) -> str:
    """``name`` with lone surrogates escaped, fit to be quoted in an error."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def refuse_lone_surrogates(fields: Mapping[str, object]) -> None:
    """``ValidationError`` naming the first field (by name or value) with a lone surrogate."""
    for name, value in fields.items():
        if has_lone_surrogate(name) or has_lone_surrogate(value):
            field = printable_name(name)
            raise ValidationError(f"'{field}' contains a lone surrogate (not valid Unicode)",
                                  field)


def _string(body: dict[str, object], field: str, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None:
        if required:
            raise ValidationError(f"'{field}' is required", field)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"'{field}' must be a string", field)
    return value


def _sender(value: str, strict: bool) -> str:
    alphanumeric = len(value) <= MAX_SENDER_ID_CHARS and ALPHANUMERIC_SENDER.fullmatch(value)
    if alphanumeric or SHORT_CODE.fullmatch(value):
        return value
    if E164.fullmatch(value):
        return _phone_number(value, "from", strict)
    raise ValidationError(
        "'from' must be an alphanumeric sender ID of 1-11 letters, digits or spaces "
        "with at least one letter, an E.164 number, or a short code of 3-8 digits",
        "from",
    )


def _text(value: str, max_parts: int) -> SegmentPlan:
    if not value:
        raise ValidationError("'text' must not be empty", "text")
    if len(value) > MAX_TEXT_CHARS:
        raise ValidationError(f"'text' is longer than {MAX_TEXT_CHARS} characters", "text")
    plan = plan_segments(value)
    if plan.count > max_parts:
        raise UnprocessableError(
            f"'text' needs {plan.count} parts; at most {max_parts} are allowed", "text"
        )
    return plan


def parse_rfc3339(value: str, field: str) -> float:
    """An RFC 3339 timestamp (``date-time``: with seconds and a zone), as epoch seconds.

    A leap second (``:60``) counts as the second before it; fractions past
    microseconds are cut.
    """
    match = RFC3339.fullmatch(value)
    try:
        if not match:
            raise ValueError(value)
        day_time, fraction, zone = value[:19].upper(), match.group(1) or "", match.group(2)
        if day_time.endswith(":60"):
            day_time = day_time[:-2] + "59"
        moment = datetime.fromisoformat(day_time + fraction[:7] + zone.upper())
    except ValueError as exc:
        raise ValidationError(f"'{field}' must be an RFC 3339 time with a zone, e.g. "
                              "2026-12-01T09:30:00Z", field) from exc
    return moment.timestamp()


def _send_at(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    at = parse_rfc3339(value, "send_at")
    if at <= now:
        raise UnprocessableError("'send_at' is in the past", "send_at")
    if at > now + MAX_SCHEDULE_AHEAD_S:
        raise UnprocessableError("'send_at' is more than 35 days ahead", "send_at")
    return at


def _callback_url(url: str) -> None:
    """400 for a URL the document's pattern refuses; 422 for one it allows that the
    sender's rules refuse (a host name too long, a label that will not encode...)."""
    problem = url_problem(url)
    if len(url) > MAX_URL_CHARS or not CALLBACK_URL.fullmatch(url):
        shape = problem or "must be an http(s) URL with a host, no credentials and no white space"
        raise ValidationError(f"'callback_url' {shape}", "callback_url")
    if problem:
        raise UnprocessableError(f"'callback_url' {problem}", "callback_url")


def _max_price_cents(value: object) -> int | None:
    """A whole number of cents, 0 or more (JSON's ``7.0`` is the integer 7 too); or None."""
    if value is None:
        return None
    cents: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        cents = value
    elif isinstance(value, float) and value.is_integer():
        cents = int(value)
    if cents is None or cents < 0:
        raise ValidationError("'max_price_cents' must be a whole number of cents, 0 or more",
                              "max_price_cents")
    return cents


def _validity_period(value: object) -> int:
    """Whole seconds, 5 s to 72 h (JSON's ``60.0`` is 60 too); the default when absent."""
    if value is None:
        return DEFAULT_VALIDITY_S
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    if seconds is None or not MIN_VALIDITY_S <= seconds <= MAX_VALIDITY_S:
        raise ValidationError(f"'validity_period' must be a whole number of seconds from "
                              f"{MIN_VALIDITY_S} to {MAX_VALIDITY_S} (72 h)", "validity_period")
    return seconds


def _object(body: object, fields: frozenset[str]) -> dict[str, object]:
    """``body`` if it is a JSON object of ``fields`` only, with no lone surrogate."""
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    refuse_lone_surrogates(body)
    unknown = sorted(set(body) - fields)
    if unknown:
        raise ValidationError(f"unknown field '{unknown[0]}'", unknown[0])
    return body


def parse_quote_request(body: object, max_parts: int, strict_phone: bool) -> QuoteRequest:
    """Validate a ``POST /v1/quote`` body as ``parse_send_request`` validates those fields
    (the same 400s and 422s); ``from`` may be left out."""
    checked = _object(body, QUOTE_FIELDS)
    to = _phone_number(_string(checked, "to") or "", "to", strict_phone)
    sender = None
    if "from" in checked:  # may be left out, but is no null: the send's "from" is no null
        sender = _sender(_string(checked, "from") or "", strict_phone)
    text = _string(checked, "text") or ""
    return QuoteRequest(to, sender, text, _text(text, max_parts))


def parse_send_request(
    body: object, max_parts: int, strict_phone: bool, now: float | None = None
) -> SendRequest:
    """Validate a decoded JSON body; raise ``ValidationError`` naming the field."""
    body = _object(body, FIELDS)
    to = _phone_number(_string(body, "to") or "", "to", strict_phone)
    sender = _sender(_string(body, "from") or "", strict_phone)
    text = _string(body, "text") or ""
    plan = _text(text, max_parts)
    reference = _string(body, "client_reference", required=False)
    if reference is not None and len(reference) > MAX_REFERENCE_CHARS:
        raise ValidationError(
            f"'client_reference' is longer than {MAX_REFERENCE_CHARS} characters",
            "client_reference",
        )
    callback_url = _string(body, "callback_url", required=False)
    if callback_url is not None:
        _callback_url(callback_url)
    send_at = _send_at(_string(body, "send_at", required=False),
                       time.time() if now is None else now)
    max_price = _max_price_cents(body.get("max_price_cents"))
    return SendRequest(to, sender, text, reference, plan, callback_url, send_at, max_price,
                       _validity_period(body.get("validity_period")))
