"""API keys on fakes: the caches of the authenticator, the read throttle, unique keys."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ConflictError, NotFoundError, RateLimitedError, ValidationError
from chalicelib.domain.message import Client
from chalicelib.domain.ratelimit import RateLimit
from chalicelib.services.auth import (
    UNKNOWN_KEYS_CACHED,
    Authenticator,
    ReadThrottle,
    TtlLru,
    hash_api_key,
)
from chalicelib.services.manage import ApiKeys
from tests.fakes.accounts import FakeAccounts
from tests.fakes.clock import FakeClock

pytestmark = pytest.mark.unit


class CountingAccounts(FakeAccounts):
    """Fake accounts that count the key look-ups (each one a DynamoDB read)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def find_by_key_hash(self, key_hash: str) -> Client | None:
        self.lookups += 1
        return super().find_by_key_hash(key_hash)


def world(negative_ttl_s: float = 5.0) -> tuple[CountingAccounts, Authenticator, FakeClock]:
    accounts, clock = CountingAccounts(), FakeClock()
    accounts.add(Client("acme", "Acme"), 1000, hash_api_key("good-key"))
    return accounts, Authenticator(accounts, 30.0, clock, negative_ttl_s=negative_ttl_s), clock


# -- negative cache --------------------------------------------------------------
def test_a_flood_of_one_bad_key_costs_one_lookup_per_ttl() -> None:
    accounts, auth, clock = world(negative_ttl_s=5.0)

    assert all(auth.client_for("bad-key") is None for _ in range(1000))
    assert accounts.lookups == 1
    clock.advance(5.0)
    assert auth.client_for("bad-key") is None
    assert accounts.lookups == 2


def test_known_keys_are_cached_too_and_never_refused_by_the_unknown_cache() -> None:
    accounts, auth, _ = world()

    assert [auth.client_for("good-key") for _ in range(100)] == [Client("acme", "Acme")] * 100
    assert accounts.lookups == 1


def test_a_key_created_after_others_were_refused_works_at_once() -> None:
    accounts, auth, _ = world()
    assert auth.client_for("bad-key") is None

    ApiKeys(accounts).create("newco", "New Co", 0, api_key="new-key")

    assert auth.client_for("new-key") == Client("newco", "New Co")


def test_a_key_refused_just_before_it_was_created_works_after_the_ttl() -> None:
    accounts, auth, clock = world(negative_ttl_s=5.0)
    assert auth.client_for("soon-key") is None
    ApiKeys(accounts).create("newco", "New Co", 0, api_key="soon-key")

    assert auth.client_for("soon-key") is None  # still within the negative TTL
    clock.advance(5.0)
    assert auth.client_for("soon-key") == Client("newco", "New Co")


def test_the_unknown_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    accounts, auth, _ = world()
    for i in range(UNKNOWN_KEYS_CACHED + 10):
        auth.client_for(f"bad-{i}")
    assert len(auth._unknown) == UNKNOWN_KEYS_CACHED
    before = accounts.lookups
    auth.client_for(f"bad-{UNKNOWN_KEYS_CACHED + 9}")  # recent: still cached
    auth.client_for("bad-0")  # the oldest: forgotten, read again
    assert accounts.lookups == before + 1


def test_a_zero_negative_ttl_caches_no_unknown_key() -> None:
    accounts, auth, _ = world(negative_ttl_s=0.0)
    auth.client_for("bad-key")
    auth.client_for("bad-key")
    assert accounts.lookups == 2


def test_an_outage_is_not_cached_as_unknown() -> None:
    accounts, auth, _ = world()

    def down(key_hash: str) -> Client | None:
        raise RuntimeError("database down")

    accounts.find_by_key_hash = down  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        auth.client_for("good-key")
    del accounts.find_by_key_hash
    assert auth.client_for("good-key") == Client("acme", "Acme")


def test_ttl_lru_expires_entries_at_their_deadline() -> None:
    lru: TtlLru[int] = TtlLru(2)
    lru.put("a", 1, until=10.0)
    assert lru.get("a", 9.9) == 1
    assert lru.get("a", 10.0) is None and len(lru) == 0


