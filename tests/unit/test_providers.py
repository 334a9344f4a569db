"""The real providers' pure parts: what they send, how they read reports and errors.

No I/O: the AWS adapter's requests and its error table, the shape of AWS End
User Messaging's events, Twilio's form, its answers and the signature of its
callbacks, checked against the official ``twilio`` package's ``RequestValidator``.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from chalicelib.domain.errors import ForbiddenError, ValidationError
from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.reports import DELIVERED, PROGRESS, DeliveryReport, OutboundSms
from chalicelib.domain.work import JobError
from chalicelib.providers import aws_sms, twilio
from chalicelib.settings import AwsSmsSettings, TwilioSettings

pytestmark = pytest.mark.unit

SMS = OutboundSms("2b5c1c4e-6a52-4a6e-9a51-5c3f0e0e0e01", 2, "+14155550100", "ACME", "Hello",
                  1, cost_cents=5)
SID, TOKEN = "AC" + "1" * 32, "twilio-auth-token"
BASE = "https://abc.execute-api.us-east-1.amazonaws.com/api"


# -- AWS End User Messaging SMS ------------------------------------------------------

class Recorder:
    """A stand-in for boto3's client that answers one canned value (a fake, no I/O)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def send_text_message(self, **params: Any) -> Any:
        self.calls.append(params)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def aws(answer: Any = None, **settings: Any) -> tuple[aws_sms.AwsSmsProvider, Recorder]:
    client = Recorder(answer if answer is not None else {"MessageId": "aws-1"})
    return aws_sms.AwsSmsProvider(client, AwsSmsSettings(**settings), "sms-gateway-x-sms"), client


def client_error(code: str, status: int, reason: str | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": f"{code} happened"},
                                "ResponseMetadata": {"HTTPStatusCode": status}}
    if reason:
        response["Reason"] = reason
    return ClientError(response, "SendTextMessage")  # type: ignore[arg-type]


def test_aws_request_carries_the_message_id_in_its_context_and_the_stage_configuration_set() -> None:
    provider, client = aws(origination_identity="pool-123")
    result = provider.submit(SMS)
    assert result.outcome is Outcome.ACCEPTED and result.provider_message_id == "aws-1"
    assert client.calls == [{
        "DestinationPhoneNumber": "+14155550100", "MessageBody": "Hello",
        "MessageType": "TRANSACTIONAL", "ConfigurationSetName": "sms-gateway-x-sms",
        "Context": {"message_id": SMS.message_id, "attempt": "2"},
        "OriginationIdentity": "pool-123"}]


def test_aws_sends_from_the_clients_own_sender_id_only() -> None:
    provider, _ = aws(origination_identity="pool-123")
    assert provider.request(SMS)["OriginationIdentity"] == "pool-123"
    owned = OutboundSms(**{**SMS.__dict__, "sender_owned": True})
    assert provider.request(owned)["OriginationIdentity"] == "ACME"
    bare, _ = aws()
    assert "OriginationIdentity" not in bare.request(SMS)  # AWS picks from the account


def test_aws_test_mode_is_a_dry_run_and_limits_are_passed_when_known() -> None:
    provider, client = aws(max_price_per_part="0.01", configuration_set="mine")
    sms = OutboundSms(**{**SMS.__dict__, "test_mode": True, "ttl_s": 2,
                         "message_type": "PROMOTIONAL"})
    result = provider.submit(sms)
    assert result.dry_run and result.outcome is Outcome.ACCEPTED
    assert client.calls[0]["DryRun"] is True
    assert client.calls[0]["MaxPrice"] == "0.01"
    assert client.calls[0]["TimeToLive"] == aws_sms.MIN_TTL_S
    assert client.calls[0]["MessageType"] == "PROMOTIONAL"
    assert client.calls[0]["ConfigurationSetName"] == "mine"


