"""Provider-facing signatures, no I/O: the DLR routes verify each provider's own scheme
(the mock's X-Signature, Twilio's X-Twilio-Signature), and any header, however odd,
is a refusal (401 / 403 at the route), never an exception (a 500)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import dlr_signature
from chalicelib.domain.errors import ForbiddenError
from chalicelib.providers.twilio import TwilioProvider
from chalicelib.settings import TwilioSettings

pytestmark = pytest.mark.unit

HYPO = settings(max_examples=150, deadline=None, database=None)
SECRET, NOW = "dlr-secret", 1_800_000_000.0
REPORT = b'{"reference":"m-1","status":"DELIVERED"}'
GOOD = dlr_signature.sign(SECRET, int(NOW), REPORT)


@pytest.mark.parametrize("timestamp, signature", [
    (None, GOOD), (str(int(NOW)), None), ("", GOOD), (str(int(NOW)), ""),
    ("١٨٠٠٠٠٠٠٠٠", GOOD),  # Arabic-Indic digits: isdigit() says yes
    ("１８００００００００", GOOD),  # full-width digits
    ("9" * 5000, GOOD),  # past int()'s 4,300-digit limit
    (" 1800000000", GOOD), ("1800000000.0", GOOD), ("-1800000000", GOOD),
    (str(int(NOW)), "v1=" + "é" * 64),  # non-ASCII: compare_digest raises on str
    (str(int(NOW)), "v1=\ud800"),  # a lone surrogate
    (str(int(NOW)), "," * 10_000),
    (str(int(NOW)), GOOD + "," * 2000),  # the good one, in a header past any sane size
    (str(int(NOW)), " , ,, "),
    (str(int(NOW)), "v1=" + "0" * 64),
    (str(int(NOW)), "x" * 100_000),
])
def test_odd_report_signature_headers_are_false_never_an_exception(
        timestamp: str | None, signature: str | None) -> None:
    assert dlr_signature.verify(SECRET, timestamp, signature, REPORT, NOW) is False


def test_a_good_report_signature_verifies_among_empty_parts() -> None:
    assert dlr_signature.verify(SECRET, str(int(NOW)), GOOD, REPORT, NOW)
    assert dlr_signature.verify(SECRET, str(int(NOW)), f" ,{GOOD},, v1=00", REPORT, NOW)


@HYPO
@given(timestamp=st.none() | st.just(str(int(NOW))) | st.text(max_size=30),
       signature=st.none() | st.text(max_size=200).map(lambda s: f"{GOOD[:3]}{s}") | st.text(),
       body=st.binary(max_size=100))
def test_any_report_headers_give_a_bool(timestamp: str | None, signature: str | None,
                                        body: bytes) -> None:
    assert dlr_signature.verify(SECRET, timestamp, signature, body, NOW) in (True, False)


@pytest.mark.parametrize("signature", [
    "", "é" * 28, "\ud800", "," * 10_000, "x" * 100_000, " ", "v1,abc v1,def"])
def test_odd_twilio_signature_headers_are_refused_never_an_exception(signature: str) -> None:
    provider = TwilioProvider(TwilioSettings(account_sid="AC" + "1" * 32, auth_token="token"),
                              "https://gw.example/api")
    body = b"AccountSid=AC11111111111111111111111111111111&MessageSid=SM1&MessageStatus=delivered"
    with pytest.raises(ForbiddenError):
        provider.parse_report(body, {"x-twilio-signature": signature}, NOW, {"ref": "m-1"})
