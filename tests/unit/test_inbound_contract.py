"""What the inbound side promises outside: Twilio's incoming message as the official
``twilio`` package signs it, and the OpenAPI document's routes, list parameters, message
and event. No I/O."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from twilio.request_validator import RequestValidator

from chalicelib.domain.cursors import MAX_CURSOR_CHARS
from chalicelib.domain.errors import ForbiddenError, ValidationError
from chalicelib.domain.inbound import (
    MAX_INBOUND_TEXT,
    InboundMessage,
    InboundSms,
    Keyword,
    inbound_event,
)
from chalicelib.http.routes import EMPTY_TWIML
from chalicelib.providers.twilio import INBOUND_PATH, MAX_INBOUND_FIELD, TwilioProvider
from chalicelib.services import manage
from chalicelib.services.inbound import INBOUND_LIST_PARAMS
from chalicelib.settings import TwilioSettings
from tests.support.paths import ROOT

pytestmark = pytest.mark.unit

SID, TOKEN = "AC" + "2" * 32, "inbound-token"
BASE = "https://abc.execute-api.us-east-1.amazonaws.com/api"
DOC: dict[str, Any] = json.loads((ROOT / "chalicelib" / "openapi.json").read_text())
SCHEMAS = DOC["components"]["schemas"]


def twilio() -> TwilioProvider:
    return TwilioProvider(TwilioSettings(account_sid=SID, auth_token=TOKEN), BASE)


def incoming(params: dict[str, str], token: str = TOKEN, query: dict[str, str] | None = None,
             url: str | None = None) -> tuple[bytes, dict[str, str], dict[str, str]]:
    """An incoming message as Twilio posts it: body, lower-cased headers, query."""
    query = query or {}
    signed = url or BASE + INBOUND_PATH + (f"?{urllib.parse.urlencode(query)}" if query else "")
    signature = RequestValidator(token).compute_signature(signed, params)
    return urllib.parse.urlencode(params).encode(), {"x-twilio-signature": signature}, query


def sms_params(**extra: str) -> dict[str, str]:
    return {"AccountSid": SID, "MessageSid": "SM" + "c" * 32, "SmsSid": "SM" + "c" * 32,
            "From": "+14155550111", "To": "+14155550000", "Body": "Stop", "NumMedia": "0",
            "ToCountry": "US", **extra}


# -- Twilio's incoming message ------------------------------------------------------
def test_a_signed_incoming_message_is_read() -> None:
    body, headers, query = incoming(sms_params(SomethingNew="x"))
    sms = twilio().parse_inbound(body, headers, query, now=12.5)
    assert sms == InboundSms("twilio", "SM" + "c" * 32, "+14155550111", "+14155550000", "Stop",
                             12.5)


def test_sms_sid_stands_in_for_message_sid_and_a_missing_body_is_empty() -> None:
    params = {k: v for k, v in sms_params().items() if k not in ("MessageSid", "Body")}
    sms = twilio().parse_inbound(*incoming(params), now=1.0)
    assert (sms.provider_message_id, sms.text) == ("SM" + "c" * 32, "")


@pytest.mark.parametrize("signed", [f"{BASE}{INBOUND_PATH}",
                                    BASE.replace(".com/", ".com:443/") + INBOUND_PATH])
def test_the_url_is_signed_with_or_without_its_default_port(signed: str) -> None:
    assert twilio().parse_inbound(*incoming(sms_params(), url=signed), now=1.0).text == "Stop"


@pytest.mark.parametrize(("case", "build"), [
    ("another token", lambda: incoming(sms_params(), token="wrong")),
    ("the status callback's URL", lambda: incoming(sms_params(), url=BASE + "/v1/dlr/twilio")),
    ("a query not signed", lambda: (*incoming(sms_params())[:2], {"tenant": "x"})),
    ("another account", lambda: incoming(sms_params(AccountSid="AC" + "9" * 32))),
    ("no signature", lambda: (incoming(sms_params())[0], {}, {})),
])
def test_what_twilio_did_not_sign_for_this_url_and_account_is_refused(case: str,
                                                                     build: Any) -> None:
    with pytest.raises(ForbiddenError):
        twilio().parse_inbound(*build(), now=1.0)


def test_without_an_auth_token_nothing_is_accepted() -> None:
    provider = TwilioProvider(TwilioSettings(account_sid=SID), BASE)
    with pytest.raises(ForbiddenError):
        provider.parse_inbound(*incoming(sms_params(), token=""), now=1.0)


@pytest.mark.parametrize(("field", "value"), [("From", ""), ("To", "+1" * 40),
                                              ("MessageSid", "")])
def test_a_signed_message_without_its_fields_is_a_bad_request(field: str, value: str) -> None:
    params = {**sms_params(), field: value}
    if field == "MessageSid":
        params["SmsSid"] = ""
    with pytest.raises(ValidationError) as refused:
        twilio().parse_inbound(*incoming(params), now=1.0)
    assert refused.value.field == field


# -- the OpenAPI document -------------------------------------------------------------
def _validate(schema_name: str, instance: object) -> list[str]:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": DOC["components"]}
    return [e.message for e in Draft202012Validator(schema).iter_errors(instance)]


MESSAGE = InboundMessage("i-1", "twilio", "SM1", "acme", "+14155550111", "+14155550000", "STOP",
                         1_800_000_000.0, Keyword.OPT_OUT, "m-1", "r-1", True)


def test_the_list_parameters_are_the_codes() -> None:
    operation = DOC["paths"]["/v1/inbound"]["get"]
    by_name = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert set(by_name) == INBOUND_LIST_PARAMS
    assert (by_name["limit"]["minimum"], by_name["limit"]["maximum"],
            by_name["limit"]["default"]) == (1, manage.MAX_LIMIT, manage.DEFAULT_LIMIT)
    assert by_name["cursor"]["maxLength"] == MAX_CURSOR_CHARS


def test_an_inbound_message_is_what_the_document_describes() -> None:
    body = MESSAGE.public()
    assert set(SCHEMAS["InboundMessage"]["required"]) == set(body)
    assert set(SCHEMAS["InboundMessage"]["properties"]) == set(body)
    assert _validate("InboundMessage", body) == []
    assert _validate("InboundMessage", {**body, "keyword": None, "message_id": None,
                                        "reply_id": None}) == []
    assert SCHEMAS["InboundMessage"]["properties"]["text"]["maxLength"] == MAX_INBOUND_TEXT
    keywords = SCHEMAS["InboundMessage"]["properties"]["keyword"]["enum"]
    assert keywords == [k.value for k in Keyword] + [None]


def test_the_inbound_event_is_documented_as_a_webhook() -> None:
    event = inbound_event(MESSAGE)
    assert _validate("InboundEvent", event) == []
    assert _validate("InboundEvent", {**event, "type": "message.status"}) != []
    webhook = DOC["webhooks"]["inboundMessage"]["post"]
    assert webhook["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InboundEvent"}
    assert {p["name"] for p in webhook["parameters"]} == {
        "webhook-id", "webhook-timestamp", "webhook-signature"}


def test_the_twilio_webhook_is_documented_with_its_limits_and_answer() -> None:
    operation = DOC["paths"]["/v1/inbound/twilio"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["From"]["maxLength"] == MAX_INBOUND_FIELD
    assert form["properties"]["To"]["maxLength"] == MAX_INBOUND_FIELD
    assert operation["responses"]["200"]["content"]["text/xml"]["schema"]["const"] == EMPTY_TWIML
    assert {"200", "400", "403", "415", "503"} <= set(operation["responses"])


# -- the inbound queue's records: the mock's replies and AWS's two-way messages ---------

def test_a_mock_reply_is_read_back_as_it_was_queued() -> None:
    from chalicelib.container import Container
    from chalicelib.providers import mock

    body = json.loads(json.dumps(mock.inbound_body("+14155550111", "+14155550000", "STOP",
                                                   12.5, "mock-in-1")))
    assert Container.queued_inbound(body) == InboundSms(
        "mock", "mock-in-1", "+14155550111", "+14155550000", "STOP", 12.5)


def test_each_mock_reply_gets_an_id_of_its_own() -> None:
    from chalicelib.providers import mock

    ids = {mock.inbound_body("+1", "+2", "hi", 1.0)["provider_message_id"] for _ in range(3)}
    assert len(ids) == 3


def test_a_record_that_is_not_the_mock_s_is_read_as_aws_s_two_way_message() -> None:
    from chalicelib.container import Container

    sms = Container.queued_inbound({"originationNumber": "+14155550111",
                                    "destinationNumber": "+14155550000",
                                    "messageBody": "HELP", "inboundMessageId": "in-1"})
    assert (sms.provider, sms.provider_message_id, sms.text) == ("aws-sms", "in-1", "HELP")


@pytest.mark.parametrize("change", [{"from": None}, {"to": 5}, {"provider_message_id": ""},
                                    {"received_at": "soon"}, {"received_at": True}])
def test_a_mock_reply_without_its_fields_is_not_a_job(change: dict[str, Any]) -> None:
    from chalicelib.domain.work import JobError
    from chalicelib.providers import mock

    body = {**mock.inbound_body("+14155550111", "+14155550000", "hi", 1.0), **change}
    with pytest.raises(JobError):
        mock.parse_inbound(body)
