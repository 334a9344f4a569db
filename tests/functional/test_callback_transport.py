"""How callbacks travel: no redirects, one vetted address, one deadline, refusals at the edge.

Every server here is a real HTTP server on loopback (``tests/support/hook_servers.py``);
a test that must name a host resolves it with a resolver of its own, handed to the
``WebhookSender``.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.webhooks import WebhookSender
from chalicelib.container import Container
from chalicelib.domain.callbacks import retry_delay
from chalicelib.domain.errors import CallbackRefusedError
from chalicelib.domain.work import DONE, CallbackJob, RetryAfter, Step
from chalicelib.resources import CALLBACK_MARGIN_S, CALLBACKS_TIMEOUT_S
from chalicelib.services.callbacks import CallbackService
from tests.fakes.world import World
from tests.support.clients import client_id_of, make_client
from tests.support.hook_servers import HookServer, Script, self_signed
from tests.support.http import post
from tests.support.queues import as_event, invoke

pytestmark = pytest.mark.functional

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
EVENT = {"event_id": "e-1", "message_id": "m-1", "status": "DELIVERED"}


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[HookServer]:
    """Another host's server: where a redirect would lead."""
    server = HookServer()
    yield server
    server.close()


def sender(timeout_s: float = 2.0, **kwargs: Any) -> WebhookSender:
    """The guard on (only loopback allowed, for the local servers)."""
    return WebhookSender(timeout_s, allow_private=False,
                         allowed_networks=kwargs.pop("allowed", LOOPBACK), **kwargs)


def deliver(poster: WebhookSender, url: str, receives: int = 1) -> Step:
    """What the callback service (over fakes, with this real sender) makes of one event."""
    world = World()
    client = world.client()
    callbacks = CallbackService("master-secret", world.callbacks_queue, world.messages,
                                world.accounts, poster, world.telemetry)
    return callbacks.deliver(CallbackJob(client.client_id, url, EVENT), receives)


def job_for(aws: Container, url: str) -> CallbackJob:
    return CallbackJob(client_id_of(aws, make_client(aws)), url, EVENT)


# -- redirects ---------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("where", ["another host", "ftp"])
def test_a_redirect_is_not_followed_and_counts_as_not_delivered(
        hook: HookServer, other: HookServer, status: int, where: str) -> None:
    hook.script = Script(status=status, location=other.url() if where == "another host"
                         else f"ftp://127.0.0.1:{other.port}/x")
    assert sender().post(hook.url(), b"{}", {"X-Signature": "v1=secret"}) == status
    assert deliver(sender(), hook.url()) == RetryAfter(retry_delay(1))
    assert len(hook.seen) == 2 and other.seen == []  # nobody else got our signed body


def test_an_ftp_url_is_refused_and_never_called(hook: HookServer) -> None:
    url = f"ftp://127.0.0.1:{hook.port}/hook"
    with pytest.raises(CallbackRefusedError, match="http or https"):
        sender().post(url, b"{}", {})
    assert deliver(sender(), url) is DONE  # dropped, logged
    assert hook.seen == []