# -- read throttle ---------------------------------------------------------------
def test_the_read_throttle_refuses_past_the_burst_then_refills() -> None:
    clock = FakeClock()
    throttle = ReadThrottle(RateLimit(rate_per_s=10.0, burst=3), clock)

    remaining = [throttle.take("acme").remaining for _ in range(3)]
    with pytest.raises(RateLimitedError) as limited:
        throttle.take("acme")

    assert remaining == [2, 1, 0]
    assert limited.value.limit == 3 and limited.value.retry_after_s == pytest.approx(0.1)
    assert throttle.take("other").allowed  # buckets are per client
    clock.advance(0.1)
    assert throttle.take("acme").allowed


def test_the_read_throttle_keeps_a_bounded_number_of_buckets() -> None:
    clock = FakeClock()
    throttle = ReadThrottle(RateLimit(rate_per_s=1.0, burst=1), clock, size=2)
    throttle.take("a")
    throttle.take("b")
    throttle.take("c")  # "a" is forgotten: its bucket starts full again
    assert throttle.take("a").allowed
    with pytest.raises(RateLimitedError):
        throttle.take("c")


# -- unique keys -----------------------------------------------------------------
def test_a_second_client_cannot_be_created_with_a_key_another_holds() -> None:
    accounts = FakeAccounts()
    keys = ApiKeys(accounts)
    assert keys.create("acme", "Acme", 1000, api_key="shared") == "shared"

    with pytest.raises(ConflictError) as taken:
        keys.create("other", "Other", 1000, api_key="shared")

    assert taken.value.field == "api_key"
    assert "other" not in accounts.accounts


def test_a_client_cannot_be_given_a_key_another_holds() -> None:
    accounts = FakeAccounts()
    keys = ApiKeys(accounts)
    keys.create("acme", "Acme", 0, api_key="acme-key")
    keys.create("other", "Other", 0, api_key="other-key")

    with pytest.raises(ConflictError):
        keys.assign("other", "acme-key")
    assert accounts.find_by_key_hash(hash_api_key("other-key")) == Client("other", "Other")


def test_rotation_gives_a_fresh_key_and_frees_the_old_one() -> None:
    accounts = FakeAccounts()
    keys = ApiKeys(accounts)
    keys.create("acme", "Acme", 0, api_key="old-key")

    new = keys.rotate("acme")

    assert new.startswith("sk_") and new != "old-key"
    assert accounts.find_by_key_hash(hash_api_key(new)) == Client("acme", "Acme")
    assert keys.create("other", "Other", 0, api_key="old-key") == "old-key"


def test_creating_an_existing_client_changes_nothing() -> None:
    accounts = FakeAccounts()
    keys = ApiKeys(accounts)
    keys.create("acme", "Acme", 1000, api_key="acme-key")
    assert keys.create("acme", "Acme", 5000) is None
    assert accounts.balance("acme").available == 1000


@pytest.mark.parametrize("key", ["", "has space", "x" * 257, "tab\there", "é-key"])
def test_a_key_that_could_not_travel_in_a_header_is_refused(key: str) -> None:
    with pytest.raises(ValidationError) as bad:
        ApiKeys(FakeAccounts()).create("acme", "Acme", 0, api_key=key)
    assert bad.value.field == "api_key"


def test_rotating_the_key_of_no_client_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        ApiKeys(FakeAccounts()).rotate("ghost")


def test_key_claims_live_under_the_clients_tables_key() -> None:
    """The claims share the clients table: same key attribute and type, no index entry."""
    from chalicelib.adapters.models import API_KEY_CLAIM_PREFIX, ApiKeyClaimModel, ClientModel

    claim_key, client_key = (m._hash_key_attribute() for m in (ApiKeyClaimModel, ClientModel))
    assert (claim_key.attr_name, claim_key.attr_type) == (client_key.attr_name,
                                                          client_key.attr_type)
    assert ApiKeyClaimModel.Meta.table_name == ClientModel.Meta.table_name
    assert "api_key_hash" not in ApiKeyClaimModel.get_attributes()
    assert "#" in API_KEY_CLAIM_PREFIX and not cli_client_id_allows(API_KEY_CLAIM_PREFIX + "x")


def cli_client_id_allows(name: str) -> bool:
    from chalicelib.cli import CLIENT_ID

    return CLIENT_ID.match(name) is not None
