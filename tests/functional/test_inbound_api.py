"""Two-way over the API, against moto: Twilio's signed incoming message webhook (signed by
the official ``twilio`` package's ``RequestValidator``), the confirmation sent back through
Twilio (a local server that answers as Twilio's API), and ``GET /v1/inbound``. Every
answer is checked against the OpenAPI document."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from chalicelib import cli
from chalicelib.container import Container
from chalicelib.domain.inbound import inbound_id_for, reply_id_for
from chalicelib.domain.signing import derive_secret
from chalicelib.http import routes
from chalicelib.services.reconcile import reconcile
from chalicelib.settings import Settings, TwilioSettings
from tests.support.clients import make_client
from tests.support.http import as_json, assert_error, post
from tests.support.queues import receive, run
from tests.support.receiver import Receiver
from tests.support.twilio_api import TwilioApi

pytestmark = pytest.mark.functional

SID, TOKEN = "AC" + "7" * 32, "inbound-auth-token"
BASE = "https://gw.example/api"
INBOUND_URL = f"{BASE}/v1/inbound/twilio"
PERSON, OUR_NUMBER = "+14155550111", "+14155550000"
TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
API_KEY = "acme-inbound-key"


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi({SID: TOKEN}, callback_delay_s=60) as server:  # no status callbacks here
        yield server


@pytest.fixture
def settings(settings: Settings, twilio_api: TwilioApi, request: pytest.FixtureRequest) -> Settings:
    """Twilio configured (its API is the local server), unless the test's ``settings`` mark
    says otherwise; the default route stays the mock."""
    mark = request.node.get_closest_marker("settings")
    if mark is not None and "twilio" in mark.kwargs:
        return settings
    return replace(settings, public_base_url=BASE, twilio=TwilioSettings(
        api_base=twilio_api.base_url, account_sid=SID, auth_token=TOKEN, timeout_s=2.0))


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> None:
    assert cli.main(list(args)) == 0, capsys.readouterr().err
    capsys.readouterr()


def acme(aws: Container, capsys: pytest.CaptureFixture[str], inbound_url: str | None = None) -> str:
    """Client acme, owner of OUR_NUMBER as a sender ID; its API key."""
    admin(capsys, "client", "--name", "acme", "--credits", "10", "--api-key", API_KEY,
          "--sender-ids", OUR_NUMBER)
    aws.accounts.configure("acme", inbound_url=inbound_url)
    return API_KEY


def params(body: str, sid: str = "SM" + "a" * 32, **extra: str) -> dict[str, str]:
    """An incoming SMS as Twilio posts it (the documented parameters, and some it adds)."""
    return {"ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid,
            "SmsStatus": "received", "Body": body, "To": OUR_NUMBER, "NumSegments": "1",
            "MessageSid": sid, "AccountSid": SID, "From": PERSON, "ApiVersion": "2010-04-01",
            "FromCountry": "US", **extra}


def inbound(api: Any, form: dict[str, str], token: str = TOKEN, signature: str | None = None,
            query: str = "") -> Any:
    url = INBOUND_URL + (f"?{query}" if query else "")
    signed = RequestValidator(token).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": signed if signature is None else signature}
    path = "/v1/inbound/twilio" + (f"?{query}" if query else "")
    return api.http.post(path, body=urllib.parse.urlencode(form).encode(), headers=headers)


def listed(api: Any, key: str, query: str = "") -> Any:
    return api.http.get(f"/v1/inbound{query}", headers={"X-API-Key": key})


def jobs(aws: Container, queue: str) -> list[dict[str, Any]]:
    return [json.loads(r["Body"]) for r in receive(aws, queue)]


# -- the webhook ---------------------------------------------------------------------
def test_a_signed_stop_opts_out_confirms_through_twilio_and_is_listed(
        api: Any, aws: Container, twilio_api: TwilioApi, capsys: pytest.CaptureFixture[str],
        receiver: Receiver) -> None:
    key = acme(aws, capsys, inbound_url=receiver.url)
    receiver.secret = derive_secret("test-master-secret", "acme", 1)
    sent = as_json(post(api, key, {"to": PERSON, "from": OUR_NUMBER, "text": "Your code: 1"}))
    receive(aws, aws.settings.names.send_queue)  # the client's own message: not this test's

    answer = inbound(api, params(" Stop "))

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/xml" and answer.body.decode() == TWIML
    [entry] = as_json(listed(api, key))["inbound"]
    assert (entry["from"], entry["to"], entry["text"], entry["keyword"], entry["provider"]) == (
        PERSON, OUR_NUMBER, " Stop ", "OPT_OUT", "twilio")
    assert entry["message_id"] == sent["message_id"]
    assert entry["reply_id"] == reply_id_for(entry["id"])
    assert aws.contacts.opt_out_of("acme", PERSON).opted_out  # type: ignore[union-attr]
    # The confirmation goes out through Twilio, from the number the person wrote to, free.
    records = receive(aws, aws.settings.names.send_queue)
    assert [json.loads(r["Body"])["route"] for r in records] == ["via:twilio"]
    before = len(twilio_api.requests)
    run(api, "sender", records)
    [create] = twilio_api.requests[before:]
    assert (create.param("From"), create.param("To")) == (OUR_NUMBER, PERSON)
    assert (create.param("Body") or "").startswith("acme: You are unsubscribed")
    reply = as_json(api.http.get(f"/v1/messages/{entry['reply_id']}", headers={"X-API-Key": key}))
    assert (reply["status"], reply["cost_cents"], reply["provider"]) == ("SENT", 0, "twilio")
    # The client's inbound URL gets the event, signed.
    run(api, "callbacks", receive(aws, aws.settings.names.callbacks_queue))
    assert receiver.rejected == 0
    assert [(e["type"], e["id"]) for e in receiver.events] == [("message.inbound", entry["id"])]
    # The free confirmation leaves the books as they were.
    assert reconcile(aws.accounts, aws.messages).problems == []


def test_twilio_posting_the_message_again_changes_nothing(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    key = acme(aws, capsys)
    assert inbound(api, params("HELP")).status_code == 200
    first = receive(aws, aws.settings.names.send_queue)

    again = inbound(api, params("HELP"))

    assert again.status_code == 200 and again.body.decode() == TWIML
    assert len(first) == 1 and receive(aws, aws.settings.names.send_queue) == []
    assert len(as_json(listed(api, key))["inbound"]) == 1


@pytest.mark.parametrize(("case", "change"), [
    ("unsigned", {"signature": ""}),
    ("signed with another token", {"token": "not-the-token"}),
    ("signature of other parameters", {"signature": RequestValidator(TOKEN).compute_signature(
        INBOUND_URL, {"Body": "START"})}),
])
def test_a_request_twilio_did_not_sign_is_403_and_changes_nothing(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str], case: str,
        change: dict[str, str]) -> None:
    key = acme(aws, capsys)

    answer = inbound(api, params("STOP"), **change)

    assert_error(answer, 403, "forbidden")
    assert as_json(listed(api, key))["inbound"] == []
    assert aws.contacts.opt_out_of("acme", PERSON) is None
    assert receive(aws, aws.settings.names.send_queue) == []


def test_a_message_for_another_twilio_account_is_403(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    acme(aws, capsys)
    assert_error(inbound(api, params("STOP", AccountSid="AC" + "8" * 32)), 403, "forbidden")


def test_the_query_string_is_part_of_what_is_signed(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    key = acme(aws, capsys)
    assert inbound(api, params("hi"), query="tenant=acme").status_code == 200
    assert len(as_json(listed(api, key))["inbound"]) == 1


@pytest.mark.parametrize("missing", ["From", "To", "MessageSid"])
def test_a_signed_message_without_its_fields_is_400(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str], missing: str) -> None:
    acme(aws, capsys)
    form = {k: v for k, v in params("STOP").items()
            if k != missing and not (missing == "MessageSid" and k in ("SmsSid", "SmsMessageSid"))}
    assert_error(inbound(api, form), 400, "validation_error", missing)


def test_a_body_that_is_not_form_encoded_is_415(api: Any, aws: Container) -> None:
    answer = api.http.post("/v1/inbound/twilio", body=b"{}",
                           headers={"Content-Type": "application/json"})
    assert_error(answer, 415, "unsupported_media_type")


@pytest.mark.settings(twilio=TwilioSettings(), public_base_url="")
def test_without_twilio_settings_nothing_can_be_verified_403(api: Any, aws: Container) -> None:
    assert_error(inbound(api, params("STOP")), 403, "forbidden")
    assert_error(inbound(api, params("STOP"), token=""), 403, "forbidden")


def test_a_token_rotated_in_the_stored_settings_is_read_again_once(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    key = acme(aws, capsys)
    rotated = Container(replace(aws.settings, twilio=replace(aws.settings.twilio,
                                                             auth_token="rotated")))
    rechecks: list[Container] = []

    def recheck() -> Container:
        rechecks.append(rotated)
        return rotated

    monkeypatch.setattr(routes, "recheck_stored_settings", recheck)
    assert inbound(api, params("hi"), token="rotated").status_code == 200
    assert len(rechecks) == 1 and len(as_json(listed(api, key))["inbound"]) == 1

    # Still wrong after the re-read: 403.
    monkeypatch.setattr(routes, "recheck_stored_settings", lambda: routes.get_container())
    assert_error(inbound(api, params("hi", sid="SM2"), token="older"), 403, "forbidden")


def test_an_unattributed_message_is_taken_in_and_shown_to_nobody(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    key = acme(aws, capsys)
    form = params("STOP", To="+14155550999")

    assert inbound(api, form).status_code == 200

    assert as_json(listed(api, key))["inbound"] == []
    stored = aws.inbound_store.get(inbound_id_for("twilio", form["MessageSid"]))
    assert stored is not None and stored.client_id is None and stored.done
    assert receive(aws, aws.settings.names.send_queue) == []


# -- GET /v1/inbound -------------------------------------------------------------------
def test_the_list_pages_with_signed_cursors_and_shows_a_client_only_its_own(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    key = acme(aws, capsys)
    other = make_client(aws)
    for i in range(3):
        assert inbound(api, params(f"message {i}", sid=f"SM{i}")).status_code == 200
    assert inbound(api, params("from someone else", sid="SM9", From="+14155550222")
                   ).status_code == 200

    first = as_json(listed(api, key, "?limit=2"))
    rest = as_json(listed(api, key, f"?limit=2&cursor={first['next_cursor']}"))
    mine = as_json(listed(api, key, f"?from={urllib.parse.quote(PERSON)}"))

    assert [e["text"] for e in first["inbound"]] == ["from someone else", "message 2"]
    assert [e["text"] for e in rest["inbound"]] == ["message 1", "message 0"]
    assert [e["text"] for e in mine["inbound"]] == ["message 2", "message 1", "message 0"]
    assert as_json(listed(api, other))["inbound"] == []
    assert_error(listed(api, other, f"?cursor={first['next_cursor']}"), 400, "invalid_cursor")


def test_a_cursor_of_the_message_list_is_refused_here(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    key = acme(aws, capsys)
    for _ in range(2):
        post(api, key, {"to": PERSON, "from": OUR_NUMBER, "text": "hi"})
    cursor = as_json(api.http.get("/v1/messages?limit=1", headers={"X-API-Key": key}))[
        "next_cursor"]
    assert cursor
    assert_error(listed(api, key, f"?cursor={cursor}"), 400, "invalid_cursor", "cursor")


@pytest.mark.parametrize(("query", "status", "code", "field"), [
    ("?status=QUEUED", 400, "validation_error", "status"),
    ("?limit=0", 400, "validation_error", "limit"),
    ("?limit=201", 400, "validation_error", "limit"),
    ("?since=yesterday", 400, "validation_error", "since"),
    ("?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z", 422, "unprocessable", "since"),
    ("?cursor=made-up", 400, "invalid_cursor", "cursor"),
])
def test_bad_list_parameters_are_refused(api: Any, aws: Container, query: str, status: int,
                                         code: str, field: str) -> None:
    assert_error(listed(api, make_client(aws), query), status, code, field)


def test_the_list_needs_an_api_key(api: Any, aws: Container) -> None:
    assert_error(api.http.get("/v1/inbound"), 401, "unauthorized")


def test_a_time_window_selects_by_arrival(
        api: Any, aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    key = acme(aws, capsys)
    inbound(api, params("now"))
    assert as_json(listed(api, key, "?until=2000-01-01T00:00:00Z"))["inbound"] == []
    assert len(as_json(listed(api, key, "?since=2000-01-01T00:00:00Z"))["inbound"]) == 1
