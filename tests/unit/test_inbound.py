"""Inbound messages on in-memory fakes: attribution, the link to the conversation, keywords,
the confirmation reply and its pinned route, the events, duplicates, and a crash at every
step followed by a re-run (nothing doubled). No emulator, no I/O."""

from __future__ import annotations

import logging
import random
from dataclasses import replace

import pytest

from chalicelib.domain.inbound import (
    EVENT_INBOUND,
    EVENT_OPT_IN,
    EVENT_OPT_OUT,
    InboundMessage,
    Keyword,
    OptOut,
    keyword_of,
    normalized_keyword,
    phone_number_senders,
    reply_id_for,
)
from chalicelib.domain.message import KIND_REPLY
from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.routing import (
    Route,
    default_route,
    pinned_provider,
    pinned_route_name,
    storable_route_problems,
)
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.work import DONE
from chalicelib.observability import scrub
from chalicelib.services.routing import Router, RouteTable
from chalicelib.services.sender import SenderService
from tests.fakes.providers import ScriptedProvider
from tests.fakes.routes import FakeRouteBook
from tests.support.inbound import (
    OUR_NUMBER,
    PERSON,
    T0,
    Crash,
    TwoWay,
    crash_after,
    inbound_sms,
)

pytestmark = pytest.mark.unit
INBOUND_URL, CALLBACK_URL = "https://acme.example/inbound", "https://acme.example/events"


def acme(two: TwoWay, owns: bool = True, **own: object) -> str:
    """A client with both URLs; owner of OUR_NUMBER by sender claim when ``owns``."""
    client = two.world.client(1000, inbound_url=INBOUND_URL, callback_url=CALLBACK_URL, **own)
    if owns:
        two.conversations.owners[OUR_NUMBER] = client.client_id
    return client.client_id


def sent_to_person(two: TwoWay, client_id: str, sender: str = OUR_NUMBER,
                   sender_owned: bool = True, at: float = T0 - 60) -> str:
    """A message the client sent to PERSON earlier (stored as accepted)."""
    two.world.clock.now = at
    client = two.world.accounts.client(client_id)
    body = {"to": PERSON, "from": sender, "text": "Your code is 1234"}
    msg = two.world.accept.accept(client, body).message
    row = two.world.messages.rows[msg.message_id]
    row.message = replace(row.message, sender_owned=sender_owned)
    two.world.clock.now = T0
    return msg.message_id


# -- keywords -----------------------------------------------------------------------
@pytest.mark.parametrize(("text", "keyword"), [
    ("STOP", Keyword.OPT_OUT), (" stop ", Keyword.OPT_OUT), ("Stop.", Keyword.OPT_OUT),
    ("sToP!", Keyword.OPT_OUT), ("opt out", Keyword.OPT_OUT), ("Un Subscribe", Keyword.OPT_OUT),
    ("stopall", Keyword.OPT_OUT), ("cancel", Keyword.OPT_OUT), ("end", Keyword.OPT_OUT),
    ("quit", Keyword.OPT_OUT), ("revoke", Keyword.OPT_OUT), ("start", Keyword.OPT_IN),
    ("UNSTOP", Keyword.OPT_IN), ("yes", Keyword.OPT_IN), ("help", Keyword.HELP),
    (" Info ", Keyword.HELP), ("please stop texting me", None), ("stopp", None), ("", None),
    ("STOP STOP", None),
])
def test_a_keyword_is_the_whole_message_whatever_its_case_and_spaces(
        text: str, keyword: Keyword | None) -> None:
    assert keyword_of(text) is keyword


def test_the_word_recorded_is_the_normalized_one() -> None:
    assert normalized_keyword(" Opt out. ") == "OPTOUT"


def test_only_e164_sender_ids_are_claimed() -> None:
    numbers, problems = phone_number_senders(["+14155550000", "ACME", "12345", "+1 415"])
    assert numbers == {"+14155550000"}
    assert problems == ["sender ID '+1 415' is not an E.164 number (+ and digits)"]


