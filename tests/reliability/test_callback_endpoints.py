"""Hostile and slow callback endpoints beside an honest one, in-process.

Four tenants' messages go through the whole pipeline; their callback URLs answer
at once, sleep past the deadline, trickle their answer a byte at a time, or
redirect to an address inside. The honest tenant's events must be delivered on
their first receive, whatever the others do, and nothing may reach inside.
"""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

import pytest

from chalicelib.container import Container
from chalicelib.resources import CALLBACKS_TIMEOUT_S
from tests.support.books import audit
from tests.support.clients import client_id_of, make_client
from tests.support.figures import FigureBook, Figures
from tests.support.hook_servers import HookServer, Script
from tests.support.http import as_json, post
from tests.support.queues import as_event, invoke, receive, run
from tests.support.settings import ACCEPTS_ALL

pytestmark = pytest.mark.functional

PER_TENANT = 3
FINAL = {"DELIVERED", "FAILED_PERM", "CANCELLED"}


def _settle(api: Any, aws: Container, accepted: set[str]) -> None:
    names = aws.settings.names
    for _ in range(10):
        for function, queue in (("sender", names.send_queue), ("dlr", names.dlr_queue)):
            records = receive(aws, queue)
            if records:
                run(api, function, records)
        if all((m := aws.messages.get(i)) is not None and m.status.value in FINAL
               for i in accepted):
            return


@pytest.mark.settings(mock=ACCEPTS_ALL, callback_timeout_s=2.0, callback_allow_private=False,
                      callback_allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
def test_slow_and_hostile_endpoints_cannot_hold_back_an_honest_tenant(
        api: Any, aws: Container, figures: FigureBook) -> None:
    started = time.monotonic()
    inside = HookServer(host="127.0.0.2")  # what a redirect would reach
    servers = {
        "honest": HookServer(),
        "slow": HookServer(script=Script(delay_s=6)),
        "trickling": HookServer(script=Script(trickle_s=0.2, trickle_bytes=40)),
        "redirecting": HookServer(script=Script(status=302, location=inside.url())),
    }
    try:
        # GIVEN four tenants, each with its own callback URL, and their messages delivered
        accepted: set[str] = set()
        tenant_of: dict[str, str] = {}
        for name, server in servers.items():
            key = make_client(aws, callback_url=server.url())
            tenant_of[client_id_of(aws, key)] = name
            for n in range(PER_TENANT):
                body = {"to": f"+1415555{n:04d}", "from": "TEST", "text": name}
                accepted.add(as_json(post(api, key, body))["message_id"])
        _settle(api, aws, accepted)

        # WHEN the callbacks function works through their events, ten to a batch
        returned: list[str] = []
        batch_s: list[float] = []
        while records := receive(aws, aws.settings.names.callbacks_queue):
            by_id = {r["MessageId"]: json.loads(r["Body"])["client_id"] for r in records}
            began = time.monotonic()
            answer = invoke(api, "callbacks", as_event(records), lives_s=CALLBACKS_TIMEOUT_S)
            batch_s.append(time.monotonic() - began)
            returned += [tenant_of[by_id[f["itemIdentifier"]]]
                         for f in answer["batchItemFailures"]]
    finally:
        for server in [*servers.values(), inside]:
            server.close()

    # THEN the honest tenant got every event on its first receive; the others came back
    # alone, and nothing reached the address behind the redirect
    assert len(servers["honest"].seen) == PER_TENANT
    assert "honest" not in returned
    assert sorted(set(returned)) == ["redirecting", "slow", "trickling"]
    assert len(returned) == 3 * PER_TENANT
    assert inside.seen == []
    dlq = aws.queue(aws.settings.names.callbacks_dlq).url()
    assert aws.sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
    result = audit(aws, set(tenant_of), accepted)
    assert result.lost == 0
    figures.record(Figures(
        "6. slow, trickling and redirecting callback URLs beside an honest one (in-process)",
        len(accepted), result.lost, result.sent_twice, result.charged_twice, result.drift_cents,
        0, time.monotonic() - started,
        f"honest tenant: {len(servers['honest'].seen)}/{PER_TENANT} events delivered on the "
        f"first receive; {len(returned)} events of the other three returned alone for their "
        f"backoff; {len(batch_s)} batches, the longest {max(batch_s):.1f} s of the function's "
        f"{CALLBACKS_TIMEOUT_S} s; 0 requests reached the redirect target"))
