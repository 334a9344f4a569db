"""Opt-outs, per client: the one place an opt-out or opt-in is recorded and told.

Keywords (``services/inbound.py``), the client's own API calls and providers'
refusals all record through ``OptOutBook.change``: stored only when newer than
the stored state, counted, and told to the client's callback URL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from chalicelib.domain.cursors import CursorCodec
from chalicelib.domain.errors import NotFoundError
from chalicelib.domain.inbound import OptOut, opt_out_event
from chalicelib.domain.message import Client
from chalicelib.domain.validation import (
    parse_opt_out_request,
    parse_phone_number,
)
from chalicelib.ports import Clock, ContactStore, Telemetry
from chalicelib.services.callbacks import CallbackService
from chalicelib.services.manage import check_params, parse_limit

log = logging.getLogger(__name__)


class OptOutBook:
    def __init__(self, contacts: ContactStore, callbacks: CallbackService,
                 telemetry: Telemetry) -> None:
        self._contacts = contacts
        self._callbacks = callbacks
        self._telemetry = telemetry

    def is_opted_out(self, client_id: str, number: str) -> bool:
        found = self._contacts.opt_out_of(client_id, number)
        return found is not None and found.opted_out

    def change(self, client: Client, change: OptOut, request_id: str | None = None) -> bool:
        """Record ``change`` if it is newer than what is stored, and queue its event to the
        client's callback URL; False when a newer (or the same) change was stored already.

        A repeat of a stored change returns False and queues nothing; a caller that must
        be sure the event went out after a crash between the two (the inbound service,
        re-running an inbound message) calls ``tell`` itself.
        """
        stored = self._contacts.set_opt_out(change)
        if stored:
            self._telemetry.count("OptOuts" if change.opted_out else "OptIns")
            log.info("opt-out recorded" if change.opted_out else "opt-in recorded",
                     extra={"number": change.number, "source": change.source})
            self.tell(client, change, request_id)
        return stored

    def tell(self, client: Client, change: OptOut, request_id: str | None = None) -> None:
        """Queue the change's event (its id is a function of the change: a repeat is one
        event to the receiver)."""
        self._callbacks.send_event(client.client_id, client.callback_url, opt_out_event(change),
                                   request_id)


OPT_OUT_LIST_PARAMS = frozenset({"limit", "cursor"})
CURSOR_SCOPE = "#opt-outs"
SOURCE_API = "api"


class OptOutApi:
    """``/v1/opt-outs``: a client lists its opted-out numbers, adds one it learned
    elsewhere, and removes one (the person opted back in some other way). Each change
    goes through ``OptOutBook.change``, so it is told like a keyword's."""

    def __init__(self, book: OptOutBook, contacts: ContactStore, cursors: CursorCodec,
                 strict_phone_numbers: bool, clock: Clock = time.time) -> None:
        self._book = book
        self._contacts = contacts
        self._cursors = cursors
        self._strict = strict_phone_numbers
        self._clock = clock

    def list(self, client: Client,
             params: Mapping[str, str]) -> tuple[list[OptOut], str | None]:
        """The opted-out numbers in number order, a page at a time (signed cursors)."""
        check_params(params, OPT_OUT_LIST_PARAMS)
        scope = client.client_id + CURSOR_SCOPE
        after = self._cursors.decode(scope, params["cursor"])[1] if "cursor" in params else None
        found, last = self._contacts.page_opt_outs(client.client_id, after,
                                                   parse_limit(params.get("limit")))
        return found, self._cursors.encode(scope, (0.0, last)) if last else None

    def add(self, client: Client, body: object,
            request_id: str | None = None) -> tuple[OptOut, bool]:
        """Opt ``body``'s number out; with True when it was not opted out before."""
        number = parse_opt_out_request(body, self._strict)
        seen = self._contacts.opt_out_of(client.client_id, number)
        if seen is not None and seen.opted_out:
            return seen, False
        change = OptOut(client.client_id, number, True, self._changed_at(seen), SOURCE_API)
        self._book.change(client, change, request_id)
        return self._stored(change), True

    def remove(self, client: Client, number: str, request_id: str | None = None) -> OptOut:
        """Opt ``number`` back in; 404 when it is not opted out."""
        number = parse_phone_number(number, "number", self._strict)
        seen = self._contacts.opt_out_of(client.client_id, number)
        if seen is None or not seen.opted_out:
            raise NotFoundError(f"{number} is not opted out")
        change = OptOut(client.client_id, number, False, self._changed_at(seen), SOURCE_API)
        self._book.change(client, change, request_id)
        return self._stored(change)

    def _changed_at(self, seen: OptOut | None) -> float:
        # Newer than the stored change even if this clock is behind the one that wrote it.
        now = self._clock()
        return now if seen is None or now > seen.changed_at else seen.changed_at + 0.001

    def _stored(self, change: OptOut) -> OptOut:
        """What is stored after ``change`` (a concurrent newer change may have won)."""
        return self._contacts.opt_out_of(change.client_id, change.number) or change