# -- attribution and the conversation -------------------------------------------------
def test_the_owner_of_the_number_gets_it_before_whoever_wrote_last() -> None:
    two = TwoWay()
    owner, other = acme(two), acme(two, owns=False)
    mine = sent_to_person(two, owner, at=T0 - 300)
    sent_to_person(two, other, at=T0 - 60)  # newer, from the same number, another client

    stored = two.service.process(inbound_sms("Thanks!"))

    assert (stored.client_id, stored.message_id) == (owner, mine)


def test_without_an_owner_the_client_that_last_wrote_from_that_number_gets_it() -> None:
    two = TwoWay()
    first, last = acme(two, owns=False), acme(two, owns=False)
    sent_to_person(two, first, at=T0 - 300)
    newest = sent_to_person(two, last, at=T0 - 60)
    sent_to_person(two, first, sender="+14155559999", at=T0 - 10)  # another number

    stored = two.service.process(inbound_sms("Thanks!"))

    assert (stored.client_id, stored.message_id) == (last, newest)


def test_a_message_sent_from_the_stages_own_number_counts_as_from_it() -> None:
    two = TwoWay(default_origins=frozenset({OUR_NUMBER}))
    client_id = acme(two, owns=False)
    linked = sent_to_person(two, client_id, sender="ACME", sender_owned=False)

    stored = two.service.process(inbound_sms("Thanks!"))

    assert (stored.client_id, stored.message_id) == (client_id, linked)


def test_an_owner_that_never_wrote_to_the_person_gets_it_unlinked() -> None:
    two = TwoWay()
    client_id = acme(two)

    stored = two.service.process(inbound_sms("Hello?"))

    assert (stored.client_id, stored.message_id, stored.keyword) == (client_id, None, None)


def test_a_plain_message_is_stored_and_told_to_the_inbound_url_with_no_reply() -> None:
    two = TwoWay()
    client_id = acme(two)
    linked = sent_to_person(two, client_id)

    stored = two.service.process(inbound_sms("See you at 5", sid="SMabc"), request_id="r-1")

    assert stored.done and two.inbound.get(stored.inbound_id) == stored
    assert two.world.send_queue.sent == [{"message_id": linked, "country": "US"}]  # its own
    [job] = two.world.callbacks_queue.sent
    assert (job["client_id"], job["url"]) == (client_id, INBOUND_URL)
    event = job["event"]
    assert (event["type"], event["id"], event["from"], event["to"], event["text"]) == (
        EVENT_INBOUND, stored.inbound_id, PERSON, OUR_NUMBER, "See you at 5")
    assert (event["message_id"], event["keyword"], event["reply_id"]) == (linked, None, None)
    assert two.world.callbacks_queue.attributes == [{"request_id": "r-1"}]
    assert two.world.telemetry.counts["InboundReceived"] == 1


def test_a_client_without_an_inbound_url_gets_no_event_but_it_is_stored() -> None:
    two = TwoWay()
    client = two.world.client()
    two.conversations.owners[OUR_NUMBER] = client.client_id

    stored = two.service.process(inbound_sms("hi"))

    assert stored.done and two.inbound.get(stored.inbound_id) is not None
    assert two.world.callbacks_queue.sent == []


def test_an_unattributed_message_is_stored_counted_and_logged_masked_only(
        caplog: pytest.LogCaptureFixture) -> None:
    two = TwoWay()
    acme(two, owns=False)  # a client that never wrote to the person

    with caplog.at_level(logging.WARNING, logger="chalicelib.services.inbound"):
        stored = two.service.process(inbound_sms("STOP"))

    assert stored.client_id is None and stored.reply_id is None
    assert two.inbound.get(stored.inbound_id) == stored and stored.done
    assert two.world.telemetry.counts["InboundUnattributed"] == 1
    assert two.contacts.opt_outs == {}
    assert two.world.messages.rows == {} and two.world.callbacks_queue.sent == []
    [record] = [r for r in caplog.records if "no client" in r.getMessage()]
    shown = scrub({"from": record.__dict__["from"], "to": record.__dict__["to"]})
    assert shown == {"from": "+*******0111", "to": "+*******0000"}


