"""API keys against moto: one key per client (CLI and store), the negative cache, and
the per-client throttle of the read routes."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.exceptions import DoesNotExist

from chalicelib import cli
from chalicelib.container import Container, hash_api_key
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.services.auth import ReadThrottle
from localstack import provision
from tests.fakes.clock import FakeClock
from tests.support.awscalls import recorded_calls
from tests.support.clients import client_id_of, make_client
from tests.support.http import SEED_BODY, as_json, assert_error, post

pytestmark = pytest.mark.functional


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the admin CLI in-process (against moto); its exit code, stdout and stderr."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def me(api: Any, key: str) -> Any:
    return api.http.get("/v1/me", headers={"X-API-Key": key})


def owner_of(aws: Container, key: str) -> str | None:
    """Who holds ``key``, read from the table (no cache)."""
    client = aws.accounts.find_by_key_hash(hash_api_key(key))
    return client.client_id if client else None


# -- one key, one client -----------------------------------------------------------
def test_the_cli_refuses_a_second_client_with_the_same_key(
    aws: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    assert admin(capsys, "client", "--name", "acme", "--credits", "1",
                 "--api-key", "shared-key")[0] == 0

    code, out, err = admin(capsys, "client", "--name", "other", "--credits", "1",
                           "--api-key", "shared-key")

    assert code == 2 and "belongs to another client" in err and "created" not in out
    with pytest.raises(NotFoundError):
        aws.accounts.balance("other")
    assert owner_of(aws, "shared-key") == "acme"


def test_the_cli_refuses_to_give_an_existing_client_another_clients_key(
    aws: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    admin(capsys, "client", "--name", "acme", "--api-key", "acme-key")
    admin(capsys, "client", "--name", "other", "--api-key", "other-key")

    code, _, err = admin(capsys, "client", "--name", "other", "--api-key", "acme-key",
                         "--rate-limit-rps", "7")

    assert code == 2 and "belongs to another client" in err
    assert (owner_of(aws, "acme-key"), owner_of(aws, "other-key")) == ("acme", "other")
    other = aws.accounts.find_by_key_hash(hash_api_key("other-key"))
    assert other is not None and other.rate_limit_rps is None  # nothing was changed


def test_rival_creations_with_one_key_exactly_one_wins(
    aws: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both rivals read the key as free before either writes its claim: the conditional
    write of the claim lets only the first through."""
    claims = aws.accounts._claims

    def stale_read(*args: Any, **kwargs: Any) -> Any:
        raise DoesNotExist()

    key_hash = hash_api_key("contested")
    assert aws.accounts.upsert("first", "First", key_hash, 100)
    monkeypatch.setattr(claims, "get", stale_read)
    monkeypatch.setattr(aws.accounts, "find_by_key_hash", lambda key_hash: None)  # index lag

    with pytest.raises(ConflictError):
        aws.accounts.upsert("second", "Second", key_hash, 100)

    monkeypatch.undo()
    with pytest.raises(NotFoundError):
        aws.accounts.balance("second")
    assert owner_of(aws, "contested") == "first"


def test_rotation_frees_the_old_key_for_another_client(
    api: Any, aws: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    admin(capsys, "client", "--name", "acme", "--api-key", "old-key")

    code, out, _ = admin(capsys, "rotate-key", "--name", "acme")
    new_key = out.split()[5]

    assert code == 0 and new_key.startswith("sk_")
    assert as_json(me(api, new_key))["id"] == "acme"
    assert_error(me(api, "old-key"), 401, "unauthorized")
    aws.authenticator.forget()  # this test's instance just refused it: its negative cache
    assert admin(capsys, "client", "--name", "newco", "--api-key", "old-key")[0] == 0
    assert as_json(me(api, "old-key"))["id"] == "newco"


def test_rotating_the_key_of_no_client_fails_cleanly(
    aws: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = admin(capsys, "rotate-key", "--name", "ghost")
    assert code == 2 and "no such client" in err


def test_the_seed_stays_idempotent_and_its_key_stays_its_own(
    api: Any, aws: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    assert provision.seed(aws.settings) is True
    assert provision.seed(aws.settings) is False
    assert as_json(me(api, provision.DEMO_API_KEY))["id"] == provision.DEMO_CLIENT_ID
    code, _, err = admin(capsys, "client", "--name", "thief", "--api-key", provision.DEMO_API_KEY)
    assert code == 2 and "belongs to another client" in err


def test_key_claims_are_not_clients(aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    admin(capsys, "client", "--name", "acme", "--api-key", "acme-key")
    admin(capsys, "rotate-key", "--name", "acme")

    assert [c.client_id for c, _ in aws.accounts.scan_all()] == ["acme"]
    code, out, _ = admin(capsys, "reconcile")
    assert code == 0 and "1 clients" in out


def test_a_key_given_before_claims_existed_is_still_refused_to_others(aws: Container) -> None:
    """A client written without a claim (an older deployment) still owns its key."""
    aws.tables.clients("legacy", name="Legacy", api_key_hash=hash_api_key("legacy-key")).save()

    with pytest.raises(ConflictError):
        aws.accounts.upsert("other", "Other", hash_api_key("legacy-key"), 0)
    aws.accounts.set_api_key("legacy", hash_api_key("legacy-new"))  # its owner may rotate
    assert owner_of(aws, "legacy-new") == "legacy"


# -- unknown keys --------------------------------------------------------------------
def test_a_flood_of_bad_keys_reads_dynamodb_once_per_key(api: Any, aws: Container) -> None:
    with recorded_calls() as calls:
        for _ in range(30):
            assert_error(me(api, "wrong-key"), 401, "unauthorized")
            assert_error(post(api, "wrong-key", SEED_BODY), 401, "unauthorized")
    # The key index, then the operator key's claim: each once, then cached.
    assert [action for action, _ in calls if action.startswith("dynamodb:")] == [
        "dynamodb:Query", "dynamodb:GetItem"]


def test_a_new_key_works_at_once_while_bad_ones_are_cached(api: Any, aws: Container) -> None:
    assert_error(me(api, "wrong-key"), 401, "unauthorized")
    key = make_client(aws)
    assert me(api, key).status_code == 200


# -- read throttle -------------------------------------------------------------------
@pytest.mark.settings(read_rate_limit_rps=1.0, read_rate_limit_burst=3)
def test_the_read_routes_share_a_per_client_bucket_answer_429_and_recover(
    api: Any, aws: Container
) -> None:
    clock = FakeClock()
    aws.__dict__["read_throttle"] = ReadThrottle(aws.read_throttle.limit, clock)
    key, other = make_client(aws), make_client(aws)
    message_id = as_json(post(api, key, SEED_BODY))["message_id"]
    headers = {"X-API-Key": key}

    answers = [api.http.get("/v1/me", headers=headers),
               api.http.get("/v1/messages", headers=headers),
               api.http.get(f"/v1/messages/{message_id}", headers=headers)]
    limited = api.http.get("/v1/me", headers=headers)

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"] == "1"
    assert (limited.headers["RateLimit-Limit"], limited.headers["RateLimit-Remaining"]) == (
        "3", "0")
    assert me(api, other).status_code == 200  # another client's bucket
    assert post(api, key, SEED_BODY).status_code == 202  # sending has its own bucket
    clock.advance(1.0)
    assert me(api, key).status_code == 200
    assert aws.accounts.balance(client_id_of(aws, key)).held == 10
