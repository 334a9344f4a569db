"""Inbound messages: attribute, link, store once, apply the keyword, tell the client.

One service for every provider: the Twilio webhook calls ``process`` in the request,
the ``inbound`` queue's worker (AWS End User Messaging, the mock) ``take`` once per
record. Every step is idempotent, so processing the same message again (the provider's duplicate,
a record redelivered after a crash at any step) finishes the work without doubling
any of it:

1. the stored copy: stored and done, it is a duplicate and nothing more happens;
2. attribute it (the client that owns the number it was sent to, by sender claim,
   else the client whose newest message to that person went out from that number),
   link the last outbound message of that conversation, read its keyword; store it
   if absent (the first copy's reading is the one kept);
3. its keyword: the opt-out or opt-in (stored only if newer; its event to the
   client's callback URL), and the confirmation reply (a message of kind
   keyword_reply, id ``reply_id_for`` the inbound id, put if absent, no hold, no
   rate limit, sent through the provider the inbound message came from);
4. the inbound event to the client's inbound URL (the same event id every time);
5. mark it done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from chalicelib.domain.cursors import CursorCodec
from chalicelib.domain.errors import (
    BackendUnavailableError,
    NotFoundError,
    UnprocessableError,
)
from chalicelib.domain.inbound import (
    MAX_INBOUND_TEXT,
    SOURCE_KEYWORD,
    InboundMessage,
    InboundSms,
    Keyword,
    OptOut,
    confirmation_text,
    inbound_event,
    keyword_of,
    keyword_reply,
    normalized_keyword,
    reply_id_for,
)
from chalicelib.domain.message import Client, Message
from chalicelib.domain.routing import pinned_route_name
from chalicelib.domain.status import Status
from chalicelib.domain.validation import parse_rfc3339
from chalicelib.domain.work import DONE, RetryAfter, SendJob, Step, report_backoff, request_attributes
from chalicelib.ports import (
    ClientReader,
    Clock,
    Conversations,
    InboundStore,
    MessageStore,
    Telemetry,
    WorkQueue,
)
from chalicelib.services.callbacks import CallbackService
from chalicelib.services.manage import DEFAULT_LIMIT, check_params, parse_limit
from chalicelib.services.optouts import OptOutBook

log = logging.getLogger(__name__)


class InboundService:
    def __init__(self, inbound: InboundStore, conversations: Conversations,
                 clients: ClientReader, messages: MessageStore, send_queue: WorkQueue,
                 opt_outs: OptOutBook, callbacks: CallbackService, telemetry: Telemetry,
                 clock: Clock = time.time) -> None:
        self._inbound = inbound
        self._conversations = conversations
        self._clients = clients
        self._messages = messages
        self._send_queue = send_queue
        self._opt_outs = opt_outs
        self._callbacks = callbacks
        self._telemetry = telemetry
        self._clock = clock

    def take(self, sms: InboundSms, receives: int = 1, request_id: str | None = None) -> Step:
        """One record of the inbound queue: ``process`` it; when a step could not be
        taken, it comes back after 1, 2, 4, 8 s... (the steps taken are not repeated),
        until the queue's maxReceiveCount moves it to the dead-letter queue."""
        try:
            self.process(sms, request_id)
        except BackendUnavailableError as exc:
            self._telemetry.count("InboundRetried")
            log.warning("inbound message not processed; it comes back",
                        extra={"receives": receives, "error": str(exc)})
            return RetryAfter(report_backoff(receives))
        return DONE

    def process(self, sms: InboundSms, request_id: str | None = None) -> InboundMessage:
        """Take in one inbound message (verified by its provider already); the message as
        stored, done. ``BackendUnavailableError`` when a step could not be taken: the
        caller tries again, and the steps taken already are not repeated."""
        stored = self._inbound.get(sms.inbound_id)
        rerun = stored is not None
        if stored is None:
            stored, fresh = self._store(sms)
            rerun = not fresh
        if stored.done:
            self._telemetry.count("InboundDuplicate")
            log.info("duplicate inbound message dropped", extra={
                "provider": stored.provider, "provider_message_id": stored.provider_message_id})
            return stored
        client = self._client_of(stored)
        if client is None:
            return self._unattributed(stored)
        self._telemetry.correlate(client_id=client.client_id, request_id=request_id)
        if stored.keyword is not None:
            self._apply_keyword(client, stored, stored.keyword, rerun, request_id)
        self._callbacks.send_event(client.client_id, client.inbound_url, inbound_event(stored),
                                   request_id)
        self._inbound.mark_done(stored.inbound_id, stored.reply_id)
        return replace(stored, done=True)

    # -- reading and storing -----------------------------------------------------
    def _store(self, sms: InboundSms) -> tuple[InboundMessage, bool]:
        """Store ``sms`` as read now, unless a copy of it is stored already; the stored
        message, and whether this call stored it."""
        message = self._read(sms)
        if self._inbound.put_new(message):
            self._telemetry.count("InboundReceived")
            log.info("inbound message stored", extra={
                "provider": message.provider, "provider_message_id": message.provider_message_id,
                "client_id": message.client_id, "keyword": message.keyword,
                "linked_message_id": message.message_id})
            return message, True
        # Another copy was stored meanwhile (two deliveries at once): its reading stands.
        return self._inbound.get(message.inbound_id) or message, False

    def _read(self, sms: InboundSms) -> InboundMessage:
        """Attribution, link and keyword of ``sms``."""
        owner = self._conversations.owner_of(sms.to_number)
        # Without an owner, the newest message to the person from that number names both
        # the client and the conversation; with one, the owner's newest.
        last = self._conversations.last_outbound(sms.from_number, sms.to_number, owner)
        client_id = owner or (last.client_id if last is not None else None)
        keyword = keyword_of(sms.text)
        return InboundMessage(
            inbound_id=sms.inbound_id, provider=sms.provider,
            provider_message_id=sms.provider_message_id, client_id=client_id,
            from_number=sms.from_number, to_number=sms.to_number,
            text=sms.text[:MAX_INBOUND_TEXT], received_at=sms.received_at, keyword=keyword,
            message_id=last.message_id if last is not None else None,
            reply_id=reply_id_for(sms.inbound_id) if keyword and client_id else None)

    def _client_of(self, stored: InboundMessage) -> Client | None:
        if stored.client_id is None:
            return None
        try:
            return self._clients.client(stored.client_id)
        except NotFoundError:
            log.warning("inbound message for a client that no longer exists",
                        extra={"client_id": stored.client_id})
            return None

    def _unattributed(self, stored: InboundMessage) -> InboundMessage:
        """No client owns the number nor wrote to the person from it: stored, and no more."""
        self._telemetry.count("InboundUnattributed")
        log.warning("inbound message for no client: stored, nothing else done", extra={
            "provider": stored.provider, "from": stored.from_number, "to": stored.to_number,
            "provider_message_id": stored.provider_message_id})
        self._inbound.mark_done(stored.inbound_id, None)
        return replace(stored, done=True)

    # -- the keyword -------------------------------------------------------------
    def _apply_keyword(self, client: Client, stored: InboundMessage, keyword: Keyword,
                       rerun: bool, request_id: str | None) -> None:
        if keyword in (Keyword.OPT_OUT, Keyword.OPT_IN):
            change = OptOut(client.client_id, stored.from_number, keyword is Keyword.OPT_OUT,
                            stored.received_at, SOURCE_KEYWORD, normalized_keyword(stored.text))
            recorded = self._opt_outs.change(client, change, request_id)
            if not recorded and rerun and self._opt_outs.is_opted_out(
                    client.client_id, change.number) == change.opted_out:
                # Recorded by a run that may have stopped before its event was queued; a
                # change overtaken since (a later START) is not told again.
                self._opt_outs.tell(client, change, request_id)
        self._reply(client, stored, keyword, request_id)

    def _reply(self, client: Client, stored: InboundMessage, keyword: Keyword,
               request_id: str | None) -> None:
        """Store and enqueue the keyword's confirmation, once."""
        text = confirmation_text(keyword, client.name, client.help_text)
        reply = replace(keyword_reply(stored, text, self._clock(),
                                      pinned_route_name(stored.provider), client.test_mode),
                        request_id=request_id)
        if self._messages.put_new(reply):
            self._telemetry.count("KeywordReplies")
            log.info("keyword confirmation queued", extra={
                "message_id": reply.message_id, "keyword": keyword.value, "route": reply.route})
            self._enqueue(reply)
            return
        existing = self._messages.get(reply.message_id)
        if existing is not None and existing.status is Status.QUEUED:
            # A run that stored it may have stopped before it was enqueued; a second
            # send record of a message is harmless (one claim wins).
            self._enqueue(existing)

    def _enqueue(self, reply: Message) -> None:
        try:
            self._send_queue.send(SendJob.of(reply).body(),
                                  attributes=request_attributes(reply.request_id))
        except BackendUnavailableError:
            # Stored QUEUED: the sweeper enqueues it once it has waited STUCK_AFTER.
            log.warning("keyword confirmation not enqueued; left QUEUED for the sweeper",
                        extra={"message_id": reply.message_id})


