"""The Twilio adapter against a local server that answers as Twilio's API is documented:
what it posts, with which credentials, and how it reads each answer."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.reports import OutboundSms
from chalicelib.providers.twilio import TwilioProvider
from chalicelib.settings import TwilioSettings
from tests.support.twilio_api import TwilioApi

pytestmark = pytest.mark.functional

SID, TOKEN = "AC" + "3" * 32, "the-auth-token"
KEY_SID, KEY_SECRET = "SK" + "4" * 32, "the-key-secret"
FROM = "+15005550006"
BASE = "https://gateway.example/api"
SMS = OutboundSms("0b7a3d1e-2f4c-4c55-9f3e-1a2b3c4d5e6f", 1, "+14155550100", "ACME",
                  "Hello from the gateway", 1)


@pytest.fixture(scope="module")
def api() -> Iterator[TwilioApi]:
    with TwilioApi({SID: TOKEN}, api_keys={KEY_SID: (KEY_SECRET, SID)},
                   callback_delay_s=60) as server:  # its callbacks are other tests' business
        yield server


def provider(api: TwilioApi, **settings: object) -> TwilioProvider:
    values: dict[str, object] = {"api_base": api.base_url, "account_sid": SID,
                                 "auth_token": TOKEN, "from_number": FROM, "timeout_s": 2.0}
    return TwilioProvider(TwilioSettings(**{**values, **settings}), BASE)  # type: ignore[arg-type]


def test_a_send_is_posted_form_encoded_with_basic_auth(api: TwilioApi) -> None:
    result = provider(api).submit(SMS)

    assert result.outcome is Outcome.ACCEPTED
    assert result.provider_message_id and result.provider_message_id.startswith("SM")
    request = api.requests[-1]
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.header("Authorization") == "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()).decode()
    assert {k: v[0] for k, v in request.form.items()} == {
        "To": SMS.to, "From": FROM, "Body": SMS.text,
        "StatusCallback": f"{BASE}/v1/dlr/twilio?ref={SMS.message_id}"}
    assert api.message(result.provider_message_id)["status"] == "queued"


def test_an_api_key_pair_authenticates_instead_of_the_token(api: TwilioApi) -> None:
    result = provider(api, api_key_sid=KEY_SID, api_key_secret=KEY_SECRET).submit(SMS)
    assert result.outcome is Outcome.ACCEPTED
    assert api.requests[-1].user == KEY_SID


def test_wrong_credentials_are_retried_not_the_messages_fault(api: TwilioApi) -> None:
    result = provider(api, auth_token="wrong").submit(SMS)
    assert (result.outcome, result.error_code) == (Outcome.TEMPORARY, "20003")


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (429, 20429, Outcome.TEMPORARY), (500, 20500, Outcome.TEMPORARY),
    (503, 20503, Outcome.TEMPORARY), (400, 21211, Outcome.PERMANENT),
    (400, 21610, Outcome.PERMANENT), (400, 21408, Outcome.PERMANENT),
])
def test_scripted_refusals_are_classified(api: TwilioApi, status: int, code: int,
                                          outcome: Outcome) -> None:
    api.fail_next(status=status, code=code)
    result = provider(api).submit(SMS)
    assert (result.outcome, result.error_code) == (outcome, str(code))
    assert result.reason and result.reason.startswith(f"Twilio {code}: ")


def test_an_invalid_number_is_refused_by_twilio_for_good(api: TwilioApi) -> None:
    result = provider(api).submit(OutboundSms(**{**SMS.__dict__, "to": "12345"}))
    assert (result.outcome, result.error_code) == (Outcome.PERMANENT, "21211")


def test_a_send_with_no_answer_in_time_is_temporary_and_not_retried_here(api: TwilioApi) -> None:
    before = len(api.requests)
    api.hang_next(3.0)
    result = provider(api, timeout_s=0.5).submit(SMS)
    assert (result.outcome, result.error_code) == (Outcome.TEMPORARY, "TIMEOUT")
    assert len(api.requests) == before + 1  # one POST: a retry could be a second SMS


def test_a_messaging_service_sends_in_place_of_a_from_number(api: TwilioApi) -> None:
    service = "MG" + "5" * 32
    result = provider(api, from_number="", messaging_service_sid=service).submit(SMS)
    assert result.outcome is Outcome.ACCEPTED
    assert api.requests[-1].param("MessagingServiceSid") == service
    assert api.requests[-1].param("From") is None


def test_nothing_answers_at_all(api: TwilioApi) -> None:
    result = provider(api, api_base="http://127.0.0.1:9").submit(SMS)
    assert (result.outcome, result.error_code) == (Outcome.TEMPORARY, "TIMEOUT")
