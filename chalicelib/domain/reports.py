"""What crosses the provider boundary: one outbound SMS, one delivery report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.domain.work import JobError

DELIVERED = "DELIVERED"
FAILED_REPORTS = frozenset({"UNDELIVERED", "REJECTED", "FAILED", "EXPIRED"})
# A report on the way (the carrier took it, the handset has not answered yet):
# it settles nothing, it only goes on the message's timeline.
PROGRESS = "PROGRESS"
# A provider's timestamps and prices are believed only within these bounds.
LATEST_EPOCH_S = 4_102_444_800  # 2100-01-01
MAX_PRICE_CHARS = 24
MAX_REFERENCE = 64


@dataclass(frozen=True)
class OutboundSms:
    """What a provider needs to send one message."""

    message_id: str
    attempt: int
    to: str
    sender: str
    text: str
    parts: int
    request_id: str | None = None  # carried on for log correlation only
    cost_cents: int = 0  # what the client was held for it
    sender_owned: bool = False  # ``sender`` is one of the client's registered sender IDs
    message_type: str = "TRANSACTIONAL"  # or PROMOTIONAL (AWS prices and routes by it)
    test_mode: bool = False  # validate at the provider, send nothing
    ttl_s: int | None = None  # how long the provider may keep trying, when known


@dataclass(frozen=True)
class DeliveryReport:
    """A provider's word on one message, in the gateway's own shape.

    ``reference`` is the gateway's message id, which the sender hands the
    provider with every submission and the provider echoes back (HTTP SMS APIs
    call it a client reference, or carry it in a per-message status callback
    URL). The report is applied by that key, and only to the message the
    provider knows as ``provider_message_id``. Each provider turns its own
    report format into this; the DLR queue carries it as ``body()``.
    """

    provider: str
    reference: str
    provider_message_id: str
    status: str
    error_code: str | None = None
    error_message: str | None = None  # the provider's words for ``error_code``
    provider_status: str | None = None  # the provider's own status name, for the timeline
    provider_cost: str | None = None  # what the provider charged, a decimal in USD
    occurred_at: float | None = None  # when the provider saw it, epoch seconds

    @property
    def delivered(self) -> bool:
        return self.status == DELIVERED

    @property
    def final(self) -> bool:
        return self.status != PROGRESS

    def log_keys(self) -> dict[str, Any]:
        # ``reference``, not yet ``message_id``: the DLR service names the message in
        # the logs once it knows its client too (an unmatched report has none).
        return {"reference": self.reference}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "provider": self.provider, "reference": self.reference,
            "provider_message_id": self.provider_message_id, "status": self.status,
            "error_code": self.error_code}
        for name in ("error_message", "provider_status", "provider_cost", "occurred_at"):
            if getattr(self, name) is not None:
                body[name] = getattr(self, name)
        return body

    @classmethod
    def parse(cls, body: Any) -> DeliveryReport:
        """A DLR-queue record's body; ``JobError`` when it is not a report."""
        problem = report_problem(body)
        if problem is not None:
            raise JobError(problem[1])
        return cls(str(body.get("provider", "")), body["reference"],
                   body["provider_message_id"][:MAX_REFERENCE * 4], body["status"],
                   _text(body.get("error_code"), 64), _text(body.get("error_message")),
                   _text(body.get("provider_status"), 64), price_text(body.get("provider_cost")),
                   epoch_seconds(body.get("occurred_at")))


def _text(value: Any, limit: int = 512) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def price_text(value: Any) -> str | None:
    """A provider's price (a JSON number or a string of USD) as an exact, plain decimal
    string; None for anything that is not a small, finite, non-negative amount."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and len(value) > MAX_PRICE_CHARS:
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite() or price < 0 or price > 1_000_000:
        return None
    text = format(price.normalize() if price else Decimal(0), "f")
    return text if len(text) <= MAX_PRICE_CHARS else None


def epoch_seconds(value: Any, scale: float = 1.0) -> float | None:
    """``value`` / ``scale`` as epoch seconds, if it is a plausible moment (1970-2100)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value) / scale
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and 0 < seconds < LATEST_EPOCH_S else None


def report_problem(body: Any) -> tuple[str | None, str] | None:
    """(field, why) when ``body`` is not a usable report; None when it is."""
    if not isinstance(body, dict):
        return None, "a delivery report must be a JSON object"
    ref, pid, status = body.get("reference"), body.get("provider_message_id"), body.get("status")
    if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REFERENCE:
        return "reference", (f"'reference' (the gateway's message id, up to {MAX_REFERENCE} "
                             "characters) is required")
    if not isinstance(pid, str) or not pid:
        return "provider_message_id", "'provider_message_id' is required"
    if status != DELIVERED and status != PROGRESS and status not in FAILED_REPORTS:
        return "status", f"unknown delivery status {status!r}"
    return None
