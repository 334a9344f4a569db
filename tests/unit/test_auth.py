"""API keys on fakes: one key per client."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.domain.message import Client
from chalicelib.services.auth import hash_api_key
from chalicelib.services.manage import ApiKeys
from tests.fakes.accounts import FakeAccounts

pytestmark = pytest.mark.unit


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