def test_the_text_is_cut_at_twilios_cap() -> None:
    two = TwoWay()
    acme(two)
    assert len(two.service.process(inbound_sms("x" * 5000)).text) == 1600


# -- keywords' effects --------------------------------------------------------------
def test_stop_opts_out_tells_the_client_and_confirms_for_free_through_the_same_provider() -> None:
    two = TwoWay()
    client_id = acme(two, test_mode=False)
    sent_to_person(two, client_id)
    balance = two.world.accounts.balance(client_id)
    two.world.clock.now = T0 + 2

    stored = two.service.process(inbound_sms(" Stop "), request_id="r-9")

    assert stored.keyword is Keyword.OPT_OUT and stored.reply_id == reply_id_for(stored.inbound_id)
    assert two.contacts.opt_out_of(client_id, PERSON) == OptOut(
        client_id, PERSON, True, T0, "keyword", "STOP")
    reply = two.world.messages.get(stored.reply_id)
    assert reply is not None
    assert (reply.kind, reply.cost_cents, reply.status, reply.hold_state) == (
        KIND_REPLY, 0, Status.QUEUED, HoldState.HELD)
    assert (reply.to, reply.sender, reply.sender_owned, reply.client_id) == (
        PERSON, OUR_NUMBER, True, client_id)
    assert reply.text.startswith("test: You are unsubscribed")
    assert (reply.route, reply.request_id, reply.created_at) == ("via:twilio", "r-9", T0 + 2)
    assert two.world.send_queue.sent[-1] == {"message_id": reply.message_id, "route": "via:twilio",
                                             "country": "US"}
    assert two.world.accounts.balance(client_id) == balance  # nothing held, nothing charged
    events = two.events()
    assert [e["type"] for e in events] == [EVENT_OPT_OUT, EVENT_INBOUND]
    assert [j["url"] for j in two.world.callbacks_queue.sent] == [CALLBACK_URL, INBOUND_URL]
    assert events[1]["reply_id"] == reply.message_id and events[1]["keyword"] == "OPT_OUT"
    counts = two.world.telemetry.counts
    assert (counts["OptOuts"], counts["KeywordReplies"], counts["InboundReceived"]) == (1, 1, 1)


def test_start_opts_back_in_and_a_late_stop_cannot_undo_it() -> None:
    two = TwoWay()
    client_id = acme(two)
    two.service.process(inbound_sms("STOP", sid="SM1", received_at=T0))
    two.service.process(inbound_sms("start", sid="SM2", received_at=T0 + 10))
    late = two.service.process(inbound_sms("STOP", sid="SM0", received_at=T0 - 5))

    state = two.contacts.opt_out_of(client_id, PERSON)
    assert state is not None and (state.opted_out, state.keyword) == (False, "START")
    assert [e["type"] for e in two.events() if e["type"] != EVENT_INBOUND] == [
        EVENT_OPT_OUT, EVENT_OPT_IN]
    assert two.world.telemetry.counts["OptIns"] == 1
    # The late STOP still gets its confirmation: the person asked.
    assert late.reply_id is not None and two.world.messages.get(late.reply_id) is not None


@pytest.mark.parametrize(("help_text", "expected"), [
    (None, "test: Reply STOP to unsubscribe, START to resubscribe. Msg&data rates may apply."),
    ("ACME support: call 0800 123 456.", "ACME support: call 0800 123 456."),
])
def test_help_answers_with_the_clients_help_text_and_changes_nothing(
        help_text: str | None, expected: str) -> None:
    two = TwoWay()
    client_id = acme(two, help_text=help_text)

    stored = two.service.process(inbound_sms("Help"))

    assert stored.reply_id is not None
    reply = two.world.messages.get(stored.reply_id)
    assert reply is not None and reply.text == expected
    assert two.contacts.opt_outs == {} and client_id
    assert [e["type"] for e in two.events()] == [EVENT_INBOUND]


