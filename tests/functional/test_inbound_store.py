"""The inbound side's DynamoDB adapters against moto: inbound messages stored once and
listed per client, sender claims (and ``make client SENDER_IDS=``), conversations from
the recipient index, and the inbound service over all of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import cli
from chalicelib.adapters.inbound import DynamoConversations
from chalicelib.adapters.models import SENDER_CLAIM_PREFIX
from chalicelib.container import Container
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.inbound import (
    InboundMessage,
    InboundSms,
    Keyword,
    OptOut,
    inbound_id_for,
    reply_id_for,
)
from chalicelib.domain.message import Message
from chalicelib.domain.status import HoldState, Status
from tests.support.queues import receive

pytestmark = pytest.mark.functional

PERSON, OUR_NUMBER, OTHER_NUMBER = "+14155550111", "+14155550000", "+14155550999"
T0 = 1_800_000_000.0


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the admin CLI in-process (against moto); its exit code, stdout and stderr."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def inbound(sid: str, client_id: str | None, at: float, **fields: Any) -> InboundMessage:
    values: dict[str, Any] = {
        "inbound_id": inbound_id_for("twilio", sid), "provider": "twilio",
        "provider_message_id": sid, "client_id": client_id, "from_number": PERSON,
        "to_number": OUR_NUMBER, "text": f"text of {sid}", "received_at": at, **fields}
    return InboundMessage(**values)


def outbound(message_id: str, client_id: str, sender: str, at: float,
             sender_owned: bool = True, to: str = PERSON) -> Message:
    return Message(message_id=message_id, client_id=client_id, to=to, sender=sender,
                   text="hello", encoding="GSM7", parts=1, cost_cents=5, status=Status.SENT,
                   hold_state=HoldState.HELD, created_at=at, updated_at=at,
                   sender_owned=sender_owned)


# -- inbound messages -------------------------------------------------------------------
def test_an_inbound_message_is_stored_once_and_read_back_whole(aws: Container) -> None:
    store = aws.inbound_store
    message = inbound("SM1", "acme", T0, keyword=Keyword.OPT_OUT, message_id="m-1",
                      reply_id="r-1", text="STOP")

    assert store.put_new(message) is True
    assert store.put_new(inbound("SM1", "other", T0 + 1)) is False  # a duplicate
    assert store.get(message.inbound_id) == message
    store.mark_done(message.inbound_id, "r-1")
    assert store.get(message.inbound_id) == InboundMessage(**{**message.__dict__, "done": True})
    assert store.get(inbound_id_for("twilio", "SM-none")) is None


def test_a_clients_inbound_messages_are_listed_newest_first_in_pages(aws: Container) -> None:
    store = aws.inbound_store
    mine = [inbound(f"SM{i}", "acme", T0 + i) for i in range(5)]
    for message in [*mine, inbound("SMx", "other", T0 + 2.5), inbound("SMy", None, T0 + 3.5)]:
        store.put_new(message)

    first, position = store.page_for_client("acme", None, None, None, 2, lambda m: True)
    rest, end = store.page_for_client("acme", None, None, position, 10, lambda m: True)

    assert [m.provider_message_id for m in first] == ["SM4", "SM3"]
    assert position == (T0 + 3, mine[3].inbound_id)
    assert [m.provider_message_id for m in rest] == ["SM2", "SM1", "SM0"] and end is None
    window, _ = store.page_for_client("acme", T0 + 1, T0 + 3, None, 10,
                                      lambda m: m.provider_message_id != "SM2")
    assert [m.provider_message_id for m in window] == ["SM3", "SM1"]
    # Another client's and no client's (the index is sparse) are not in it.
    assert store.page_for_client("other", None, None, None, 10, lambda m: True)[0] == [
        inbound("SMx", "other", T0 + 2.5)]


# -- sender claims -------------------------------------------------------------------
def test_make_client_claims_its_phone_number_sender_ids_and_only_those(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = admin(capsys, "client", "--name", "acme", "--credits", "1",
                         "--sender-ids", f"{OUR_NUMBER},ACME,12345")

    assert code == 0, err
    claims = aws.sender_claims
    assert claims.owner_of(OUR_NUMBER) == "acme"
    assert claims.owner_of("ACME") is None and claims.owner_of("12345") is None
    # A claim is no client: the client list and the audit do not see it.
    assert [c.client_id for c, _ in aws.accounts.scan_all()] == ["acme"]
    assert "sender#" not in admin(capsys, "clients")[1]


def test_a_number_another_client_owns_is_refused_and_nothing_changes(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    admin(capsys, "client", "--name", "acme", "--sender-ids", OUR_NUMBER)
    admin(capsys, "client", "--name", "other", "--sender-ids", "OTHER")

    code, out, err = admin(capsys, "client", "--name", "other",
                           "--sender-ids", f"{OTHER_NUMBER},{OUR_NUMBER}")
    new_code, _, new_err = admin(capsys, "client", "--name", "newcomer", "--credits", "5",
                                 "--sender-ids", OUR_NUMBER)

    assert code == 2 and f"sender ID {OUR_NUMBER} belongs to client acme" in err
    assert "updated" not in out
    assert aws.accounts.client("other").allowed_senders == {"OTHER"}
    assert aws.sender_claims.owner_of(OTHER_NUMBER) is None  # taken back
    assert aws.sender_claims.owner_of(OUR_NUMBER) == "acme"
    assert new_code == 2 and "belongs to client acme" in new_err
    with pytest.raises(NotFoundError):
        aws.accounts.client("newcomer")


def test_a_number_taken_away_is_released_for_another_client(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    admin(capsys, "client", "--name", "acme", "--sender-ids", f"{OUR_NUMBER},{OTHER_NUMBER}")
    assert admin(capsys, "client", "--name", "acme", "--sender-ids", OTHER_NUMBER)[0] == 0

    assert aws.sender_claims.owner_of(OUR_NUMBER) is None
    assert aws.sender_claims.owner_of(OTHER_NUMBER) == "acme"
    assert admin(capsys, "client", "--name", "other", "--sender-ids", OUR_NUMBER)[0] == 0
    assert aws.sender_claims.owner_of(OUR_NUMBER) == "other"


def test_a_refused_api_key_takes_the_new_claims_back(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    admin(capsys, "client", "--name", "acme", "--api-key", "acme-key")

    code, _, err = admin(capsys, "client", "--name", "thief", "--api-key", "acme-key",
                         "--sender-ids", OUR_NUMBER)

    assert code == 2 and "belongs to another client" in err
    assert aws.sender_claims.owner_of(OUR_NUMBER) is None


def test_a_sender_id_that_looks_like_a_number_but_is_not_is_refused(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = admin(capsys, "client", "--name", "acme", "--sender-ids", "+1 415 555")
    assert code == 2 and "not an E.164 number" in err
    with pytest.raises(NotFoundError):
        aws.accounts.client("acme")


def test_rival_claims_one_wins(aws: Container) -> None:
    claims = aws.sender_claims
    assert claims.claim("acme", [OUR_NUMBER, OTHER_NUMBER]) == [OUR_NUMBER, OTHER_NUMBER]
    assert claims.claim("acme", [OUR_NUMBER]) == []  # its own already
    with pytest.raises(ConflictError) as refused:
        claims.claim("other", ["+14155550555", OUR_NUMBER])
    assert refused.value.field == "sender_ids"
    assert claims.owner_of("+14155550555") is None
    claims.release("other", [OUR_NUMBER])  # not its claim: stays
    assert claims.owner_of(OUR_NUMBER) == "acme"
    item = aws.tables.clients.get(SENDER_CLAIM_PREFIX + OUR_NUMBER)
    assert item.client_id == SENDER_CLAIM_PREFIX + OUR_NUMBER


# -- conversations -------------------------------------------------------------------
def test_the_last_outbound_message_is_the_newest_from_that_number(aws: Container) -> None:
    for message in (outbound("m-old", "acme", OUR_NUMBER, T0),
                    outbound("m-new", "acme", OUR_NUMBER, T0 + 10),
                    outbound("m-other-client", "other", OUR_NUMBER, T0 + 20),
                    outbound("m-other-number", "acme", OTHER_NUMBER, T0 + 30),
                    outbound("m-other-person", "acme", OUR_NUMBER, T0 + 40, to="+14155550222")):
        aws.messages.put_new(message)
    conversations = aws.conversations

    newest = conversations.last_outbound(PERSON, OUR_NUMBER)
    of_acme = conversations.last_outbound(PERSON, OUR_NUMBER, "acme")

    assert newest is not None and newest.message_id == "m-other-client"
    assert of_acme is not None and (of_acme.message_id, of_acme.text) == ("m-new", "hello")
    assert conversations.last_outbound(PERSON, "+14155550333") is None
    assert conversations.last_outbound("+14155550444", OUR_NUMBER) is None


def test_a_message_sent_from_a_stage_number_is_in_that_numbers_conversation(
        aws: Container) -> None:
    aws.messages.put_new(outbound("m-alpha", "acme", "ACME", T0, sender_owned=False))
    aws.messages.put_new(outbound("m-owned", "acme", "ACME2", T0 + 1, sender_owned=True))
    stage_number = DynamoConversations(aws.sender_claims, aws.tables.messages, {OUR_NUMBER})

    found = stage_number.last_outbound(PERSON, OUR_NUMBER)

    assert found is not None and found.message_id == "m-alpha"
    assert aws.conversations.last_outbound(PERSON, OUR_NUMBER) is None  # no stage number


# -- the service over DynamoDB ---------------------------------------------------------
def test_a_stop_over_dynamodb_opts_out_confirms_once_and_tells_the_client(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    admin(capsys, "client", "--name", "acme", "--sender-ids", OUR_NUMBER)
    aws.accounts.configure("acme", inbound_url="https://acme.example/inbound",
                           callback_url="https://acme.example/events")
    aws.messages.put_new(outbound("m-1", "acme", OUR_NUMBER, T0 - 60))
    sms = InboundSms("twilio", "SMstop", PERSON, OUR_NUMBER, " Stop ", T0)

    stored = aws.inbound.process(sms, request_id="req-1")
    again = aws.inbound.process(sms)

    assert again == stored and stored.done
    assert (stored.client_id, stored.message_id, stored.keyword) == ("acme", "m-1", Keyword.OPT_OUT)
    assert aws.inbound_store.get(sms.inbound_id) == stored
    assert aws.contacts.opt_out_of("acme", PERSON) == OptOut("acme", PERSON, True, T0, "keyword",
                                                            "STOP")
    reply = aws.messages.get(reply_id_for(sms.inbound_id))
    assert reply is not None and stored.reply_id == reply.message_id
    assert (reply.to, reply.sender, reply.sender_owned, reply.cost_cents, reply.status) == (
        PERSON, OUR_NUMBER, True, 0, Status.QUEUED)
    assert reply.route == "via:twilio"
    balance = aws.accounts.balance("acme")
    assert (balance.held, balance.spent) == (0, 0)
    jobs = [json.loads(r["Body"]) for r in receive(aws, aws.settings.names.send_queue)]
    assert jobs == [{"message_id": reply.message_id, "route": "via:twilio", "country": "US"}]
    events = [json.loads(r["Body"]) for r in receive(aws, aws.settings.names.callbacks_queue)]
    assert sorted((e["url"], e["event"]["type"]) for e in events) == [
        ("https://acme.example/events", "recipient.opted_out"),
        ("https://acme.example/inbound", "message.inbound")]


def test_make_client_sets_the_inbound_url_and_help_text_and_refuses_bad_ones(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = admin(capsys, "client", "--name", "acme", "--credits", "1",
                         "--inbound-url", "https://acme.example/inbound",
                         "--help-text", "Acme: help at acme.example. Reply STOP to stop.")
    assert code == 0, err
    client = aws.accounts.client("acme")
    assert client.inbound_url == "https://acme.example/inbound"
    assert client.help_text == "Acme: help at acme.example. Reply STOP to stop."

    bad_url = admin(capsys, "client", "--name", "acme", "--inbound-url", "ftp://acme.example")
    bad_text = admin(capsys, "client", "--name", "acme", "--help-text", "")
    assert bad_url[0] == 2 and "--inbound-url" in bad_url[2]
    assert bad_text[0] == 2 and "--help-text" in bad_text[2]
    assert aws.accounts.client("acme").inbound_url == "https://acme.example/inbound"
