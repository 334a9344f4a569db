"""Opt-outs, per client: the one place an opt-out or opt-in is recorded and told.

Keywords (``services/inbound.py``), the client's own API calls and providers'
refusals all record through ``OptOutBook.change``: stored only when newer than
the stored state, counted, and told to the client's callback URL.
"""

from __future__ import annotations

import logging

from chalicelib.domain.inbound import OptOut, opt_out_event
from chalicelib.domain.message import Client
from chalicelib.ports import ContactStore, Telemetry
from chalicelib.services.callbacks import CallbackService

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
