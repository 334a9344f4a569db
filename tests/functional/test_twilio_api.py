"""The local Twilio API (tests/support/twilio_api.py) answers as Twilio documents.

The official ``twilio`` client parses its answers; raw requests check the error codes,
the scripted failures and the credentials; a receiver checks every status callback's
``X-Twilio-Signature`` with the official ``RequestValidator``.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.support.twilio_api import (
    LocalTwilioHttpClient,
    StatusCallbackReceiver,
    TwilioApi,
    count_segments,
)

pytestmark = pytest.mark.functional

ACCOUNT, TOKEN = "AC" + "a" * 32, "auth-token-a"
OTHER, OTHER_TOKEN = "AC" + "b" * 32, "auth-token-b"
KEY, KEY_SECRET = "SK" + "c" * 32, "key-secret-c"
SERVICE = "MG" + "d" * 32
SENDER, RECIPIENT = "+15557122661", "+15558675310"


@pytest.fixture
def api() -> Iterator[TwilioApi]:
    with TwilioApi({ACCOUNT: TOKEN, OTHER: OTHER_TOKEN}, api_keys={KEY: (KEY_SECRET, ACCOUNT)},
                   callback_delay_s=0.01) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[StatusCallbackReceiver]:
    r = StatusCallbackReceiver(TOKEN)
    yield r
    r.close()


def official_client(api: TwilioApi, user: str = ACCOUNT, password: str = TOKEN) -> Client:
    account = ACCOUNT if user.startswith("SK") else None
    return Client(user, password, account_sid=account, http_client=LocalTwilioHttpClient(api.base_url))


def create(api: TwilioApi, form: dict[str, Any], user: str = ACCOUNT, password: str = TOKEN,
           account: str = ACCOUNT, timeout: float = 5) -> tuple[int, dict[str, Any], Any]:
    """POST Messages.json with urllib; (status, JSON body, headers)."""
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{api.base_url}/2010-04-01/Accounts/{account}/Messages.json",
        data=urllib.parse.urlencode(form, doseq=True).encode(), method="POST",
        headers={"Authorization": f"Basic {credentials}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read()), refused.headers


def sms(**changes: Any) -> dict[str, Any]:
    form = {"To": RECIPIENT, "From": SENDER, "Body": "Hi there"}
    form.update(changes)
    return {name: value for name, value in form.items() if value is not None}


def assert_twilio_error(answer: tuple[int, dict[str, Any], Any], status: int, code: int) -> None:
    got_status, body, _ = answer
    assert got_status == status, body
    assert body == {"code": code, "message": body["message"], "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    assert body["message"]


# -- the official client ------------------------------------------------------------


def test_the_official_client_creates_and_fetches_a_message(api: TwilioApi) -> None:
    client = official_client(api)

    message = client.messages.create(to=RECIPIENT, from_=SENDER, body="Hi there")

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.direction, message.api_version) == ("queued", "outbound-api",
                                                                        "2010-04-01")
    assert (message.to, message.from_, message.body) == (RECIPIENT, SENDER, "Hi there")
    assert (message.num_segments, message.num_media, message.price, message.price_unit) == (
        "1", "0", None, "USD")
    assert message.error_code is None and message.messaging_service_sid is None
    assert isinstance(message.date_created, datetime) and message.date_created.tzinfo is not None
    assert message.uri == f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message.sid}.json"
    assert message.subresource_uris == {
        "media": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{message.sid}/Media.json"}
    fetched = client.messages(message.sid).fetch()
    assert (fetched.sid, fetched.status, fetched.body) == (message.sid, "queued", "Hi there")
    sent = api.requests[0]
    assert (sent.method, sent.user, sent.param("To"), sent.param("From")) == (
        "POST", ACCOUNT, RECIPIENT, SENDER)


def test_the_official_client_authenticates_with_an_api_key(api: TwilioApi) -> None:
    message = official_client(api, KEY, KEY_SECRET).messages.create(
        to=RECIPIENT, from_=SENDER, body="by key")

    assert message.account_sid == ACCOUNT
    assert api.requests[0].user == KEY


def test_the_official_client_raises_twilios_error_codes(api: TwilioApi) -> None:
    client = official_client(api)
    with pytest.raises(TwilioRestException) as invalid:
        client.messages.create(to="12345", from_=SENDER, body="x")
    assert (invalid.value.status, invalid.value.code) == (400, 21211)
    assert "12345" in invalid.value.msg

    api.fail_next(status=500, code=20500)
    with pytest.raises(TwilioRestException) as server_error:
        client.messages.create(to=RECIPIENT, from_=SENDER, body="x")
    assert (server_error.value.status, server_error.value.code) == (500, 20500)

    with pytest.raises(TwilioRestException) as missing:
        client.messages("SM" + "0" * 32).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)


# -- credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(("user", "password", "account"), [
    (ACCOUNT, "wrong-token", ACCOUNT),
    ("AC" + "f" * 32, TOKEN, ACCOUNT),  # an unknown account
    (OTHER, OTHER_TOKEN, ACCOUNT),  # good credentials, another account's path
    (KEY, "wrong-secret", ACCOUNT),
    (KEY, KEY_SECRET, OTHER),  # the key belongs to ACCOUNT
])
def test_wrong_credentials_are_refused_with_20003(api: TwilioApi, user: str, password: str,
                                                   account: str) -> None:
    assert_twilio_error(create(api, sms(), user, password, account), 401, 20003)
    assert api.requests[0].user == user


def test_a_request_without_credentials_is_refused_with_20003(api: TwilioApi) -> None:
    request = urllib.request.Request(f"{api.base_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                                     data=urllib.parse.urlencode(sms()).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert json.loads(refused.value.read())["code"] == 20003


def test_credentials_are_read_whatever_the_header_case(api: TwilioApi) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(api.base_url.rsplit(":", 1)[1]), timeout=5)
    credentials = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    connection.request("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
                       body=urllib.parse.urlencode(sms()),
                       headers={"authorization": f"Basic {credentials}",
                                "content-type": "application/x-www-form-urlencoded"})
    assert connection.getresponse().status == 201
    connection.close()


def test_an_api_key_creates_for_its_account(api: TwilioApi) -> None:
    status, body, _ = create(api, sms(), KEY, KEY_SECRET)
    assert status == 201 and body["account_sid"] == ACCOUNT


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(("form", "code"), [
    (sms(To=None), 21604),
    (sms(To="5551234567"), 21211),  # not E.164
    (sms(To="+0123"), 21211),
    (sms(From=None), 21603),
    (sms(Body=None), 21602),
    (sms(Body=""), 21602),
    (sms(Body="x" * 1601), 21617),
    (sms(StatusCallback="not a url"), 21609),
])
def test_an_invalid_create_is_refused_with_the_documented_code(api: TwilioApi, form: dict[str, Any],
                                                                code: int) -> None:
    assert_twilio_error(create(api, form), 400, code)


def test_a_body_of_1600_characters_is_accepted(api: TwilioApi) -> None:
    status, body, _ = create(api, sms(Body="x" * 1600))
    assert (status, body["num_segments"]) == (201, "11")


def test_media_without_a_body_makes_an_mms(api: TwilioApi) -> None:
    status, body, _ = create(api, sms(Body=None, MediaUrl=["https://example.com/a.png",
                                                           "https://example.com/b.png"]))
    assert status == 201
    assert body["sid"].startswith("MM") and body["num_media"] == "2"


def test_a_from_the_account_does_not_own_is_refused_with_21606() -> None:
    with TwilioApi({ACCOUNT: TOKEN}, numbers={ACCOUNT: [SENDER]}) as api:
        assert_twilio_error(create(api, sms(From="+15550000000")), 400, 21606)
        assert create(api, sms())[0] == 201


def test_a_messaging_service_message_starts_accepted_with_no_sender_yet(api: TwilioApi) -> None:
    status, body, _ = create(api, sms(From=None, MessagingServiceSid=SERVICE))
    assert status == 201
    assert (body["status"], body["messaging_service_sid"], body["from"], body["num_segments"]) == (
        "accepted", SERVICE, None, "0")


@pytest.mark.parametrize(("body", "segments"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("{" * 80, 1), ("{" * 81, 2),  # extension characters take two septets
    ("ж" * 70, 1), ("ж" * 71, 2), ("😀" * 35, 1), ("😀" * 36, 2),  # UCS-2 counts UTF-16 units
])
def test_segments_are_counted_as_gsm_7_or_ucs_2(body: str, segments: int) -> None:
    assert count_segments(body) == segments


# -- scripted failures ----------------------------------------------------------------


def test_a_scripted_429_answers_with_retry_after_then_the_next_create_succeeds(api: TwilioApi) -> None:
    api.fail_next(status=429, code=20429, retry_after=2)

    answer = create(api, sms())

    assert_twilio_error(answer, 429, 20429)
    assert answer[2]["Retry-After"] == "2"
    status, body, headers = create(api, sms())
    assert status == 201 and "Retry-After" not in headers
    assert [m["sid"] for m in api.messages] == [body["sid"]]  # the 429 created nothing


def test_scripted_failures_last_for_their_count_and_create_nothing(api: TwilioApi) -> None:
    api.fail_next(status=503, code=20503, times=2)
    api.fail_next(status=400, code=21211, message="The 'To' number +1 is not a valid phone number.")

    answers = [create(api, sms()) for _ in range(4)]

    assert [a[0] for a in answers] == [503, 503, 400, 201]
    assert [a[1].get("code") for a in answers[:3]] == [20503, 20503, 21211]
    assert answers[2][1]["message"] == "The 'To' number +1 is not a valid phone number."
    assert len(api.messages) == 1


def test_a_hung_create_times_the_client_out_but_still_creates_the_message(api: TwilioApi) -> None:
    api.hang_next(0.6)

    with pytest.raises((TimeoutError, urllib.error.URLError)):
        create(api, sms(), timeout=0.2)

    status, second, _ = create(api, sms(Body="second"))  # not held up by the hung one
    assert status == 201 and [m["body"] for m in api.messages] == ["second"]
    deadline = time.monotonic() + 5
    while len(api.messages) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(m["body"] for m in api.messages) == ["Hi there", "second"]


def test_requests_from_many_threads_are_all_recorded(api: TwilioApi) -> None:
    sids: list[str] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        status, body, _ = create(api, sms(Body=f"n{i}"))
        assert status == 201
        with lock:
            sids.append(body["sid"])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(sids)) == 20
    assert sorted(r.param("Body") or "" for r in api.requests) == sorted(f"n{i}" for i in range(20))


# -- status callbacks -----------------------------------------------------------------

DOCUMENTED = {"MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "AccountSid", "From", "To",
              "ApiVersion"}


def test_callbacks_carry_sent_then_delivered_signed_with_the_auth_token(
        api: TwilioApi, receiver: StatusCallbackReceiver) -> None:
    message = official_client(api).messages.create(to=RECIPIENT, from_=SENDER, body="Hi",
                                                   status_callback=receiver.url)

    sent, delivered = receiver.wait_for(2)

    assert [sent["MessageStatus"], delivered["MessageStatus"]] == ["sent", "delivered"]
    for params in (sent, delivered):
        assert params.keys() >= DOCUMENTED and "ErrorCode" not in params
        assert (params["MessageSid"], params["SmsSid"], params["AccountSid"]) == (
            message.sid, message.sid, ACCOUNT)
        assert (params["From"], params["To"], params["ApiVersion"]) == (SENDER, RECIPIENT, "2010-04-01")
        assert params["SmsStatus"] == params["MessageStatus"]
    assert "RawDlrDoneDate" not in sent and len(delivered["RawDlrDoneDate"]) == 10
    assert receiver.rejected == []
    assert [c.status for c in api.wait_for_callbacks(2)] == [200, 200]
    fetched = official_client(api).messages(message.sid).fetch()
    assert fetched.status == "delivered" and fetched.date_sent is not None


def test_an_api_key_message_is_still_signed_with_the_accounts_auth_token(
        api: TwilioApi, receiver: StatusCallbackReceiver) -> None:
    create(api, sms(StatusCallback=receiver.url), KEY, KEY_SECRET)
    assert len(receiver.wait_for(2)) == 2 and receiver.rejected == []


def test_outcomes_are_scripted_per_destination(api: TwilioApi, receiver: StatusCallbackReceiver) -> None:
    handset_off, refused, no_receipt = "+15550000001", "+15550000002", "+15550000003"
    api.outcome = {handset_off: "undelivered", refused: ("failed", 30007), no_receipt: "sent"}

    sids = {to: create(api, sms(To=to, StatusCallback=receiver.url))[1]["sid"]
            for to in (handset_off, refused, no_receipt, RECIPIENT)}

    events = receiver.wait_for(6)
    by_to: dict[str, list[tuple[str, str | None]]] = {}
    for e in events:
        by_to.setdefault(e["To"], []).append((e["MessageStatus"], e.get("ErrorCode")))
    assert by_to == {handset_off: [("sent", None), ("undelivered", "30003")],
                     refused: [("failed", "30007")],
                     no_receipt: [("sent", None)],
                     RECIPIENT: [("sent", None), ("delivered", None)]}
    undelivered = api.message(sids[handset_off])
    assert (undelivered["status"], undelivered["error_code"], undelivered["error_message"]) == (
        "undelivered", 30003, "Unreachable destination handset")


def test_a_messaging_service_callback_names_the_service_and_the_sender_chosen(
        api: TwilioApi, receiver: StatusCallbackReceiver) -> None:
    create(api, sms(From=None, MessagingServiceSid=SERVICE, StatusCallback=receiver.url))

    sent, _ = receiver.wait_for(2)

    assert (sent["MessagingServiceSid"], sent["From"]) == (SERVICE, api.service_sender)


def test_parameters_twilio_adds_without_notice_still_validate(
        api: TwilioApi, receiver: StatusCallbackReceiver) -> None:
    api.extra_callback_params = {"ChannelPrefix": "sms", "NewThing": "a b&c=d"}
    create(api, sms(StatusCallback=receiver.url))
    events = receiver.wait_for(2)
    assert events[0]["NewThing"] == "a b&c=d" and receiver.rejected == []


def test_post_status_sends_one_callback_and_a_wrong_signature_is_refused(
        api: TwilioApi, receiver: StatusCallbackReceiver) -> None:
    api.outcome = "sent"
    sid = create(api, sms(StatusCallback=receiver.url))[1]["sid"]
    receiver.wait_for(1)
    api.wait_for_callbacks(1)  # recorded by its thread after the receiver answered

    assert api.post_status(sid, "undelivered", error_code=30005, signature="d3Jvbmc=") == 403
    assert receiver.rejected[0]["ErrorCode"] == "30005"
    assert api.post_status(sid, "delivered") == 200
    assert receiver.wait_for(2)[1]["MessageStatus"] == "delivered"
    receiver.fail_next = 1
    assert api.post_status(sid, "delivered") == 500
    assert [c.status for c in api.callbacks] == [200, 403, 200, 500]


def test_a_callback_to_a_closed_port_is_recorded_without_an_answer(api: TwilioApi) -> None:
    closed = StatusCallbackReceiver(TOKEN)
    url = closed.url
    closed.close()

    create(api, sms(StatusCallback=url))

    attempt = api.wait_for_callbacks(1)[0]
    assert attempt.status is None and attempt.error
