"""Client accounts in DynamoDB: lookup by key, balances, rate-limit state.

The money on a client's item moves only in ``adapters.books``, in transactions
with the record that explains it (a message, a ledger entry). The rate-limit
bucket lives on the same item, so the admission of a message (rate limit, credit
hold and the message itself) is one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure
from chalicelib.adapters.models import (
    API_KEY_CLAIM_PREFIX,
    OPERATOR,
    SENDER_CLAIM_PREFIX,
    ApiKeyClaimModel,
    ClientModel,
    LedgerEntryModel,
    api_key_claims,
)
from chalicelib.domain.errors import (
    ConflictError,
    NotFoundError,
)
from chalicelib.domain.message import Balance, Client
from chalicelib.domain.pricing import dump_country_prices, parse_country_prices, with_country_price
from chalicelib.domain.signing import SecretVersions

PRICE_WRITE_ATTEMPTS = 5  # rival operators' writes to one client's price list, in a row


def _client(item: ClientModel) -> Client:
    return Client(
        client_id=item.client_id,
        name=item.name,
        price_per_part_cents=_int_or_none(item.price_per_part_cents),
        rate_limit_rps=float(item.rate_limit_rps) if item.rate_limit_rps is not None else None,
        rate_limit_burst=_int_or_none(item.rate_limit_burst),
        callback_url=item.callback_url,
        callback_on_sent=bool(item.callback_on_sent),
        webhook_secret_version=int(item.webhook_secret_version or 1),
        allowed_senders=frozenset(item.allowed_senders or ()),
        max_parts=_int_or_none(item.max_parts),
        message_type=item.message_type,
        test_mode=bool(item.test_mode),
        country_prices=parse_country_prices(item.country_prices),
        inbound_url=item.inbound_url,
        help_text=item.help_text,
        allowed_countries=frozenset(item.allowed_countries or ()),
        daily_limit_cents=_int_or_none(item.daily_limit_cents),
        velocity_limit=_int_or_none(item.velocity_limit),
        velocity_mode=item.velocity_mode,
    )


def _key_taken() -> ConflictError:
    return ConflictError("this API key belongs to another client; choose another", "api_key")


def _int_or_none(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _balance(item: ClientModel) -> Balance:
    return Balance(
        available=int(item.available_cents),
        held=int(item.held_cents),
        spent=int(item.spent_cents),
        initial=int(item.initial_cents),
        topups=int(item.topup_cents),
        version=int(item.books_version or 0),
        spend_day=item.spend_day,
        spend_day_cents=int(item.spend_day_cents or 0),
    )


def read_client(clients: type[ClientModel], client_id: str) -> ClientModel:
    """The client's item, read consistently; ``NotFoundError`` when there is none."""
    with dynamodb_errors("client read"):
        try:
            return clients.get(client_id, consistent_read=True)
        except DoesNotExist as exc:
            raise NotFoundError("no such client") from exc