@pytest.mark.parametrize(("code", "status", "reason", "outcome", "stored"), [
    ("ThrottlingException", 400, None, Outcome.TEMPORARY, "ThrottlingException"),
    ("ServiceQuotaExceededException", 402, "MONTHLY_SPEND_LIMIT_REACHED", Outcome.TEMPORARY,
     "MONTHLY_SPEND_LIMIT_REACHED"),
    ("InternalServerException", 500, None, Outcome.TEMPORARY, "InternalServerException"),
    ("SomethingNew", 503, None, Outcome.TEMPORARY, "SomethingNew"),
    ("ValidationException", 400, "INVALID_PARAMETER", Outcome.PERMANENT, "INVALID_PARAMETER"),
    ("ConflictException", 400, "DESTINATION_PHONE_NUMBER_OPTED_OUT", Outcome.PERMANENT,
     "DESTINATION_PHONE_NUMBER_OPTED_OUT"),
    # our account's or set-up's fault, not the message's: retried, not failed for good
    ("ResourceNotFoundException", 404, None, Outcome.TEMPORARY, "ResourceNotFoundException"),
    ("AccessDeniedException", 403, None, Outcome.TEMPORARY, "AccessDeniedException"),
])
def test_aws_errors_are_classified_and_keep_the_reason(
        code: str, status: int, reason: str | None, outcome: Outcome, stored: str) -> None:
    provider, _ = aws(client_error(code, status, reason))
    result = provider.submit(SMS)
    assert (result.outcome, result.error_code) == (outcome, stored)
    assert result.reason == f"{code}: {code} happened"


def test_aws_no_answer_is_temporary() -> None:
    provider, _ = aws(ReadTimeoutError(endpoint_url="https://sms-voice.example"))
    result = provider.submit(SMS)
    assert (result.outcome, result.error_code) == (Outcome.TEMPORARY, "TIMEOUT")


def event(**fields: Any) -> dict[str, Any]:
    """AWS's documented SMS event, as the configuration set publishes it."""
    return {"eventType": "TEXT_DELIVERED", "eventVersion": "1.0",
            "eventTimestamp": 1686975103470, "isFinal": True,
            "originationPhoneNumber": "+12065550152", "destinationPhoneNumber": "+14255550156",
            "isInternationalSend": False, "isoCountryCode": "US", "mcc": "310", "mnc": "800",
            "messageId": "862a8790-60c0-4430-9b2b-658bdexample",
            "messageRequestTimestamp": 1686975103170, "messageEncoding": "GSM",
            "messageType": "TRANSACTIONAL", "messageStatus": "DELIVERED",
            "messageStatusDescription": "Message has been accepted by phone",
            "context": {"message_id": SMS.message_id, "attempt": "2"},
            "totalMessageParts": 1, "totalMessagePrice": 0.00581, "totalCarrierFee": 0.0,
            **fields}


@pytest.mark.parametrize("status", ["DELIVERED", "SUCCESSFUL"])
def test_a_final_delivered_or_successful_event_captures_with_its_price(status: str) -> None:
    report = aws_sms.parse_event(event(messageStatus=status, eventType=f"TEXT_{status}"))
    assert aws_sms.is_event(event())
    assert report.status == DELIVERED and report.final
    assert (report.reference, report.provider_message_id) == (
        SMS.message_id, "862a8790-60c0-4430-9b2b-658bdexample")
    assert report.provider_cost == "0.00581"
    assert report.occurred_at == pytest.approx(1686975103.470)


@pytest.mark.parametrize(("status", "gateway"), [
    ("CARRIER_UNREACHABLE", "UNDELIVERED"), ("UNREACHABLE", "UNDELIVERED"),
    ("UNKNOWN", "UNDELIVERED"), ("TTL_EXPIRED", "EXPIRED"), ("BLOCKED", "REJECTED"),
    ("CARRIER_BLOCKED", "REJECTED"), ("SPAM", "REJECTED"), ("INVALID", "REJECTED"),
    ("PROTECT_BLOCKED", "REJECTED"), ("SOMETHING_NEW", "FAILED"),
])
def test_a_final_failure_event_releases_with_awss_status_as_the_code(status: str,
                                                                       gateway: str) -> None:
    report = aws_sms.parse_event(event(messageStatus=status, eventType=f"TEXT_{status}",
                                       messageStatusDescription="why"))
    assert (report.status, report.error_code, report.error_message) == (gateway, status, "why")


