"""The front door under concurrency, over real HTTP against the emulator."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Answer, Gateway
from tests.support.http import SEED_BODY
from tests.support.outcomes import key_with_outcomes

pytestmark = pytest.mark.e2e


def parallel(
    gateway: Gateway, n: int, key: str, headers: list[dict[str, str]] | None = None
) -> list[Answer]:
    per_request = headers or [{}] * n
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(
            lambda h: gateway.request("POST", "/v1/messages", key, SEED_BODY, h), per_request))


def test_40_parallel_sends_with_credit_for_20(gateway: Gateway) -> None:
    client_id, key = gateway.new_client(credit_cents=20 * 5)
    # Keys whose messages the mock provider delivers: no hold is released (and
    # no credit comes back) while the test runs.
    keys = delivering_keys(gateway, client_id, 40)
    answers = parallel(gateway, 40, key, [{"Idempotency-Key": k} for k in keys])
    statuses = sorted(a.status for a in answers)
    assert statuses.count(202) == 20 and statuses.count(402) == 20, statuses
    balance = gateway.container().accounts.balance(client_id)
    assert balance.available == 0 and balance.drift == 0


def delivering_keys(gateway: Gateway, client_id: str, n: int) -> list[str]:
    keys: list[str] = []
    while len(keys) < n:
        keys.append(key_with_outcomes(gateway, client_id, [Outcome.ACCEPTED], skip=set(keys)))
    return keys


def test_10_parallel_requests_with_one_idempotency_key(gateway: Gateway) -> None:
    client_id, key = gateway.new_client(credit_cents=1000)
    answers = parallel(gateway, 10, key, [{"Idempotency-Key": "same-key"}] * 10)
    accepted = [a for a in answers if a.status == 202]
    assert all(a.status in (202, 409) for a in answers), [(a.status, a.body) for a in answers]
    assert len({a.body["message_id"] for a in accepted}) == 1
    replays = [a for a in accepted if a.headers.get("Idempotent-Replayed") == "true"]
    assert len(replays) == len(accepted) - 1
    balance = gateway.container().accounts.balance(client_id)
    # One hold at most (the message may already have been settled by the pipeline).
    assert balance.available >= 995 and balance.drift == 0


def test_rate_limit_1_rps_burst_2(gateway: Gateway) -> None:
    _, key = gateway.new_client(rate_limit_rps=1, rate_limit_burst=2)
    answers = [gateway.request("POST", "/v1/messages", key, SEED_BODY) for _ in range(3)]
    assert [a.status for a in answers] == [202, 202, 429]
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert answers[2].body["error"]["code"] == "rate_limited"


def test_concurrent_sends_within_a_generous_limit_are_all_accepted(gateway: Gateway) -> None:
    # Requests that wait in a queue must be judged at the moment of their write,
    # and a busy bucket must not turn into "too busy" refusals.
    _, key = gateway.new_client(rate_limit_rps=1000, rate_limit_burst=1000)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(
            lambda _: gateway.request("POST", "/v1/messages", key, SEED_BODY), range(200)))
    assert [a.status for a in answers] == [202] * 200, [a.body for a in answers if a.status != 202]
