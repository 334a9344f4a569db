"""The Twilio path end to end: a local stack with ``PROVIDER=twilio`` sends to a local
server that answers as Twilio's API is documented, which posts signed status callbacks
back to the stack's ``/v1/dlr/twilio``."""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway
from tests.support.receiver import Receiver
from tests.support.stacks import FAST_TIMERS, running_stack
from tests.support.twilio_api import TwilioApi

pytestmark = pytest.mark.e2e

SID, TOKEN, FROM = "AC" + "7" * 32, "e2e-twilio-auth-token", "+15005550006"
BODY = {"to": "+14155550100", "from": "TEST", "text": "Hello SMS Gateway!"}


@pytest.fixture(scope="module")
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi({SID: TOKEN}, callback_delay_s=0.05) as api:
        yield api


@pytest.fixture(scope="module")
def gateway(twilio_api: TwilioApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    from localstack.stack import free_port

    api_port = free_port()
    env = {**FAST_TIMERS, "PROVIDER": "twilio", "TWILIO_API_BASE": twilio_api.base_url,
           "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM": FROM,
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{api_port}"}
    with running_stack(Path(tmp_path_factory.mktemp("twilio-stack")), env,
                       api_port=api_port) as stack:
        yield Gateway(stack.api_url, stack.endpoint, env)


def creates_for(api: TwilioApi, message_id: str) -> list[Any]:
    """The creates Twilio received for ``message_id`` (its StatusCallback names it)."""
    return [r for r in api.requests if r.method == "POST"
            and (r.param("StatusCallback") or "").endswith(f"ref={message_id}")]


def sid_of(gateway: Gateway, key: str, message_id: str, timeout_s: float = 20) -> str:
    """The Twilio sid of a message, once the gateway has it (SENT)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sid = gateway.request("GET", f"/v1/messages/{message_id}", key).body["provider_message_id"]
        if sid:
            return str(sid)
        time.sleep(0.1)
    raise AssertionError(f"{message_id} was not handed to Twilio in {timeout_s} s")


def test_a_send_goes_to_twilio_and_its_signed_delivered_callback_captures(
        gateway: Gateway, twilio_api: TwilioApi) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    answer = gateway.request("POST", "/v1/messages", key, BODY)
    assert answer.status == 202, answer.body
    message_id = answer.body["message_id"]

    final = gateway.wait_final(key, message_id)

    assert final["status"] == "DELIVERED", final
    assert final["provider"] == "twilio" and final["provider_message_id"].startswith("SM")
    # "sent" may be handled after "delivered" (it can overtake the SENT write and come
    # back later); once the message is final it changes nothing.
    assert [e["status"] for e in final["provider_events"]] in (["sent"], [])
    [create] = creates_for(twilio_api, message_id)
    assert create.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert create.header("Authorization") == "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()).decode()
    assert {k: v[0] for k, v in create.form.items()} == {
        "To": BODY["to"], "From": FROM, "Body": BODY["text"],
        "StatusCallback": f"{gateway.url}/v1/dlr/twilio?ref={message_id}"}
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.held, balance.spent) == (995, 0, 5)


def test_a_callback_with_a_wrong_signature_is_refused_and_changes_nothing(
        gateway: Gateway, twilio_api: TwilioApi) -> None:
    twilio_api.outcome = "sent"  # the carrier gives no receipt: it stays SENT
    try:
        client_id, key = gateway.new_client(credit_cents=1000)
        message_id = gateway.request("POST", "/v1/messages", key, BODY).body["message_id"]
        sid = sid_of(gateway, key, message_id)
        assert twilio_api.post_status(sid, "undelivered", 30003, signature="forged") == 403
        time.sleep(1.5)
        assert gateway.request("GET", f"/v1/messages/{message_id}", key).body["status"] == "SENT"
        assert twilio_api.post_status(sid, "delivered") == 202
        assert gateway.wait_final(key, message_id)["status"] == "DELIVERED"
        assert gateway.wait_settled(client_id).spent == 5
    finally:
        twilio_api.outcome = "delivered"


def test_a_late_or_repeated_callback_changes_nothing(gateway: Gateway,
                                                     twilio_api: TwilioApi) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    message_id = gateway.request("POST", "/v1/messages", key, BODY).body["message_id"]
    delivered = gateway.wait_final(key, message_id)
    assert delivered["status"] == "DELIVERED"
    sid = sid_of(gateway, key, message_id)

    assert twilio_api.post_status(sid, "sent") == 202
    assert twilio_api.post_status(sid, "delivered") == 202
    assert twilio_api.post_status(sid, "undelivered", 30003) == 202
    time.sleep(2)

    final = gateway.request("GET", f"/v1/messages/{message_id}", key).body
    assert final["status"] == "DELIVERED" and final["error"] is None
    assert final["provider_events"] == delivered["provider_events"]
    assert gateway.wait_settled(client_id).spent == 5


def test_a_429_is_a_temporary_failure_and_a_later_attempt_sends(
        gateway: Gateway, twilio_api: TwilioApi) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    twilio_api.fail_next(status=429, code=20429)
    message_id = gateway.request("POST", "/v1/messages", key, BODY).body["message_id"]

    seen = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = gateway.request("GET", f"/v1/messages/{message_id}", key).body["status"]
        seen.add(status)
        if status == "DELIVERED":
            break
        time.sleep(0.05)

    final = gateway.request("GET", f"/v1/messages/{message_id}", key).body
    assert final["status"] == "DELIVERED" and final["attempts"] == 2, final
    assert "FAILED_TEMP" in seen or gateway.message(message_id).attempts == 2
    assert len(creates_for(twilio_api, message_id)) == 2  # the refused one and the one that sent
    assert gateway.wait_settled(client_id).spent == 5


def test_an_invalid_number_is_refused_by_twilio_for_good_and_released(
        gateway: Gateway, twilio_api: TwilioApi) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    twilio_api.fail_next(status=400, code=21211)
    message_id = gateway.request("POST", "/v1/messages", key, BODY).body["message_id"]

    final = gateway.wait_final(key, message_id)

    assert final["status"] == "FAILED_PERM" and final["error"]["code"] == "21211", final
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.spent) == (1000, 0)


def test_a_post_that_is_not_from_twilio_is_refused(gateway: Gateway) -> None:
    data = urllib.parse.urlencode({"AccountSid": SID, "MessageSid": "SM1",
                                   "MessageStatus": "delivered"}).encode()
    request = urllib.request.Request(f"{gateway.url}/v1/dlr/twilio?ref=x", data=data,
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


# -- two-way: inbound messages and opt-outs through Twilio's webhook ---------------------

OURS, PERSON = "+14155550000", "+14155550111"


def two_way_client(gateway: Gateway, number: str, receiver: Receiver) -> tuple[str, str]:
    """A client owning ``number`` as a sender ID (its inbound messages are its), with its
    callback and inbound URLs at ``receiver``, which verifies with its webhook secret."""
    client_id, key = gateway.new_client(credit_cents=1000)
    container = gateway.container()
    container.sender_claims.claim(client_id, [number])
    container.accounts.configure(client_id, allowed_senders={number}, callback_url=receiver.url,
                                 inbound_url=receiver.url)
    receiver.secret = container.webhook_secrets.current(client_id).secret
    return client_id, key


def events_of(receiver: Receiver, kind: str, count: int = 1,
              timeout_s: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [e for e in receiver.events if e.get("type") == kind]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{kind}: {receiver.events}")


def test_a_signed_stop_opts_the_person_out_and_a_signed_start_back_in(
        gateway: Gateway, twilio_api: TwilioApi) -> None:
    receiver = Receiver()
    webhook = f"{gateway.url}/v1/inbound/twilio"
    client_id, key = two_way_client(gateway, OURS, receiver)
    container = gateway.container()
    try:
        # GIVEN a client with sender +14155550000 that sent to +14155550111
        body = {"to": PERSON, "from": OURS, "text": "Your code is 1234"}
        first = gateway.request("POST", "/v1/messages", key, body)
        assert first.status == 202, first.body
        assert gateway.wait_final(key, first.body["message_id"])["status"] == "DELIVERED"
        before = gateway.wait_settled(client_id)

        # WHEN Twilio posts an unsigned (forged) STOP from that person: 403, nothing changes
        status, _ = twilio_api.post_inbound(webhook, PERSON, OURS, "STOP", signature="forged")
        assert status == 403
        assert gateway.request("GET", "/v1/inbound", key).body["inbound"] == []
        assert not container.opt_outs.is_opted_out(client_id, PERSON)

        # WHEN it posts a signed STOP
        status, twiml = twilio_api.post_inbound(webhook, PERSON, OURS, " stop ")
        # THEN Twilio is told to reply nothing itself (the gateway sends the confirmation)
        assert status == 200 and "<Response" in twiml and "<Message" not in twiml

        # AND the next send there is refused, with nothing held or spent
        refused = gateway.request("POST", "/v1/messages", key, body)
        assert refused.status == 422 and refused.body["error"]["code"] == "recipient_opted_out", refused.body
        after = gateway.wait_settled(client_id)
        assert (after.available, after.held, after.spent) == (
            before.available, before.held, before.spent)

        # AND GET /v1/inbound lists the STOP, linked to the message it answers
        [stop] = gateway.request("GET", "/v1/inbound", key).body["inbound"]
        assert (stop["from"], stop["to"], stop["keyword"], stop["provider"]) == (
            PERSON, OURS, "OPT_OUT", "twilio")
        assert stop["message_id"] == first.body["message_id"] and stop["reply_id"]

        # AND one confirmation went to the person from the number written to, unbilled
        reply = gateway.wait_final(key, stop["reply_id"])
        assert reply["status"] == "DELIVERED" and reply["from"] == OURS, reply
        confirmations = [m for m in twilio_api.messages
                         if m["to"] == PERSON and m["body"] != body["text"]]
        assert len(confirmations) == 1 and confirmations[0]["from"] == OURS, confirmations
        assert "unsubscribed" in confirmations[0]["body"]
        assert gateway.wait_settled(client_id).spent == before.spent

        # AND the client heard of both: the inbound message and the opt-out
        [inbound] = events_of(receiver, "message.inbound")
        assert inbound["from"] == PERSON and inbound["text"] == " stop "
        [opted] = events_of(receiver, "recipient.opted_out")
        assert opted["number"] == PERSON and opted["source"] == "keyword"

        # WHEN a signed START arrives, a send there is accepted again
        status, _ = twilio_api.post_inbound(webhook, PERSON, OURS, "START")
        assert status == 200
        again = gateway.request("POST", "/v1/messages", key, body)
        assert again.status == 202, again.body
        assert gateway.wait_final(key, again.body["message_id"])["status"] == "DELIVERED"
        events_of(receiver, "recipient.opted_in")
    finally:
        container.sender_claims.release(client_id, [OURS])
        receiver.close()


def test_a_message_queued_before_the_stop_is_not_sent_after_it(
        gateway: Gateway, twilio_api: TwilioApi) -> None:
    ours, person = "+14155550001", "+14155550112"
    receiver = Receiver()
    client_id, key = two_way_client(gateway, ours, receiver)
    container = gateway.container()
    try:
        # GIVEN a message accepted (and held) to go out in a few seconds
        send_at = datetime.now(UTC) + timedelta(seconds=4)
        queued = gateway.request("POST", "/v1/messages", key, {
            "to": person, "from": ours, "text": "Your order shipped",
            "send_at": send_at.isoformat(timespec="seconds").replace("+00:00", "Z")})
        assert queued.status == 202, queued.body
        assert container.accounts.balance(client_id).held > 0
        # WHEN the person's STOP arrives first
        status, _ = twilio_api.post_inbound(f"{gateway.url}/v1/inbound/twilio", person, ours,
                                            "STOP")
        assert status == 200
        # THEN the message is not sent: it ends FAILED_PERM, its hold released
        final = gateway.wait_final(key, queued.body["message_id"])
        assert (final["status"], final["error"]["code"]) == ("FAILED_PERM", "RECIPIENT_OPTED_OUT")
        balance = gateway.wait_settled(client_id)
        assert (balance.available, balance.held, balance.spent) == (1000, 0, 0)
        # AND all the person got is the confirmation of the STOP
        [stop] = gateway.request("GET", f"/v1/inbound?from=%2B{person[1:]}", key).body["inbound"]
        assert gateway.wait_final(key, stop["reply_id"])["status"] == "DELIVERED"
        assert ["unsubscribed" in m["body"] for m in twilio_api.messages
                if m["to"] == person] == [True]
    finally:
        container.sender_claims.release(client_id, [ours])
        receiver.close()
