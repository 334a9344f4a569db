"""Inbound (mobile-originated) messages, their keywords, and the opt-out state they change.

Pure: no I/O. Providers turn their own inbound shapes into ``InboundSms``; the
inbound service attributes it to a client, stores it once as an
``InboundMessage``, applies its keyword and tells the client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from chalicelib.domain.message import KIND_REPLY, Message, rfc3339
from chalicelib.domain.routing import country_of
from chalicelib.domain.segments import plan_segments
from chalicelib.domain.status import HoldState, Status
from chalicelib.domain.validation import E164

INBOUND_NAMESPACE = uuid.UUID("3d0c2f4e-5b8a-4e61-9f0d-7a2b1c4e8f33")
MAX_INBOUND_TEXT = 1600  # Twilio's cap on one message; longer bodies are cut


class Keyword(StrEnum):
    """What an inbound message asks for, when its whole text is a keyword."""

    OPT_OUT = "OPT_OUT"
    OPT_IN = "OPT_IN"
    HELP = "HELP"


# The carriers' (CTIA's) and the providers' standard keywords.
KEYWORDS: dict[str, Keyword] = {
    **{word: Keyword.OPT_OUT for word in (
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE")},
    **{word: Keyword.OPT_IN for word in ("START", "UNSTOP", "YES")},
    **{word: Keyword.HELP for word in ("HELP", "INFO")},
}
_IGNORED = re.compile(r"[\s.!]+")  # spaces anywhere, and a trailing full stop or bang


def normalized_keyword(text: str) -> str:
    """``" Stop. "`` -> ``"STOP"``: case, spaces and end punctuation do not count."""
    return _IGNORED.sub("", text).upper()


def keyword_of(text: str) -> Keyword | None:
    """The keyword ``text`` is as a whole message (``"stop"``, ``" STOP "``, ``"Opt out"``);
    None for any other text (``"please stop texting me"`` is a message, not a keyword)."""
    return KEYWORDS.get(normalized_keyword(text))


DEFAULT_OPT_OUT_REPLY = ("{name}: You are unsubscribed and will get no more messages. "
                         "Reply START to resubscribe.")
DEFAULT_OPT_IN_REPLY = ("{name}: You are subscribed again. Reply HELP for help, STOP to "
                        "unsubscribe. Msg&data rates may apply.")
DEFAULT_HELP_REPLY = ("{name}: Reply STOP to unsubscribe, START to resubscribe. "
                      "Msg&data rates may apply.")


def confirmation_text(keyword: Keyword, client_name: str, help_text: str | None) -> str:
    """The reply carriers expect to a keyword: the client's own help text for HELP when it
    set one, else the standard wording with its name."""
    if keyword is Keyword.HELP and help_text:
        return help_text
    template = {Keyword.OPT_OUT: DEFAULT_OPT_OUT_REPLY, Keyword.OPT_IN: DEFAULT_OPT_IN_REPLY,
                Keyword.HELP: DEFAULT_HELP_REPLY}[keyword]
    return template.format(name=client_name)


@dataclass(frozen=True)
class InboundSms:
    """One inbound message as a provider reported it (verified already)."""

    provider: str
    provider_message_id: str
    from_number: str  # the person (E.164)
    to_number: str  # the gateway's number it was sent to
    text: str
    received_at: float

    @property
    def inbound_id(self) -> str:
        """The same for every copy of one provider message: duplicates are dropped by it."""
        return inbound_id_for(self.provider, self.provider_message_id)

    def log_keys(self) -> dict[str, str]:
        """What the inbound queue's worker logs it under (no phone number: they stay
        masked, and the ids find it)."""
        return {"provider": self.provider, "provider_message_id": self.provider_message_id,
                "inbound_id": self.inbound_id}


def inbound_id_for(provider: str, provider_message_id: str) -> str:
    return str(uuid.uuid5(INBOUND_NAMESPACE, f"{provider}:{provider_message_id}"))


def reply_id_for(inbound_id: str) -> str:
    """The message id of the confirmation to one inbound message: one reply, however often
    the inbound message is processed."""
    return str(uuid.uuid5(INBOUND_NAMESPACE, f"reply:{inbound_id}"))


@dataclass(frozen=True)
class InboundMessage:
    """An inbound message as stored: attributed, linked, its keyword read."""

    inbound_id: str
    provider: str
    provider_message_id: str
    client_id: str | None  # None: no client owns the number or wrote to the person
    from_number: str
    to_number: str
    text: str
    received_at: float
    keyword: Keyword | None = None
    message_id: str | None = None  # the last outbound message of that conversation
    reply_id: str | None = None  # the confirmation sent for its keyword
    done: bool = False  # every effect of it (opt-out, reply, callbacks) is applied

    def public(self) -> dict[str, object]:
        """The JSON of one entry of ``GET /v1/inbound``."""
        return {
            "id": self.inbound_id,
            "from": self.from_number,
            "to": self.to_number,
            "text": self.text,
            "keyword": self.keyword.value if self.keyword else None,
            "provider": self.provider,
            "provider_message_id": self.provider_message_id,
            "message_id": self.message_id,
            "reply_id": self.reply_id,
            "received_at": rfc3339(self.received_at),
        }


@dataclass(frozen=True)
class OptOut:
    """A number that opted out of one client's messages (or back in)."""

    client_id: str
    number: str
    opted_out: bool
    changed_at: float  # when the person (or the client) said so
    source: str  # keyword, api or provider
    keyword: str | None = None  # the word, for a keyword (STOP, START...)

    def public(self) -> dict[str, object]:
        return {"number": self.number, "opted_out": self.opted_out,
                "changed_at": rfc3339(self.changed_at), "source": self.source,
                "keyword": self.keyword}