def test_a_non_final_event_only_goes_on_the_timeline() -> None:
    report = aws_sms.parse_event(event(eventType="TEXT_SUCCESSFUL", messageStatus="SUCCESSFUL",
                                       isFinal=False))
    assert report.status == PROGRESS and not report.final
    assert report.provider_status == "TEXT_SUCCESSFUL"


@pytest.mark.parametrize("broken", [{"context": {}}, {"context": "x"}, {"messageId": ""},
                                    {"context": {"account": "bar"}}])
def test_an_event_without_our_message_id_is_not_a_report(broken: dict[str, Any]) -> None:
    with pytest.raises(JobError):
        aws_sms.parse_event(event(**broken))


@pytest.mark.parametrize(("price", "stored"), [(0.09582, "0.09582"), (0, "0"), ("1e-5", "0.00001"),
                                               (-1, None), ("nan", None), (True, None),
                                               (None, None)])
def test_the_price_is_kept_as_an_exact_decimal(price: Any, stored: str | None) -> None:
    assert aws_sms.parse_event(event(totalMessagePrice=price)).provider_cost == stored


def test_gateway_reports_are_not_taken_for_events() -> None:
    assert not aws_sms.is_event({"provider": "mock", "reference": "r",
                                 "provider_message_id": "p", "status": "DELIVERED"})


# -- Twilio ----------------------------------------------------------------------------

def tw(**settings: Any) -> twilio.TwilioProvider:
    values: dict[str, Any] = {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15005550006"}
    return twilio.TwilioProvider(TwilioSettings(**{**values, **settings}), BASE)


def test_twilio_form_names_the_status_callback_with_the_message_reference() -> None:
    form = tw().form(SMS)
    assert form == {"To": "+14155550100", "Body": "Hello", "From": "+15005550006",
                    "StatusCallback": f"{BASE}/v1/dlr/twilio?ref={SMS.message_id}"}
    assert tw().messages_url == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"


def test_twilio_sender_choice() -> None:
    owned = OutboundSms(**{**SMS.__dict__, "sender_owned": True})
    assert tw().form(owned)["From"] == "ACME"
    service = tw(from_number="", messaging_service_sid="MG" + "2" * 32).form(SMS)
    assert "From" not in service and service["MessagingServiceSid"] == "MG" + "2" * 32
    limits = tw(max_price="0.05").form(OutboundSms(**{**SMS.__dict__, "ttl_s": 99_999}))
    # Above Twilio's maximum its default (the maximum) applies: no ValidityPeriod sent.
    assert limits["MaxPrice"] == "0.05" and "ValidityPeriod" not in limits
    assert tw().form(OutboundSms(**{**SMS.__dict__, "ttl_s": 120}))["ValidityPeriod"] == "120"


def test_twilio_test_mode_hands_nothing_over() -> None:
    result = tw(api_base="http://127.0.0.1:9").submit(
        OutboundSms(**{**SMS.__dict__, "test_mode": True}))
    assert result.dry_run and result.outcome is Outcome.ACCEPTED


@pytest.mark.parametrize(("status", "body", "outcome", "code"), [
    (201, b'{"sid": "SM1", "status": "queued"}', Outcome.ACCEPTED, None),
    (429, b'{"code": 20429, "message": "Too Many Requests", "status": 429}', Outcome.TEMPORARY,
     "20429"),
    (500, b'{"code": 20500, "message": "Internal Server Error"}', Outcome.TEMPORARY, "20500"),
    (503, b"<html>down</html>", Outcome.TEMPORARY, "503"),
    (400, b'{"code": 21211, "message": "The \'To\' number is not valid"}', Outcome.PERMANENT,
     "21211"),
    (400, b'{"code": 21611, "message": "queue full"}', Outcome.TEMPORARY, "21611"),
    (401, b'{"code": 20003, "message": "Authenticate"}', Outcome.TEMPORARY, "20003"),
    (404, b"<html>not found</html>", Outcome.TEMPORARY, "404"),
    (400, b'{"code": 21606, "message": "not your number"}', Outcome.PERMANENT, "21606"),
    (201, b'{"no": "sid"}', Outcome.PERMANENT, "NO_SID"),  # maybe sent: never again
])
def test_twilio_answers_are_classified(status: int, body: bytes, outcome: Outcome,
                                       code: str | None) -> None:
    result = twilio._answer(status, body)
    assert (result.outcome, result.error_code) == (outcome, code)
    if outcome is Outcome.ACCEPTED:
        assert result.provider_message_id == "SM1"


params_strategy = st.dictionaries(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30), max_size=8)


