"""Clients' callback signing secrets: shown to the operator, rotated, and which sign now.

Secrets are derived from ``WEBHOOK_MASTER_SECRET`` and the client's secret
version (``domain.signing``); only the version and the time of the last
rotation are stored. For ``grace_s`` after a rotation the previous secret signs
too, so a client can switch its receiver over without losing a callback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.signing import DEFAULT_GRACE_S, derive_secret, signing_keys
from chalicelib.ports import AccountStore, Clock


@dataclass(frozen=True)
class SecretView:
    """A client's current secret, and until when its previous one signs too."""

    secret: str
    previous_until: float | None = None  # None: only the current secret signs


class WebhookSecrets:
    def __init__(self, master_secret: str, accounts: AccountStore,
                 grace_s: float = DEFAULT_GRACE_S, clock: Clock = time.time) -> None:
        self._master = master_secret
        self._accounts = accounts
        self._grace_s = grace_s
        self._clock = clock

    def _view(self, client_id: str, current: int, previous_until: float | None) -> SecretView:
        if not self._master:
            raise BackendUnavailableError("WEBHOOK_MASTER_SECRET is not set")
        signs = previous_until is not None and previous_until > self._clock()
        return SecretView(derive_secret(self._master, client_id, current),
                          previous_until if signs else None)

    def current(self, client_id: str) -> SecretView:
        """The secret a client verifies its callbacks with."""
        versions = self._accounts.webhook_secret_versions(client_id)
        return self._view(client_id, versions.current, versions.previous_until(self._grace_s))

    def rotate(self, client_id: str) -> SecretView:
        """Switch to a new secret; the old one keeps signing for the grace period."""
        if not self._master:
            raise BackendUnavailableError("WEBHOOK_MASTER_SECRET is not set")
        versions = self._accounts.rotate_webhook_secret(client_id, self._clock())
        return self._view(client_id, versions.current, versions.previous_until(self._grace_s))

    def signing_keys(self, client_id: str) -> list[bytes]:
        """The keys that sign this client's callbacks now, newest first."""
        versions = self._accounts.webhook_secret_versions(client_id)
        return signing_keys(self._master, client_id, versions, self._clock(), self._grace_s)