class DynamoAccounts:
    """The clients table."""

    def __init__(self, clients: type[ClientModel], ledger: type[LedgerEntryModel]) -> None:
        self._clients = clients
        self._ledger = ledger
        self._claims = api_key_claims(clients)
        # Last TAT seen per client; only a hint for which write to try first.

    def find_by_key_hash(self, key_hash: str) -> Client | None:
        """The client whose API key hashes to ``key_hash``, if any."""
        with dynamodb_errors("api key lookup"):
            for key in self._clients.api_key_index.query(key_hash, limit=1):
                item = self._clients.get(key.client_id, consistent_read=True)
                # The index is eventually consistent: a rotated key may linger there.
                return _client(item) if item.api_key_hash == key_hash else None
        return None

    def is_operator_key(self, key_hash: str) -> bool:
        """True when ``key_hash`` is the operator key's (``ADMIN_API_KEY``)."""
        claim = self._claim(key_hash)
        return claim is not None and claim.owner == OPERATOR

    def set_operator_key(self, key_hash: str) -> None:
        """Make ``key_hash`` the operator key: claimed like a client's key (so no client
        can hold it, nor it a client's: ``ConflictError``), then every older operator
        key's claim deleted."""
        self._take_key(key_hash, OPERATOR)
        for older in self.operator_key_hashes() - {key_hash}:
            self._release_key(older, OPERATOR)

    def operator_key_hashes(self) -> set[str]:
        """The hash of each operator key claimed (one, but for a rotation under way); a
        scan of the clients table, for the CLI."""
        c = self._claims
        with dynamodb_errors("operator key scan"):
            return {i.client_id[len(API_KEY_CLAIM_PREFIX):]
                    for i in c.scan(c.owner == OPERATOR, consistent_read=True)
                    if i.client_id.startswith(API_KEY_CLAIM_PREFIX)}

    def balance(self, client_id: str) -> Balance:
        """The client's balances, read consistently."""
        return _balance(self._get(client_id))

    def webhook_secret_versions(self, client_id: str) -> SecretVersions:
        """Which derivation of the client's webhook secret is current, and since when."""
        item = self._get(client_id)
        rotated_at = item.webhook_secret_rotated_at
        return SecretVersions(int(item.webhook_secret_version or 1),
                              float(rotated_at) if rotated_at is not None else None)

    def _get(self, client_id: str) -> ClientModel:
        return read_client(self._clients, client_id)

    def topups(self, client_id: str) -> int:
        """The sum of the client's top-up ledger entries."""
        with dynamodb_errors("ledger read"):
            # Read consistently: the audit compares this with books it has just read.
            return sum(int(e.amount_cents)
                       for e in self._ledger.query(client_id, consistent_read=True)
                       if e.kind == "TOPUP")

    def upsert(
        self,
        client_id: str,
        name: str,
        key_hash: str,
        credit_cents: int,
        price_per_part_cents: int | None = None,
        rate_limit_rps: float | None = None,
        rate_limit_burst: int | None = None,
        callback_url: str | None = None,
        callback_on_sent: bool = False,
    ) -> bool:
        """Create a client with ``credit_cents``, its key claimed first; False if it
        already exists, ``ConflictError`` if another client holds the key."""
        item = self._clients(
            client_id,
            name=name,
            api_key_hash=key_hash,
            available_cents=credit_cents,
            initial_cents=credit_cents,
            held_cents=0,
            spent_cents=0,
            topup_cents=0,
            price_per_part_cents=price_per_part_cents,
            rate_limit_rps=rate_limit_rps,
            rate_limit_burst=rate_limit_burst,
            callback_url=callback_url,
            callback_on_sent=callback_on_sent,
            created_at=time.time(),
        )
        if self._exists(client_id):
            return False  # the update path decides about its key
        fresh = self._take_key(key_hash, client_id)
        with dynamodb_errors("client create"):
            try:
                item.save(condition=ClientModel.client_id.does_not_exist())
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise
                if self._get(client_id).created_at == item.created_at:
                    return True  # our own write, repeated by botocore after a lost answer
                if fresh and self._get(client_id).api_key_hash != key_hash:
                    self._release_key(key_hash, client_id)
                return False
        return True

    def set_api_key(self, client_id: str, key_hash: str) -> None:
        """Give an existing client the key ``key_hash``, then release its old one;
        ``ConflictError`` if another client holds that key.

        The claim is written before the client's ``api_key_hash`` and the old claim
        deleted after it moved, so at no moment do two clients hold one key. A crash
        in between leaves a claim behind, which only keeps that key from other clients.
        """
        old = self._get(client_id).api_key_hash
        if old == key_hash:
            return
        fresh = self._take_key(key_hash, client_id)
        with dynamodb_errors("api key change"):
            try:
                self._clients(client_id).update(
                    actions=[ClientModel.api_key_hash.set(key_hash)],
                    condition=ClientModel.api_key_hash == old)
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise
                if self._get(client_id).api_key_hash != key_hash:  # not our own repeat
                    if fresh:
                        self._release_key(key_hash, client_id)
                    raise ConflictError("the client's API key changed meanwhile; try again",
                                        "api_key") from exc
        self._release_key(old, client_id)

    def _exists(self, client_id: str) -> bool:
        try:
            self._get(client_id)
        except NotFoundError:
            return False
        return True

    def _take_key(self, key_hash: str, client_id: str) -> bool:
        """Claim ``key_hash`` for ``client_id`` (True if the claim is new), or raise
        ``ConflictError``: the conditional write decides between rival claims."""
        claim = self._claim(key_hash)
        if claim is not None:
            if claim.owner != client_id:
                raise _key_taken()
            return False
        holder = self.find_by_key_hash(key_hash)  # a key given before claims existed
        if holder is not None and holder.client_id != client_id:
            raise _key_taken()
        with dynamodb_errors("api key claim"):
            try:
                self._claims(API_KEY_CLAIM_PREFIX + key_hash, owner=client_id,
                             created_at=time.time()).save(
                    condition=self._claims.client_id.does_not_exist()
                    | (self._claims.owner == client_id))
            except PynamoDBException as exc:
                if is_condition_failure(exc):
                    raise _key_taken() from exc
                raise
        return True

    def _claim(self, key_hash: str) -> ApiKeyClaimModel | None:
        with dynamodb_errors("api key claim read"):
            try:
                return self._claims.get(API_KEY_CLAIM_PREFIX + key_hash, consistent_read=True)
            except DoesNotExist:
                return None

    def _release_key(self, key_hash: str, client_id: str) -> None:
        """Delete ``client_id``'s claim on ``key_hash``, if it has one."""
        with dynamodb_errors("api key release"):
            try:
                self._claims(API_KEY_CLAIM_PREFIX + key_hash).delete(
                    condition=self._claims.owner == client_id)
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise  # a lost condition: no claim of ours (gone, or never written)

    def configure(self, client_id: str, **settings: object) -> None:
        """Set (or, with None, remove) per-client settings of an existing client."""
        fields = {
            "name": ClientModel.name, "rate_limit_rps": ClientModel.rate_limit_rps,
            "rate_limit_burst": ClientModel.rate_limit_burst,
            "price_per_part_cents": ClientModel.price_per_part_cents,
            "callback_url": ClientModel.callback_url,
            "callback_on_sent": ClientModel.callback_on_sent,
            "allowed_senders": ClientModel.allowed_senders, "max_parts": ClientModel.max_parts,
            "message_type": ClientModel.message_type, "test_mode": ClientModel.test_mode,
            "inbound_url": ClientModel.inbound_url, "help_text": ClientModel.help_text,
            "allowed_countries": ClientModel.allowed_countries,
            "daily_limit_cents": ClientModel.daily_limit_cents,
            "velocity_limit": ClientModel.velocity_limit,
            "velocity_mode": ClientModel.velocity_mode,
        }  # the API key only through set_api_key, which keeps it unique
        actions: list[Action] = []
        for key, value in settings.items():
            attr: Any = fields[key]
            empty = value is None or (isinstance(value, (set, frozenset)) and not value)
            actions.append(attr.remove() if empty else attr.set(value))
        if actions:
            with dynamodb_errors("client update"):
                self._clients(client_id).update(actions=actions,
                                              condition=ClientModel.client_id.exists())

    def client(self, client_id: str) -> Client:
        """The client ``client_id``, read consistently; ``NotFoundError`` when there is none."""
        return _client(self._get(client_id))

    def set_country_price(self, client_id: str, country: str,
                          cents: int | None) -> dict[str, int]:
        """Set the client's price per part to ``country`` (None: remove it); return the
        whole list as stored.

        The list is one JSON string, so the write is a compare-and-set: one UpdateItem
        conditional on the string read. Two operators setting two countries at once: one
        write loses its condition, reads again and applies its change to the winner's
        list, so neither change is lost. A write that botocore repeats after a lost
        answer loses its condition too, and the read then finds the change made.
        """
        attr = ClientModel.country_prices
        for _ in range(PRICE_WRITE_ATTEMPTS):
            seen = self._get(client_id).country_prices
            wanted = with_country_price(parse_country_prices(seen), country, cents)
            stored = dump_country_prices(wanted)
            if stored == seen:
                return wanted
            unchanged = attr.does_not_exist() if seen is None else attr == seen
            action = attr.remove() if stored is None else attr.set(stored)
            with dynamodb_errors("client price update"):
                try:
                    self._clients(client_id).update(
                        actions=[action], condition=ClientModel.client_id.exists() & unchanged)
                    return wanted
                except PynamoDBException as exc:
                    if not is_condition_failure(exc):
                        raise
        raise ConflictError("the client's prices kept changing meanwhile; try again", "country")

    def rotate_webhook_secret(self, client_id: str, now: float) -> SecretVersions:
        """Make the next derivation of the webhook secret current as of ``now``.

        Conditional on the version read: a write that botocore repeats after a
        lost answer, or a rotation racing this one, must not skip a version (the
        previous secret would stop signing at once).
        """
        current = self.webhook_secret_versions(client_id).current
        rotated = SecretVersions(current + 1, now)
        version = ClientModel.webhook_secret_version
        unchanged = version == current
        if current == 1:
            unchanged = unchanged | version.does_not_exist()
        try:
            with dynamodb_errors("client update"):
                self._clients(client_id).update(
                    actions=[version.set(rotated.current),
                             ClientModel.webhook_secret_rotated_at.set(now)],
                    condition=ClientModel.client_id.exists() & unchanged)
        except PynamoDBException as exc:
            if self.webhook_secret_versions(client_id) != rotated:  # not our own repeat
                raise ConflictError("the webhook secret was rotated meanwhile; try again") from exc
        return rotated

    def scan_all(self) -> Iterator[tuple[Client, Balance]]:
        """Every client with its balance (admin and reconcile only)."""
        with dynamodb_errors("client scan"):
            for item in self._clients.scan(consistent_read=True):
                if not item.client_id.startswith((API_KEY_CLAIM_PREFIX, SENDER_CLAIM_PREFIX)):
                    yield _client(item), _balance(item)