@pytest.mark.parametrize(("base", "signed"), [
    ("https://gw.example/api", "https://gw.example:443/api"),
    ("https://gw.example:443/api", "https://gw.example/api"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
])
def test_a_url_signed_with_or_without_its_default_port_is_accepted(base: str, signed: str) -> None:
    provider = twilio.TwilioProvider(TwilioSettings(account_sid=SID, auth_token=TOKEN), base)
    params = status_params("delivered")
    query = {"ref": SMS.message_id}
    url = f"{signed}/v1/dlr/twilio?{urllib.parse.urlencode(query)}"
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    report = provider.parse_report(urllib.parse.urlencode(params).encode(),
                                   {"x-twilio-signature": signature}, 1.0, query)
    assert report.status == DELIVERED


@given(params=params_strategy)
def test_our_signature_is_the_official_validators(params: dict[str, str]) -> None:
    url = f"{BASE}/v1/dlr/twilio?ref=abc"
    ours = twilio.twilio_signature(TOKEN, url, {k: [v] for k, v in params.items()})
    assert ours == RequestValidator(TOKEN).compute_signature(url, params)


def callback(params: dict[str, str], ref: str = SMS.message_id, token: str = TOKEN,
             tamper: dict[str, str] | None = None) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """A status callback as Twilio posts it: body, lower-cased headers, query."""
    query = {"ref": ref}
    url = f"{BASE}/v1/dlr/twilio?{urllib.parse.urlencode(query)}"
    signature = RequestValidator(token).compute_signature(url, params)
    body = urllib.parse.urlencode({**params, **(tamper or {})}).encode()
    return body, {"x-twilio-signature": signature}, query


def status_params(status: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": SID, "ApiVersion": "2010-04-01", "From": "+15005550006",
            "MessageSid": "SM" + "a" * 32, "MessageStatus": status, "SmsSid": "SM" + "a" * 32,
            "SmsStatus": status, "To": "+14155550100", **extra}


def test_a_signed_delivered_callback_is_a_delivered_report() -> None:
    report = tw().parse_report(*callback(status_params("delivered", RawDlrDoneDate="2612011200",
                                                       SomethingNew="x"))[:2], 1.0,
                               callback(status_params("delivered"))[2])
    assert (report.status, report.reference, report.provider_message_id) == (
        DELIVERED, SMS.message_id, "SM" + "a" * 32)


@pytest.mark.parametrize(("status", "code", "gateway"), [
    ("undelivered", "30003", "UNDELIVERED"), ("failed", "30008", "FAILED"),
    ("failed", "", "FAILED")])
def test_failure_callbacks_carry_twilios_code(status: str, code: str, gateway: str) -> None:
    extra = {"ErrorCode": code} if code else {}
    body, headers, query = callback(status_params(status, **extra))
    report = tw().parse_report(body, headers, 1.0, query)
    assert report.status == gateway
    assert report.error_code == (code or gateway)
    assert report.error_message


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "accepted", "read", "brand-new"])
def test_other_statuses_only_go_on_the_timeline(status: str) -> None:
    body, headers, query = callback(status_params(status))
    report = tw().parse_report(body, headers, 1.0, query)
    assert (report.status, report.provider_status) == (PROGRESS, status)


