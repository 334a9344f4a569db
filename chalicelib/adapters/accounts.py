"""Client accounts in DynamoDB: lookup by key, balances, rate-limit state.

Every money movement here is one conditional UpdateItem on the client's item,
so a balance can never go below zero under any concurrency. The rate-limit
bucket lives on the same item, so the admission of a message (rate limit and
credit hold together) is a single write.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo import dynamodb_errors, is_condition_failure
from chalicelib.adapters.models import (
    API_KEY_CLAIM_PREFIX,
    ApiKeyClaimModel,
    ClientModel,
    LedgerEntryModel,
    api_key_claims,
)
from chalicelib.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    InsufficientCreditError,
    NotFoundError,
    RateLimitedError,
)
from chalicelib.domain.message import Balance, Client
from chalicelib.domain.ratelimit import Decision, RateLimit, decide, max_tat_allowed, settled

# A lost write re-reads the bucket and tries the other branch. Under heavy
# concurrency on one client the bucket flips between idle and busy, so a few
# tries may lose; each is one read and one write, and a jittered pause spreads them.
HOLD_TRIES = 8


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
    )


class DynamoAccounts:
    """The clients table."""

    def __init__(self, clients: type[ClientModel], ledger: type[LedgerEntryModel]) -> None:
        self._clients = clients
        self._ledger = ledger
        self._claims = api_key_claims(clients)
        # Last TAT seen per client; only a hint for which write to try first.
        self._tat_hint: dict[str, float | None] = {}

    def find_by_key_hash(self, key_hash: str) -> Client | None:
        """The client whose API key hashes to ``key_hash``, if any."""
        with dynamodb_errors("api key lookup"):
            for key in self._clients.api_key_index.query(key_hash, limit=1):
                item = self._clients.get(key.client_id, consistent_read=True)
                # The index is eventually consistent: a rotated key may linger there.
                return _client(item) if item.api_key_hash == key_hash else None
        return None

    def balance(self, client_id: str) -> Balance:
        """The client's balances, read consistently."""
        return _balance(self._get(client_id))

    def webhook_secret_version(self, client_id: str) -> int:
        """Which derivation of the client's webhook secret is current."""
        return int(self._get(client_id).webhook_secret_version or 1)

    def _get(self, client_id: str) -> ClientModel:
        with dynamodb_errors("client read"):
            try:
                return self._clients.get(client_id, consistent_read=True)
            except DoesNotExist as exc:
                raise NotFoundError("no such client") from exc

    def admit(
        self, client_id: str, cost_cents: int, limit: RateLimit, tokens: int, now: float
    ) -> Decision:
        """Take ``tokens`` from the rate bucket and hold ``cost_cents``, in one write.

        Raises ``RateLimitedError`` or ``InsufficientCreditError``, having
        taken nothing. The bucket's last known TAT picks which of the two
        conditional writes to try; a wrong guess costs one read and a retry.
        """
        tat = self._tat_hint.get(client_id)
        for attempt in range(HOLD_TRIES):
            if attempt:
                time.sleep(random.uniform(0, 0.002 * attempt))
                # Judge the retry at its own moment: a request that waited in a
                # queue must not be measured against the bucket at its old "now".
                now = time.time()
            idle = tat is None or tat <= now
            try:
                new_tat = self._admit_write(client_id, cost_cents, limit, tokens, now, idle)
            except PynamoDBException as exc:
                if not is_condition_failure(exc):
                    raise BackendUnavailableError("the database is unavailable (hold)") from exc
                tat = self._refusal_or_tat(client_id, cost_cents, limit, tokens, time.time())
                continue
            self._tat_hint[client_id] = new_tat
            return settled(limit, new_tat, now)
        raise BackendUnavailableError("the account is too busy; retry")

    def _refusal_or_tat(
        self, client_id: str, cost: int, limit: RateLimit, tokens: int, now: float
    ) -> float | None:
        """After a lost write: raise the refusal it stands for, or return the real TAT."""
        item = self._get(client_id)
        tat = float(item.tat) if item.tat is not None else None
        self._tat_hint[client_id] = tat
        decision = decide(limit, tat, now, tokens)
        if not decision.allowed:
            raise RateLimitedError(decision, limit.burst)
        if item.available_cents < cost:
            raise InsufficientCreditError(
                f"this message costs {cost} cents; {int(item.available_cents)} available"
            )
        return tat

    def _admit_write(
        self, client_id: str, cost: int, limit: RateLimit, tokens: int, now: float, idle: bool
    ) -> float:
        step = tokens * limit.interval
        credit = ClientModel.available_cents >= cost
        actions: list[Action] = [
            ClientModel.available_cents.set(ClientModel.available_cents - cost),
            ClientModel.held_cents.set(ClientModel.held_cents + cost),
        ]
        condition: Condition
        if idle:
            # Bucket at rest (TAT in the past): the new TAT starts from now.
            actions.append(ClientModel.tat.set(now + step))
            condition = credit & (ClientModel.tat.does_not_exist() | (ClientModel.tat <= now))
        else:
            actions.append(ClientModel.tat.set(ClientModel.tat + step))
            bound = max_tat_allowed(limit, now, tokens)
            condition = credit & (ClientModel.tat > now) & (ClientModel.tat <= bound)
        item = self._clients(client_id)
        item.update(actions=actions, condition=condition)
        return float(item.tat or now + step)

    def move(self, client_id: str, cost: int, into: str) -> None:
        """Settle a hold: move ``cost`` from held into ``spent`` or back to ``available``."""
        target = ClientModel.spent_cents if into == "spent" else ClientModel.available_cents
        with dynamodb_errors("settle"):
            self._clients(client_id).update(
                actions=[
                    ClientModel.held_cents.set(ClientModel.held_cents - cost),
                    target.set(target + cost),
                ],
                condition=ClientModel.held_cents >= cost,
            )

    def record_topup(self, client_id: str, entry_id: str, amount: int, note: str | None) -> None:
        """Write the ledger entry, then add it to the client's balance."""
        with dynamodb_errors("top-up"):
            self._ledger(client_id, entry_id, kind="TOPUP", amount_cents=amount,
                             created_at=time.time(), note=note).save(
                condition=LedgerEntryModel.entry_id.does_not_exist())
            self._clients(client_id).update(
                actions=[ClientModel.available_cents.set(ClientModel.available_cents + amount),
                         ClientModel.topup_cents.set(ClientModel.topup_cents + amount)],
                condition=ClientModel.client_id.exists(),
            )

    def topups(self, client_id: str) -> int:
        """The sum of the client's top-up ledger entries."""
        with dynamodb_errors("ledger read"):
            return sum(int(e.amount_cents) for e in self._ledger.query(client_id)
                       if e.kind == "TOPUP")

    def unhold(self, client_id: str, cost: int) -> None:
        """Undo a hold whose message was never written (lost idempotency race)."""
        self.move(client_id, cost, into="available")

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

    def rotate_webhook_secret(self, client_id: str) -> int:
        """Move to the next derivation of the webhook secret; return its version."""
        item = self._clients(client_id)
        with dynamodb_errors("client update"):
            item.update(actions=[ClientModel.webhook_secret_version.add(1)],
                        condition=ClientModel.client_id.exists())
        return int(item.webhook_secret_version)

    def scan_all(self) -> Iterator[tuple[Client, Balance]]:
        """Every client with its balance (admin and reconcile only)."""
        with dynamodb_errors("client scan"):
            for item in self._clients.scan(consistent_read=True):
                if not item.client_id.startswith(API_KEY_CLAIM_PREFIX):
                    yield _client(item), _balance(item)