def test_a_test_mode_client_s_reply_is_checked_not_sent() -> None:
    two = TwoWay()
    acme(two, test_mode=True)
    stored = two.service.process(inbound_sms("HELP"))
    assert stored.reply_id is not None
    reply = two.world.messages.get(stored.reply_id)
    assert reply is not None and reply.test_mode


def test_a_reply_left_unqueued_by_a_queue_outage_waits_for_the_sweeper() -> None:
    two = TwoWay()
    acme(two)
    two.world.send_queue.down = True

    stored = two.service.process(inbound_sms("STOP"))

    assert stored.done and stored.reply_id is not None
    reply = two.world.messages.get(stored.reply_id)
    assert reply is not None and reply.status is Status.QUEUED  # the sweeper's to enqueue


# -- duplicates and re-runs ---------------------------------------------------------------
def test_a_duplicate_of_a_done_message_is_dropped() -> None:
    two = TwoWay()
    acme(two)
    first = two.service.process(inbound_sms("STOP"))
    queued = (list(two.world.send_queue.sent), list(two.world.callbacks_queue.sent))

    again = two.service.process(inbound_sms("STOP"))

    assert again == first
    assert (two.world.send_queue.sent, two.world.callbacks_queue.sent) == queued
    assert two.world.telemetry.counts["InboundDuplicate"] == 1
    assert two.world.telemetry.counts["InboundReceived"] == 1


# Every write of the service, each crashing right after it took effect.
CRASH_POINTS = [
    ("inbound", "put_new", 1),
    ("contacts", "set_opt_out", 1),
    ("callbacks_queue", "send", 1),  # the opt-out event
    ("messages", "put_new", 1),  # the reply stored, not enqueued
    ("send_queue", "send", 1),  # the reply enqueued
    ("callbacks_queue", "send", 2),  # the inbound event
    ("inbound", "mark_done", 1),
]


def _target(two: TwoWay, name: str) -> object:
    return getattr(two, name) if hasattr(two, name) else getattr(two.world, name)


@pytest.mark.parametrize(("target", "method", "call"), CRASH_POINTS)
def test_a_rerun_after_a_crash_at_any_step_finishes_the_work_without_doubling_it(
        target: str, method: str, call: int) -> None:
    two = TwoWay()
    client_id = acme(two)
    with crash_after(_target(two, target), method, call), pytest.raises(Crash):
        two.service.process(inbound_sms("STOP"))

    stored = two.service.process(inbound_sms("STOP"))
    two.service.process(inbound_sms("STOP"))  # and a duplicate after that

    assert stored.done and two.inbound.get(stored.inbound_id) == stored
    state = two.contacts.opt_out_of(client_id, PERSON)
    assert state is not None and state.opted_out
    assert len(two.world.messages.rows) == 1  # one confirmation
    assert {job["message_id"] for job in two.world.send_queue.sent} == {stored.reply_id}
    # Each event queued at least once, maybe twice (a receiver drops a repeat by its id).
    by_id = {e["event_id"]: e["type"] for e in two.events()}
    assert sorted(by_id.values()) == [EVENT_INBOUND, EVENT_OPT_OUT]
    # Each count is taken after its write: a crash right after the write loses that
    # count, and none is ever doubled.
    lost = {("inbound", "put_new"): "InboundReceived", ("contacts", "set_opt_out"): "OptOuts",
            ("messages", "put_new"): "KeywordReplies"}.get((target, method))
    counts = two.world.telemetry.counts
    for name in ("InboundReceived", "OptOuts", "KeywordReplies"):
        assert counts[name] == (0 if name == lost else 1), name
    # The duplicate at the end; and the re-run itself when the first run got to the end.
    assert counts["InboundDuplicate"] == (2 if method == "mark_done" else 1)


def test_a_rerun_does_not_tell_an_opt_out_that_a_later_start_overtook() -> None:
    two = TwoWay()
    client_id = acme(two)
    with crash_after(two.contacts, "set_opt_out"), pytest.raises(Crash):
        two.service.process(inbound_sms("STOP", sid="SM1", received_at=T0))
    two.service.process(inbound_sms("START", sid="SM2", received_at=T0 + 10))

    two.service.process(inbound_sms("STOP", sid="SM1", received_at=T0))

    assert not two.contacts.opt_out_of(client_id, PERSON).opted_out  # type: ignore[union-attr]
    assert [e["type"] for e in two.events() if e["type"] != EVENT_INBOUND] == [EVENT_OPT_IN]


