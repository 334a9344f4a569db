"""Provider outcomes and the table that classifies provider errors.

As in Jasmin, an error code decides whether a retry can help: throttling and
system errors are temporary, bad numbers and refusals are permanent. Codes
follow SMPP 3.4 command_status names so real SMPP/HTTP providers map onto them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    ACCEPTED = "ACCEPTED"
    TEMPORARY = "TEMPORARY"
    PERMANENT = "PERMANENT"


ERROR_CLASSES: dict[str, tuple[Outcome, str]] = {
    "ESME_RTHROTTLED": (Outcome.TEMPORARY, "provider throttled the request"),
    "ESME_RSYSERR": (Outcome.TEMPORARY, "provider system error"),
    "ESME_RMSGQFUL": (Outcome.TEMPORARY, "provider queue full"),
    "TIMEOUT": (Outcome.TEMPORARY, "provider did not answer in time"),
    "ESME_RINVDSTADR": (Outcome.PERMANENT, "invalid destination address"),
    "ESME_RINVSRCADR": (Outcome.PERMANENT, "invalid source address"),
    "ESME_RX_R_APPN": (Outcome.PERMANENT, "rejected by the destination network"),
    "UNDELIVERED": (Outcome.PERMANENT, "the handset could not be reached"),
    "REJECTED": (Outcome.PERMANENT, "the carrier rejected the message"),
    "EXPIRED": (Outcome.PERMANENT, "the message expired before delivery"),
}


def classify(code: str) -> tuple[Outcome, str]:
    """Temporary or permanent, and a reason; unknown codes are temporary."""
    return ERROR_CLASSES.get(code, (Outcome.TEMPORARY, f"unclassified provider error {code}"))


@dataclass(frozen=True)
class SubmitResult:
    """What a provider said to one submission."""

    outcome: Outcome
    provider_message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None
    dry_run: bool = False  # accepted as valid, not sent (the client is in test mode)
    # PERMANENT for this provider only: it cannot send this message (the destination is
    # not enabled on the account, no sender identity for that country, its price cap),
    # while another provider may. The message moves on to the next provider of its route;
    # the provider's breaker does not count it (it answered).
    provider_refused: bool = False

    @property
    def provider_fault(self) -> bool:
        """The provider, not the message, failed: a breaker counts it as a failure."""
        return self.outcome is Outcome.TEMPORARY

    @property
    def ends_message(self) -> bool:
        """A refusal of the message itself: no provider will take it (an invalid number)."""
        return self.outcome is Outcome.PERMANENT and not self.provider_refused

    @classmethod
    def failed(cls, code: str) -> SubmitResult:
        outcome, reason = classify(code)
        return cls(outcome, error_code=code, reason=reason)


def unit_draw(*parts: object) -> float:
    """A reproducible number in [0, 1) from ``parts`` (seed, message id, attempt)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    # 53 bits divide exactly; 64 bits / 2**64 can round up to 1.0.
    return (int.from_bytes(digest[:8], "big") >> 11) / 2**53


def mock_outcome(draw: float, success: float, temp: float, perm: float) -> Outcome:
    """Map a draw in [0, 1) onto the mock provider's configured rates.

    The rates are taken in order, success, temporary, permanent, each clipped
    to what is left: ``MOCK_SUCCESS_RATE=1`` always succeeds whatever the
    other two say. When they add up to less than 1, the rest succeeds.
    """
    if draw < success:
        return Outcome.ACCEPTED
    if draw < success + temp:
        return Outcome.TEMPORARY
    if draw < success + temp + perm:
        return Outcome.PERMANENT
    return Outcome.ACCEPTED


# A test-mode client's message, checked by the provider and not sent: it ends
# FAILED_PERM with this code and its hold released (never charged).
TEST_MODE = "TEST_MODE"

# Reasons a failure may be counted under, beside the provider codes above; any
# other code is OTHER (a provider's report could name any string, and a metric
# dimension must stay small).
GATEWAY_REASONS = frozenset({"MAX_ATTEMPTS", "DLR_TIMEOUT", "CANCELLED", TEST_MODE})


def failure_reason(code: str | None) -> str:
    """The code as a metric dimension: itself when known, else OTHER."""
    return code if code is not None and (code in ERROR_CLASSES or code in GATEWAY_REASONS) else "OTHER"
