"""Long scenarios against a private local stack: crashes, concurrency, outage, logs.

Each test starts its own stack (moto server, ``chalice local``, 2 runners) so
it may kill any process. Marked ``reliability``: run by ``make test-reliability``.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.books import audit, wait_all_final, wait_books_settle
from tests.support.figures import FigureBook, Figures
from tests.support.gateway import Answer, Gateway
from tests.support.outcomes import key_with_outcomes
from tests.support.processes import kill, reconcile_exit, request, restart_api, wait_ready
from tests.support.stacks import assert_logs_clean, log_text, stage_secrets

pytestmark = pytest.mark.reliability


def body_for(n: int) -> dict[str, str]:
    return {"to": f"+1415555{n:04d}", "from": "TEST", "text": f"reliability {n}"}


# -- 2. crash injection ----------------------------------------------------
def test_runners_killed_at_random_during_500_messages(
    own_stack: Any, own_gateway: Gateway, figures: FigureBook
) -> None:
    started, rng = time.monotonic(), random.Random(2026)
    client_id, key = own_gateway.new_client(credit_cents=1_000_000, rate_limit_rps=1000,
                                            rate_limit_burst=1000)
    kills: list[str] = []
    stop = threading.Event()

    def chaos() -> None:
        while not stop.wait(rng.uniform(2.0, 7.0)):
            name = rng.choice(["worker-1", "worker-2"])
            kill(own_stack, name)
            kills.append(name)
            time.sleep(rng.uniform(0.2, 2.0))
            own_stack.start_workers()

    killer = threading.Thread(target=chaos, daemon=True)
    killer.start()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: request(
            own_stack.api_url, "POST", "/v1/messages", key, body_for(n),
            {"Idempotency-Key": f"crash-{n}"}), range(500)))
    time.sleep(10)  # keep killing while the queues drain
    stop.set()
    killer.join()
    own_stack.start_workers()
    accepted = {a.body["message_id"] for a in answers if a.status == 202}
    fivexx = sum(a.status >= 500 for a in answers)
    assert len(accepted) == 500 and fivexx == 0, sorted({a.status for a in answers})
    wait_all_final(own_gateway.container(), {client_id}, accepted, timeout_s=240)
    container = own_gateway.container()
    wait_books_settle(container, {client_id})
    result = audit(container, {client_id}, accepted)
    code, out = reconcile_exit(own_stack)
    figures.record(Figures(
        "2. runners SIGKILLed at random during a 500-message run", len(accepted), result.lost,
        result.sent_twice, result.charged_twice, result.drift_cents, fivexx,
        time.monotonic() - started,
        f"{len(kills)} kills; statuses {result.statuses}; reconcile exit {code}"))
    assert kills
    assert result.lost == 0, result.statuses
    assert result.charged_twice == 0 and result.drift_cents == 0
    # A kill between the provider's acceptance and the SENT write makes the
    # sweeper resubmit that message (the mock dedups it by message id): at
    # most one batch of 10 per kill.
    assert result.sent_twice <= 10 * len(kills)
    assert code == 0, out
    assert_logs_clean(own_stack, [key, *stage_secrets()], [body_for(n)["to"] for n in range(500)])


def test_api_killed_mid_request_client_retries_with_its_key(
    own_stack: Any, own_gateway: Gateway, figures: FigureBook
) -> None:
    started, rng = time.monotonic(), random.Random(11)
    client_id, key = own_gateway.new_client(credit_cents=1_000_000, rate_limit_rps=1000,
                                            rate_limit_burst=1000)
    keys = [f"api-kill-{n}" for n in range(120)]
    first_try: dict[str, int] = {}

    def send_until_answered(idem: str) -> Answer:
        n = keys.index(idem)
        deadline = time.monotonic() + 90
        for attempt in range(10_000):
            if time.monotonic() > deadline:
                break
            answer = request(own_stack.api_url, "POST", "/v1/messages", key, body_for(n),
                             {"Idempotency-Key": idem})
            if attempt == 0:
                first_try[idem] = answer.status
            if answer.status in (202,) or 400 <= answer.status < 500 and answer.status != 409:
                return answer
            time.sleep(0.3)
        raise AssertionError(f"{idem} never answered")

    kills = 0
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(send_until_answered, k) for k in keys]
        for _ in range(4):
            time.sleep(rng.uniform(0.3, 1.5))
            kill(own_stack, "api")
            kills += 1
            restart_api(own_stack)
        answers = [f.result() for f in futures]
    assert all(a.status == 202 for a in answers), [(a.status, a.body) for a in answers
                                                   if a.status != 202][:5]
    container = own_gateway.container()
    by_client = [m for m in container.messages.scan_all() if m.client_id == client_id]
    ids = {a.body["message_id"] for a in answers}
    accepted = set(ids)
    wait_all_final(own_gateway.container(), {client_id}, accepted, timeout_s=120)
    wait_books_settle(container, {client_id}, timeout_s=10)
    result = audit(container, {client_id}, accepted)
    balance = container.accounts.balance(client_id)
    dropped = sum(1 for s in first_try.values() if s == 0)
    figures.record(Figures(
        "2. API SIGKILLed mid-request, client retries with its Idempotency-Key", len(by_client),
        result.lost, result.sent_twice, result.charged_twice, result.drift_cents,
        sum(1 for s in first_try.values() if s >= 500), time.monotonic() - started,
        f"{kills} kills; {dropped} first tries dropped; {len(keys)} keys -> {len(ids)} messages; "
        f"held after settling {balance.held} cents"))
    # Exactly one message per key, each the one its retries were answered with.
    assert len(ids) == len(keys) and len(by_client) == len(keys)
    assert result.lost == 0 and result.charged_twice == 0
    # A kill between the hold and the message write leaves that hold behind
    # (README "Money": fail safe, reported by reconcile); nothing is spent twice.
    assert result.drift_cents == balance.held


# -- 3. concurrency ---------------------------------------------------------
def start_second_api(stack: Any) -> str:
    from localstack.stack import free_port

    port = free_port()
    stack._start("api-2", [sys.executable, "-m", "localstack.local_api",
                           "--no-autoreload", "--host", "127.0.0.1", "--port", str(port),
                           "--stage", "local"], stack.logs / "api-2.log")
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    return url


def test_tight_credit_and_rate_limit_across_two_api_processes(
    own_stack: Any, own_gateway: Gateway, figures: FigureBook
) -> None:
    started = time.monotonic()
    second = start_second_api(own_stack)
    urls = [own_stack.api_url, second]

    # Tight credit: 25 messages' worth, 60 parallel requests over both APIs.
    client_id, key = own_gateway.new_client(credit_cents=25 * 5, rate_limit_rps=1000,
                                            rate_limit_burst=1000)
    keys = [key_with_outcomes(own_gateway, client_id, [Outcome.ACCEPTED], skip=set())]
    while len(keys) < 60:
        keys.append(key_with_outcomes(own_gateway, client_id, [Outcome.ACCEPTED], skip=set(keys)))
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: request(urls[i % 2], "POST", "/v1/messages", key,
                                                  body_for(i), {"Idempotency-Key": keys[i]}),
                                range(60)))
    statuses = sorted(a.status for a in answers)
    balance = own_gateway.container().accounts.balance(client_id)
    assert statuses.count(202) == 25 and statuses.count(402) == 35, statuses
    assert balance.available == 0 and balance.drift == 0

    # Rate limit: 2/s with a burst of 5, 60 requests over both APIs for ~3 s.
    rl_id, rl_key = own_gateway.new_client(credit_cents=100_000, rate_limit_rps=2,
                                           rate_limit_burst=5)
    t0 = time.time()

    def paced(i: int) -> Answer:
        time.sleep(i * 0.05)
        return request(urls[i % 2], "POST", "/v1/messages", rl_key, body_for(100 + i))

    with ThreadPoolExecutor(20) as pool:
        rl = list(pool.map(paced, range(60)))
    elapsed = time.time() - t0
    admitted = sum(a.status == 202 for a in rl)
    allowed = 5 + int(2 * elapsed)
    figures.record(Figures(
        "3. tight credit (60 parallel, credit for 25) and rate limit, 2 API processes",
        statuses.count(202) + admitted, 0, 0, 0, abs(balance.drift),
        sum(a.status >= 500 for a in answers + rl), time.monotonic() - started,
        f"credit: {statuses.count(202)} accepted / {statuses.count(402)} refused 402, available "
        f"{balance.available}; rate 2/s burst 5: {admitted} admitted in {elapsed:.1f} s "
        f"(bucket allows {allowed}), others {sorted({a.status for a in rl if a.status != 202})}"))
    assert 5 <= admitted <= allowed, (admitted, allowed)
    assert {a.status for a in rl} <= {202, 429}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in rl if a.status == 429)


# -- 4. emulator outage -----------------------------------------------------
def poll_failures(stack: Any) -> int:
    return log_text(stack).count('"runner poll failed"')


def test_emulator_outage_answers_503_json_and_recovers(
    own_stack: Any, own_gateway: Gateway, figures: FigureBook
) -> None:
    started = time.monotonic()
    client_id, key = own_gateway.new_client(credit_cents=100_000, rate_limit_rps=1000,
                                            rate_limit_burst=1000)
    assert request(own_stack.api_url, "POST", "/v1/messages", key, body_for(1)).status == 202
    own_stack.stop_process("emulator")
    down_at, before = time.monotonic(), poll_failures(own_stack)
    answers: list[Answer] = []
    ready: list[Answer] = []
    fresh_key = "key-never-seen"
    while time.monotonic() - down_at < 15:
        answers.append(request(own_stack.api_url, "POST", "/v1/messages", key, body_for(2)))
        answers.append(request(own_stack.api_url, "POST", "/v1/messages", fresh_key, body_for(3)))
        answers.append(request(own_stack.api_url, "GET", "/v1/me", key))
        ready.append(request(own_stack.api_url, "GET", "/readyz", None))
    window = time.monotonic() - down_at
    failures = poll_failures(own_stack) - before
    statuses = sorted({a.status for a in answers})
    # 3 queues x 2 runners; each poller backs off 0.5 s doubling to 5 s.
    threads = 6
    ceiling = threads * (window / 0.5 + 1)
    own_stack.start_emulator()
    own_stack.provision()
    new_id, new_key = own_gateway.new_client(credit_cents=1000)
    recovered = time.monotonic()
    after = request(own_stack.api_url, "POST", "/v1/messages", new_key, body_for(4))
    deadline = time.monotonic() + 30
    while after.status != 202 and time.monotonic() < deadline:
        time.sleep(0.5)
        after = request(own_stack.api_url, "POST", "/v1/messages", new_key, body_for(4))
    final = wait_all_final(own_gateway.container(), {new_id}, {after.body["message_id"]}, timeout_s=60) \
        if after.status == 202 else {}
    figures.record(Figures(
        "4. emulator stopped under traffic, restarted and re-provisioned", len(answers),
        0, 0, 0, 0, sum(a.status >= 500 for a in answers), time.monotonic() - started,
        f"answers during outage {statuses}; /readyz {sorted({r.status for r in ready})}; "
        f"{failures} runner poll-failure lines in {window:.0f} s ({failures / window:.1f}/s, "
        f"ceiling {ceiling:.0f}); new traffic final {time.monotonic() - recovered:.0f} s after "
        f"re-provisioning: {sorted(set(final.values()))}"))
    assert all(a.status in (503, 401) for a in answers), statuses
    assert all(a.body["error"]["code"] in ("service_unavailable", "unauthorized")
               for a in answers), [a.body for a in answers if a.status == 500][:3]
    assert all(r.status == 503 and r.body["status"] == "unavailable" for r in ready)
    assert 0 < failures <= ceiling
    assert after.status == 202 and set(final.values()) <= {"DELIVERED", "FAILED_PERM"} and final
    assert "Traceback" not in json.dumps([a.body for a in answers])
    del client_id


# -- 5. hostile input over real HTTP, 6. logs ------------------------------------
def test_hostile_requests_over_http_and_clean_logs(
    own_stack: Any, own_gateway: Gateway, figures: FigureBook
) -> None:
    started = time.monotonic()
    client_id, key = own_gateway.new_client(credit_cents=100_000)
    url = own_stack.api_url
    cases: list[tuple[str, str, bytes, dict[str, str]]] = [
        ("POST", "/v1/messages", b"\xff\xfe\xfa{", {}),
        ("POST", "/v1/messages", b"[" * 100_000, {}),
        ("POST", "/v1/messages", json.dumps({"to": 1, "from": [], "text": {"a": 1}}).encode(), {}),
        ("POST", "/v1/messages", json.dumps({"to": "+1\x00\x1b", "from": "T\r\n",
                                             "text": "\x07"}).encode(), {}),
        ("POST", "/v1/messages", json.dumps(body_for(9)).encode(), {"Idempotency-Key": "k" * 8192}),
        ("POST", "/v1/messages", json.dumps(body_for(9)).encode(), {"X-Filler": "x" * 8192}),
        ("POST", "/v1/messages", b"{}" + b" " * 70_000, {}),
        ("GET", "/v1/messages/..%2F..%2Fv1%2Fme", b"", {}),
        ("GET", "/v1/messages/../../etc/passwd", b"", {}),
        ("GET", "/v1/messages/' OR '1'='1", b"", {}),
        ("POST", "/v1/dlr/..%2Fmock", b"{}", {}),
        ("POST", "/v1/messages", json.dumps({**body_for(9), "client_reference": "\ud800"}).encode(),
         {}),
        ("GET", "/v1/messages?cursor=" + "A" * 3000, b"", {}),
        ("GET", "/v1/messages?cursor=eyJ0IjpOYU4sIm0iOiJ4In0.AAAA", b"", {}),  # {"t":NaN,...}
        ("GET", "/v1/messages?client_reference=%ED%A0%80&to=%ED%A0%80", b"", {}),
        ("POST", "/v1/dlr/mock", b"\xff" * 100, {"X-Signature": "v1=" + "0" * 64,
                                                 "X-Signature-Timestamp": str(int(time.time()))}),
    ]
    codes = []
    for method, path, data, extra in cases:
        req = urllib.request.Request(url + path.replace(" ", "%20").replace("'", "%27"),
                                     data=data or None, method=method,
                                     headers={"Content-Type": "application/json", "X-API-Key": key,
                                              **extra})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        codes.append(status)
        assert status < 500, (path, status, raw[:200])
        body = json.loads(raw)
        if status >= 400:
            assert body["error"]["code"], body
    secret = own_gateway.container().settings.webhook_master_secret
    figures.record(Figures("5. hostile requests over real HTTP (chalice local)", len(cases), 0, 0,
                           0, 0, sum(c >= 500 for c in codes), time.monotonic() - started,
                           f"answers {sorted(set(codes))}; logs free of keys, secrets, phones"))
    assert_logs_clean(own_stack, [key, secret, *stage_secrets()], [body_for(9)["to"]])
    del client_id
