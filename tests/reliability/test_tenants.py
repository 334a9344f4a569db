"""Tenants and secrets, in-process: other clients' ids, stored secrets, signatures, SSRF."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import boto3
import pytest

from chalicelib.adapters.webhooks import CallbackRefusedError, WebhookSender
from chalicelib.container import Container
from chalicelib.domain.dlr_signature import sign
from chalicelib.domain.signing import derive_secret
from tests.support.clients import client_id_of, make_client
from tests.support.http import as_json, post

pytestmark = pytest.mark.functional

BODY = {"to": "+14155550123", "from": "TEST", "text": "tenant"}
DLR_SECRET = "test-dlr-secret"


def test_every_route_with_another_clients_message_id_is_404(api: Any, aws: Container) -> None:
    owner, intruder = make_client(aws), make_client(aws)
    theirs = as_json(post(api, owner, BODY, {"Idempotency-Key": "shared"}))["message_id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    h = {"X-API-Key": intruder, "Content-Type": "application/json"}
    for method, path in (("GET", "/v1/messages/{}"), ("POST", "/v1/messages/{}/cancel")):
        mine = api.http.request(method, path.format(theirs), headers=h, body=b"")
        nobody = api.http.request(method, path.format(unknown), headers=h, body=b"")
        assert mine.status_code == 404, (method, path, mine.body)
        # Nothing tells "someone else's" from "nobody's".
        assert json.loads(mine.body)["error"]["code"] == json.loads(nobody.body)["error"]["code"]
    listed = as_json(api.http.get("/v1/messages", headers=h))
    assert theirs not in json.dumps(listed)
    # The same Idempotency-Key is another message for another client, never a replay of theirs.
    again = post(api, intruder, BODY, {"Idempotency-Key": "shared"})
    assert again.status_code == 202 and as_json(again)["message_id"] != theirs
    assert again.headers.get("Idempotent-Replayed") is None
    assert aws.messages.get(theirs).status.value == "QUEUED"  # type: ignore[union-attr]


def _all_items(aws: Container) -> str:
    ddb = boto3.client("dynamodb", region_name=aws.settings.region)
    dump = []
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            dump.append(json.dumps(page["Items"]))
    return "\n".join(dump)


def test_api_keys_and_webhook_secrets_are_not_stored_in_plaintext(api: Any, aws: Container) -> None:
    keys = [make_client(aws, callback_url="https://example.com/hook") for _ in range(3)]
    for key in keys:
        assert post(api, key, BODY).status_code == 202
    secrets = [derive_secret(aws.settings.webhook_master_secret, client_id_of(aws, k), 1)
               for k in keys]
    stored = _all_items(aws)
    assert stored  # the scan saw the tables
    for value in [*keys, *secrets, aws.settings.webhook_master_secret, DLR_SECRET]:
        assert value not in stored, f"{value[:6]}... is stored in plaintext"


def _dlr(api: Any, body: dict[str, Any], secret: str, at: float,
         signature: str | None = None) -> Any:
    raw = json.dumps(body).encode()
    # Round away from now, so truncation cannot pull a timestamp back inside the window.
    ts = math.ceil(at) if at > time.time() else math.floor(at)
    headers = {"Content-Type": "application/json", "X-Signature-Timestamp": str(ts),
               "X-Signature": signature or sign(secret, ts, raw)}
    return api.http.post("/v1/dlr/mock", headers=headers, body=raw)


@pytest.mark.parametrize("case", ["wrong secret", "replayed after 301 s", "from 301 s ahead",
                                  "body tampered", "no signature", "v0 scheme"])
def test_delivery_report_with_bad_or_replayed_signature_is_401(api: Any, case: str) -> None:
    report = {"reference": "m-1", "provider_message_id": "mock-1", "status": "DELIVERED"}
    now = time.time()
    if case == "wrong secret":
        response = _dlr(api, report, "not-the-secret", now)
    elif case == "replayed after 301 s":
        response = _dlr(api, report, DLR_SECRET, now - 301)
    elif case == "from 301 s ahead":
        response = _dlr(api, report, DLR_SECRET, now + 301)
    elif case == "body tampered":
        ts = int(now)
        signature = sign(DLR_SECRET, ts, json.dumps({**report, "status": "UNDELIVERED"}).encode())
        response = _dlr(api, report, DLR_SECRET, now, signature)
    elif case == "v0 scheme":
        ts = int(now)
        signature = sign(DLR_SECRET, ts, json.dumps(report).encode()).replace("v1=", "v0=")
        response = _dlr(api, report, DLR_SECRET, now, signature)
    else:
        response = api.http.post("/v1/dlr/mock", headers={"Content-Type": "application/json"},
                                 body=json.dumps(report).encode())
    assert response.status_code == 401
    assert json.loads(response.body)["error"]["code"] == "unauthorized"


PRIVATE_URLS = [
    "http://127.0.0.1/hook", "http://localhost:8080/hook", "http://10.0.0.5/hook",
    "http://192.168.1.1/hook", "http://172.16.0.1/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://2130706433/hook",
    "http://0x7f000001/hook", "http://0.0.0.0/hook", "http://100.64.0.1/hook",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_callback_urls_resolving_to_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(CallbackRefusedError):
        WebhookSender(timeout_s=1, allow_private=False).post(url, b"{}", {})