SOURCE_KEYWORD, SOURCE_API, SOURCE_PROVIDER = "keyword", "api", "provider"
EVENT_INBOUND, EVENT_OPT_OUT, EVENT_OPT_IN = "message.inbound", "recipient.opted_out", "recipient.opted_in"


def inbound_event(message: InboundMessage) -> dict[str, object]:
    """The callback event (to the client's inbound URL) of one inbound message."""
    return {"event_id": str(uuid.uuid5(INBOUND_NAMESPACE, f"event:{message.inbound_id}")),
            "type": EVENT_INBOUND, **message.public(), "occurred_at": rfc3339(message.received_at)}


def opt_out_event(change: OptOut) -> dict[str, object]:
    """The callback event (to the client's callback URL) of one opt-out or opt-in."""
    kind = EVENT_OPT_OUT if change.opted_out else EVENT_OPT_IN
    key = f"{kind}:{change.client_id}:{change.number}:{change.changed_at:.3f}"
    return {"event_id": str(uuid.uuid5(INBOUND_NAMESPACE, key)), "type": kind,
            **change.public(), "occurred_at": rfc3339(change.changed_at)}


# -- replies and sender claims (the inbound service and the admin CLI) -----------------

def keyword_reply(inbound: InboundMessage, text: str, now: float, route: str,
                  test_mode: bool = False) -> Message:
    """The confirmation of ``inbound``'s keyword, as a message of its client: from the
    number the person wrote to, to the person, at no cost to the client, through
    ``route`` (the provider the inbound message came from). One per inbound message:
    its id is ``reply_id_for`` the inbound id."""
    assert inbound.client_id is not None, "only an attributed inbound message is answered"
    plan = plan_segments(text)
    return Message(
        message_id=reply_id_for(inbound.inbound_id), client_id=inbound.client_id,
        to=inbound.from_number, sender=inbound.to_number, text=text,
        encoding=plan.encoding.value, parts=plan.count, cost_cents=0, status=Status.QUEUED,
        hold_state=HoldState.HELD, created_at=now, updated_at=now, sender_owned=True,
        route=route, country=country_of(inbound.from_number), test_mode=test_mode,
        kind=KIND_REPLY)


def phone_number_senders(sender_ids: Iterable[str]) -> tuple[frozenset[str], list[str]]:
    """The sender IDs that are phone numbers (E.164), which people can reply to, and the
    problems of those that look like one (a ``+``) but are not. Alphanumeric sender IDs
    and short codes are not claimed: inbound messages are attributed by E.164 number."""
    numbers, problems = set(), []
    for sender in sender_ids:
        if E164.fullmatch(sender):
            numbers.add(sender)
        elif sender.startswith("+"):
            problems.append(f"sender ID {sender!r} is not an E.164 number (+ and digits)")
    return frozenset(numbers), problems
