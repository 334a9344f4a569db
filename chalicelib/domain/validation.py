"""Validation of a send request: numbers, sender IDs, text and references."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime

import phonenumbers

from chalicelib.domain.callbacks import url_problem
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.segments import SegmentPlan, plan_segments

# Used with fullmatch and re.ASCII: "$" would let a trailing newline through and
# "\d" would take any Unicode digit (e.g. Arabic-Indic) into a stored number.
E164 = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}", re.ASCII)
SHORT_CODE = re.compile(r"\d{3,8}", re.ASCII)
MAX_TEXT_CHARS = 1600  # Twilio's cap; ten UCS-2 parts hold 670, ten GSM parts 1,530
MAX_REFERENCE_CHARS = 128
FIELDS = frozenset({"to", "from", "text", "client_reference", "callback_url", "send_at"})
MAX_SCHEDULE_AHEAD_S = 35 * 86400  # Twilio's bound for SendAt


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


def validate_phone_number(value: str, strict: bool) -> bool:
    """True for an E.164 number phonenumbers accepts.

    ``strict`` asks phonenumbers whether the number exists in its country's
    numbering plan; otherwise it must only have E.164's shape and a country
    calling code phonenumbers knows (the local stage uses that, so that the
    seed's example ``+1234567890`` is accepted).
    """
    if not E164.fullmatch(value):
        return False
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    if strict:
        return bool(phonenumbers.is_valid_number(number))
    code = number.country_code or 0
    return phonenumbers.region_code_for_country_code(code) != "ZZ"


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
    if ALPHANUMERIC_SENDER.fullmatch(value) or SHORT_CODE.fullmatch(value):
        return value
    if value.startswith("+") and validate_phone_number(value, strict):
        return value
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
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValidationError("'text' contains a lone surrogate", "text")
    plan = plan_segments(value)
    if plan.count > max_parts:
        raise ValidationError(
            f"'text' needs {plan.count} parts; at most {max_parts} are allowed", "text"
        )
    return plan


def parse_rfc3339(value: str, field: str) -> float:
    """An RFC 3339 timestamp with a time zone, as epoch seconds."""
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError as exc:
        raise ValidationError(f"'{field}' must be an RFC 3339 time, e.g. "
                              "2026-12-01T09:30:00Z", field) from exc
    if moment.tzinfo is None or "T" not in value.upper():
        raise ValidationError(f"'{field}' must be an RFC 3339 time with a zone", field)
    return moment.timestamp()


def _send_at(value: str | None, now: float) -> float | None:
    if value is None:
        return None
    at = parse_rfc3339(value, "send_at")
    if at <= now:
        raise ValidationError("'send_at' is in the past", "send_at")
    if at > now + MAX_SCHEDULE_AHEAD_S:
        raise ValidationError("'send_at' is more than 35 days ahead", "send_at")
    return at


def parse_send_request(
    body: object, max_parts: int, strict_phone: bool, now: float | None = None
) -> SendRequest:
    """Validate a decoded JSON body; raise ``ValidationError`` naming the field."""
    if not isinstance(body, dict):
        raise ValidationError("the body must be a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ValidationError(f"unknown field '{unknown[0]}'", unknown[0])
    to = _string(body, "to") or ""
    if not validate_phone_number(to, strict_phone):
        raise ValidationError("'to' must be a valid E.164 phone number, e.g. +14155550123", "to")
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
        problem = url_problem(callback_url)
        if problem:
            raise ValidationError(f"'callback_url' {problem}", "callback_url")
    send_at = _send_at(_string(body, "send_at", required=False),
                       time.time() if now is None else now)
    return SendRequest(to, sender, text, reference, plan, callback_url, send_at)