def test_two_copies_stored_at_once_keep_the_first_reading() -> None:
    two = TwoWay()
    acme(two)
    other = acme(two, owns=False)
    original = two.inbound.put_new

    def rival_first(message: InboundMessage) -> bool:
        # Another delivery of the same message stored it a moment before, as another
        # client's (the claim moved in between): its reading stands.
        original(replace(message, client_id=other))
        return original(message)

    two.inbound.put_new = rival_first  # type: ignore[method-assign]
    stored = two.service.process(inbound_sms("STOP"))

    assert stored.client_id == other and stored.done
    assert two.contacts.opt_out_of(other, PERSON) is not None
    assert two.world.telemetry.counts["InboundReceived"] == 0


# -- the pinned route -----------------------------------------------------------------
def test_a_pinned_route_name_can_never_be_a_stored_routes() -> None:
    assert pinned_route_name("twilio") == "via:twilio"
    assert (pinned_provider("via:twilio"), pinned_provider("twilio"), pinned_provider("via:")) == (
        "twilio", None, None)
    assert storable_route_problems(Route("via:twilio", ("twilio",)))


def test_a_pinned_name_is_its_providers_route_or_the_default_when_it_cannot_send() -> None:
    default = default_route(["mock"])
    book = FakeRouteBook()
    table = RouteTable(book, default, 0.0, usable=["mock", "twilio"])
    assert table.named("via:twilio") == Route("via:twilio", ("twilio",))
    assert RouteTable(book, default, 0.0, usable=["mock"]).named("via:twilio") == default
    assert table.named("default") == default


def test_the_reply_goes_out_through_the_provider_the_inbound_message_came_from() -> None:
    two = TwoWay()
    acme(two)
    stored = two.service.process(inbound_sms("STOP", provider="twilio"))
    providers = {name: ScriptedProvider([Outcome.ACCEPTED], name=name)
                 for name in ("mock", "twilio")}
    w = two.world
    router = Router(RouteTable(None, default_route(["mock", "twilio"]), 0.0,
                               usable=["mock", "twilio"]), providers, w.telemetry)
    sender = SenderService(w.retry, 60.0, w.messages, w.ledger, None, w.telemetry, w.callbacks,
                           random.Random(7), w.clock, router=router)
    job = w.send_queue.sent[-1]

    assert sender.handle(job["message_id"], job.get("route"), job.get("country")) is DONE

    assert [s.message_id for s in providers["twilio"].submissions] == [stored.reply_id]
    assert providers["mock"].submissions == []
    sms = providers["twilio"].submissions[0]
    assert (sms.sender, sms.to, sms.sender_owned, sms.cost_cents) == (OUR_NUMBER, PERSON, True, 0)


def test_a_record_whose_store_is_down_comes_back_later_and_is_then_finished() -> None:
    from chalicelib.domain.errors import BackendUnavailableError
    from chalicelib.domain.work import RetryAfter

    two_way = TwoWay()
    acme(two_way)
    sms = inbound_sms("STOP")
    original = two_way.inbound.mark_done

    def down(*args: object) -> None:
        raise BackendUnavailableError("inbound table down")

    two_way.inbound.mark_done = down  # type: ignore[method-assign]
    assert two_way.service.take(sms, receives=3) == RetryAfter(4.0)
    assert two_way.world.telemetry.counts["InboundRetried"] == 1
    two_way.inbound.mark_done = original  # type: ignore[method-assign]
    assert two_way.service.take(sms, receives=4) is DONE
    # At least once, under one event id: the client drops the copy by it.
    told = [e for e in two_way.events() if e["type"] == EVENT_INBOUND]
    assert len({e["id"] for e in told}) == 1
    assert two_way.inbound.get(sms.inbound_id).done  # type: ignore[union-attr]