# -- one lookup, one vetted address ---------------------------------------------------
def test_dns_rebinding_cannot_move_the_connection(hook: HookServer) -> None:
    # The name first answers the allowed 127.0.0.1, then 127.0.0.2 (the "inside"), which
    # the guard would refuse; a second lookup must never happen.
    inside = HookServer(host="127.0.0.2", port=hook.port)
    answers = [["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]]
    asked: list[tuple[str, int]] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answers.pop(0)

    try:
        guarded = sender(allowed=(ipaddress.ip_network("127.0.0.1/32"),), resolve=rebinding)
        assert guarded.post(f"http://hooks.example:{hook.port}/hook", b"{}", {}) == 200
    finally:
        inside.close()
    assert asked == [("hooks.example", hook.port)]
    assert [(s.path, s.host) for s in hook.seen] == [("/hook", f"hooks.example:{hook.port}")]
    assert inside.seen == []


def test_a_name_with_any_address_outside_is_refused(hook: HookServer) -> None:
    guarded = sender(resolve=lambda host, port: ["127.0.0.1", "10.0.0.7"])
    with pytest.raises(CallbackRefusedError, match="private"):
        guarded.post(f"http://hooks.example:{hook.port}/hook", b"{}", {})
    assert hook.seen == []


def test_https_checks_the_certificate_and_sni_of_the_name_not_the_address(
        tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "hooks.example")
    server = HookServer(tls=(cert, key))
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        to_loopback = sender(resolve=lambda host, port: ["127.0.0.1"], ssl_context=trusted)
        assert to_loopback.post(f"https://hooks.example:{server.port}/hook", b"{}", {}) == 200
        # The same address under a name the certificate does not carry: no answer.
        assert to_loopback.post(f"https://other.example:{server.port}/hook", b"{}", {}) == 0
    finally:
        server.close()
    assert server.sni[0] == "hooks.example"
    assert [s.host for s in server.seen] == [f"hooks.example:{server.port}"]


# -- one deadline ----------------------------------------------------------------
def test_a_server_that_trickles_its_answer_is_cut_off_at_the_deadline(hook: HookServer) -> None:
    # A byte every 0.2 s for 3 s, then a complete 200: each read is quick, the whole is not.
    hook.script = Script(trickle_s=0.2, trickle_bytes=15)
    assert sender(timeout_s=1.0).post(hook.url(), b"{}", {}) == 0
    assert hook.cut_off.wait(5)  # the sender hung up before the answer was complete


def test_the_deadline_counts_the_lookup_too(hook: HookServer) -> None:
    # DNS takes 0.6 s and the server 0.6 s: each alone fits in 1 s, both do not.
    hook.script = Script(delay_s=0.6)

    def slow_dns(host: str, port: int) -> list[str]:
        time.sleep(0.6)
        return ["127.0.0.1"]

    url = f"http://hooks.example:{hook.port}/hook"
    assert sender(timeout_s=1.0, resolve=slow_dns).post(url, b"{}", {}) == 0
    hook.script = Script()
    assert sender(timeout_s=1.0, resolve=slow_dns).post(url, b"{}", {}) == 200


def test_a_lookup_that_hangs_is_abandoned_at_the_deadline() -> None:
    def hanging(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["127.0.0.1"]

    assert sender(timeout_s=0.3, resolve=hanging).post("http://hooks.example/", b"{}", {}) == 0


# -- DNS failures ------------------------------------------------------------------
def test_a_temporary_dns_failure_is_retried_and_a_missing_name_is_dropped() -> None:
    def failing(errno: int) -> Any:
        def resolve(host: str, port: int) -> list[str]:
            raise socket.gaierror(errno, "as the resolver says")
        return resolve

    url = "https://hooks.example/hook"
    assert deliver(sender(resolve=failing(socket.EAI_AGAIN)), url, 3) == RetryAfter(
        retry_delay(3))
    assert deliver(sender(resolve=failing(socket.EAI_NONAME)), url, 3) is DONE


# -- CALLBACK_ALLOWED_NETWORKS -------------------------------------------------------
@pytest.mark.settings(callback_allow_private=False, callback_allowed_networks=LOOPBACK)
def test_allowed_networks_open_loopback_and_nothing_else(aws: Container, hook: HookServer) -> None:
    assert aws.callbacks.deliver(job_for(aws, hook.url()), 1) is DONE
    assert len(hook.seen) == 1 and json.loads(hook.seen[0].body) == EVENT
    for url in ("http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
                f"http://[::1]:{hook.port}/hook", "http://[64:ff9b::7f00:1]/hook",
                "http://192.168.1.1/hook", "http://[fd00::1]/hook"):
        with pytest.raises(CallbackRefusedError):
            aws.callbacks._poster.post(url, b"{}", {})  # type: ignore[attr-defined]
        assert aws.callbacks.deliver(job_for(aws, url), 1) is DONE  # dropped, not retried
    assert len(hook.seen) == 1


# -- refused when given, never a crash at delivery ---------------------------------------
URLS_ONCE_CRASHING = ["http://[::1/hook", "http://example.com:99999/", "http://example.com:8x/",
                      "http://[fe80::zz]/", "http://exa mple.com/", "http://example.com/\x01",
                      f"http://{'a' * 64}.example.com/", "http://\u2488.example.com/"]


def test_a_url_that_cannot_be_called_is_refused_when_given(api: Any, aws: Container) -> None:
    # 400 when the OpenAPI document's pattern refuses it too; 422 when only the sender's
    # rules do (a label over 63 characters, one that will not IDNA-encode, a bad port).
    key = make_client(aws)
    for url in URLS_ONCE_CRASHING:
        body = {"to": "+14155550123", "from": "TEST", "text": "hi", "callback_url": url}
        response = post(api, key, body)
        assert response.status_code in (400, 422), (url, response.body)
        assert json.loads(response.body)["error"]["field"] == "callback_url"
    assert post(api, key, {"to": "+14155550123", "from": "TEST", "text": "hi",
                           "callback_url": "http://exa mple.com/"}).status_code == 400
    assert post(api, key, {"to": "+14155550123", "from": "TEST", "text": "hi",
                           "callback_url": f"http://{'a' * 64}.example.com/"}).status_code == 422


def test_the_cli_refuses_a_url_that_cannot_be_called(aws: Container,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib.cli import main

    assert main(["client", "--name", "acme", "--credits", "1",
                 "--callback-url", "http://[::1/hook"]) == 2
    assert "--callback-url is not a valid URL" in capsys.readouterr().err


@pytest.mark.parametrize("url", URLS_ONCE_CRASHING)
def test_an_unparseable_url_already_queued_is_dropped_not_crashed(url: str) -> None:
    assert deliver(sender(), url) is DONE


# -- a slow tenant in a batch -----------------------------------------------------------
@pytest.mark.settings(callback_timeout_s=2.0, callback_allowed_networks=LOOPBACK,
                      callback_allow_private=False)
def test_slow_tenants_come_back_alone_and_the_others_are_delivered(api: Any,
                                                                   aws: Container) -> None:
    slow = [HookServer(script=Script(delay_s=5)) for _ in range(3)]
    fast = [HookServer() for _ in range(7)]
    try:
        for server in slow + fast:
            aws.callbacks_queue.send(job_for(aws, server.url()).body())
        records = []
        while len(records) < 10:
            got = aws.sqs.receive_message(QueueUrl=aws.callbacks_queue.url(),
                                          MaxNumberOfMessages=10, AttributeNames=["All"])
            records += got.get("Messages", [])
        by_id = {r["MessageId"]: json.loads(r["Body"])["url"] for r in records}
        # The invocation lives just long enough for one callback's deadline and its margin:
        # taken one after another, the slow three would leave no time for the rest.
        lives = aws.settings.callback_timeout_s + CALLBACK_MARGIN_S + 1
        answer = invoke(api, "callbacks", as_event(records), lives_s=lives)
    finally:
        for server in slow + fast:
            server.close()
    returned = {by_id[f["itemIdentifier"]] for f in answer["batchItemFailures"]}
    assert returned == {s.url() for s in slow}
    assert all(len(s.seen) == 1 for s in fast)


def test_the_callbacks_function_timeout_is_the_one_the_budget_assumes() -> None:
    from infra.template import CALLBACK_TIMEOUT_S
    from tests.support.paths import ROOT

    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    overrides = [config.get("lambda_functions", {}).get("callbacks", {})] + [
        stage.get("lambda_functions", {}).get("callbacks", {})
        for stage in config["stages"].values()]
    assert config["lambda_timeout"] == CALLBACKS_TIMEOUT_S == CALLBACK_TIMEOUT_S
    assert all("lambda_timeout" not in o for o in overrides)


@pytest.mark.settings(callback_timeout_s=2.0)
def test_an_invocation_without_time_for_a_whole_post_starts_none(api: Any, aws: Container,
                                                                 hook: HookServer) -> None:
    aws.callbacks_queue.send(job_for(aws, hook.url()).body())
    records = aws.sqs.receive_message(QueueUrl=aws.callbacks_queue.url(),
                                      AttributeNames=["All"])["Messages"]
    lives = aws.settings.callback_timeout_s + CALLBACK_MARGIN_S - 1
    answer = invoke(api, "callbacks", as_event(records), lives_s=lives)
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == [records[0]["MessageId"]]
    assert hook.seen == []  # it comes back in a second, to an invocation with time for it