@pytest.mark.parametrize("how", ["tampered body", "wrong token", "no signature", "other ref",
                                 "other account"])
def test_a_callback_twilio_did_not_sign_for_us_is_refused(how: str) -> None:
    params = status_params("delivered")
    body, headers, query = {
        "tampered body": lambda: callback(params, tamper={"MessageStatus": "failed"}),
        "wrong token": lambda: callback(params, token="not-ours"),
        "no signature": lambda: (callback(params)[0], {}, callback(params)[2]),
        "other ref": lambda: (*callback(params)[:2], {"ref": "another-message"}),
        "other account": lambda: callback({**params, "AccountSid": "AC" + "9" * 32}),
    }[how]()
    with pytest.raises(ForbiddenError):
        tw().parse_report(body, headers, 1.0, query)


def test_a_signed_callback_without_a_reference_is_a_bad_request() -> None:
    url = f"{BASE}/v1/dlr/twilio"
    params = status_params("delivered")
    signature = RequestValidator(TOKEN).compute_signature(url, params)
    with pytest.raises(ValidationError):
        tw().parse_report(urllib.parse.urlencode(params).encode(),
                          {"x-twilio-signature": signature}, 1.0, {})


def test_the_container_and_the_settings_know_each_provider_by_its_modules_name() -> None:
    from chalicelib import container
    from chalicelib.providers import mock
    from chalicelib.settings import PROVIDER_NAMES

    assert (container.AWS_SMS, container.TWILIO) == (aws_sms.NAME, twilio.NAME)
    assert set(PROVIDER_NAMES) == {mock.NAME, aws_sms.NAME, twilio.NAME}


def test_the_cost_is_the_price_plus_the_carrier_fee() -> None:
    report = aws_sms.parse_event(event(totalMessagePrice=0.00581, totalCarrierFee=0.00302))
    assert report.provider_cost == "0.00883"


@pytest.mark.parametrize(("fields", "check"), [
    ({"eventTimestamp": float("nan")}, lambda r: r.occurred_at is None),
    ({"eventTimestamp": 1e20}, lambda r: r.occurred_at is None),
    ({"eventTimestamp": 10**400}, lambda r: r.occurred_at is None),
    ({"eventTimestamp": "1686975103470"}, lambda r: r.occurred_at is None),
    ({"totalMessagePrice": "1e500000"}, lambda r: r.provider_cost is None),
    ({"totalMessagePrice": float("inf")}, lambda r: r.provider_cost is None),
    ({"isFinal": "true"}, lambda r: r.final),
    ({"messageStatus": "X" * 10_000}, lambda r: len(r.error_code or "") <= 64),
])
def test_odd_event_fields_are_read_safely(fields: dict[str, Any], check: Any) -> None:
    report = aws_sms.parse_event(event(**fields))
    assert check(report)
    assert DeliveryReport.parse(report.body()) == report  # and it survives the queue


def test_an_event_with_an_overlong_reference_is_not_a_report() -> None:
    with pytest.raises(JobError):
        aws_sms.parse_event(event(context={"message_id": "m" * 65}))


@pytest.mark.parametrize("cost", ["n/a", "1e500000", -1, float("nan"), True, "9" * 40])
def test_a_queued_report_with_a_bad_cost_keeps_no_cost(cost: Any) -> None:
    body = {"provider": "mock", "reference": "r", "provider_message_id": "p",
            "status": "DELIVERED", "provider_cost": cost, "occurred_at": float("inf")}
    report = DeliveryReport.parse(body)
    assert report.provider_cost is None and report.occurred_at is None