# -- GET /v1/inbound ---------------------------------------------------------------------
INBOUND_LIST_PARAMS = frozenset({"since", "until", "limit", "cursor", "from"})
# Cursors are signed for the client and this list: one of GET /v1/messages is refused here.
CURSOR_SCOPE = "#inbound"


@dataclass(frozen=True)
class InboundQuery:
    since: float | None = None
    until: float | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[float, str] | None = None
    from_number: str | None = None

    def matches(self, message: InboundMessage) -> bool:
        return self.from_number is None or message.from_number == self.from_number


class InboundList:
    """A client's inbound messages, newest first, in pages with signed cursors."""

    def __init__(self, inbound: InboundStore, cursors: CursorCodec) -> None:
        self._inbound = inbound
        self._cursors = cursors

    def query(self, client: Client, params: Mapping[str, str]) -> InboundQuery:
        """The validated query string of ``GET /v1/inbound`` for ``client``."""
        check_params(params, INBOUND_LIST_PARAMS)
        since = parse_rfc3339(params["since"], "since") if "since" in params else None
        until = parse_rfc3339(params["until"], "until") if "until" in params else None
        if since is not None and until is not None and since > until:
            raise UnprocessableError("'since' is after 'until'", "since")
        cursor = params.get("cursor")
        return InboundQuery(
            since=since, until=until, limit=parse_limit(params.get("limit")),
            after=self._cursors.decode(client.client_id + CURSOR_SCOPE, cursor) if cursor else None,
            from_number=params.get("from"))

    def list(self, client: Client, query: InboundQuery) -> tuple[list[InboundMessage], str | None]:
        """Newest first; the cursor continues where this page stopped."""
        if query.until is not None and query.until < (query.since or 0.0):
            return [], None  # before 1970: nothing arrived (and the index refuses the range)
        found, position = self._inbound.page_for_client(
            client.client_id, query.since, query.until, query.after, query.limit, query.matches)
        cursor = (self._cursors.encode(client.client_id + CURSOR_SCOPE, position)
                  if position else None)
        return found, cursor
