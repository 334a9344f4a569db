"""Hostile input: hypothesis on bodies, headers and ids, in-process (Chalice test client).

Zero 5xx, and every refusal is a JSON error. Schemathesis, over the OpenAPI
document, is ``make fuzz`` and an e2e test; these go outside the document.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.container import Container
from tests.support.clients import make_client

# Hundreds of reads with one key: the read throttle (429) would hide the answers under test.
pytestmark = [pytest.mark.functional,
              pytest.mark.settings(read_rate_limit_rps=10_000.0, read_rate_limit_burst=10_000)]

INJECTIONS = [
    "' OR '1'='1", "\"; DROP TABLE messages; --", "${jndi:ldap://x/a}", "{{7*7}}",
    "attribute_exists(message_id) OR 1=1", ":v0", "#name", "<script>alert(1)</script>",
    "../../etc/passwd", "%00", "\u0000", "\r\nX-Injected: 1", "$where", "{\"$gt\": \"\"}",
]
FIELDS = ["to", "from", "text", "client_reference", "callback_url", "send_at", "max_price_cents"]
HYPO = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                      st.text(max_size=40), st.sampled_from(INJECTIONS))
json_value = st.recursive(json_leaf, lambda children: st.lists(children, max_size=4)
                          | st.dictionaries(st.text(max_size=10), children, max_size=4),
                          max_leaves=20)
# Lone surrogates too: json.dumps writes them as "\\ud800" escapes, which json.loads reads back.
surrogates = st.text(alphabet=st.characters(categories=["Cs"]) | st.characters(max_codepoint=0x7F),
                     min_size=1, max_size=20)
hostile_field = st.one_of(json_value, st.sampled_from(INJECTIONS), surrogates,
                          st.text(alphabet=st.characters(codec="utf-8", max_codepoint=0x3000),
                                  max_size=200),
                          st.integers(min_value=-(2**70), max_value=2**70))
message_body = st.dictionaries(st.sampled_from(FIELDS + ["extra", "__proto__"]), hostile_field,
                               max_size=7)
deep = st.integers(min_value=100, max_value=50_000).map(lambda n: ("[" * n + "]" * n).encode())
raw_body = st.one_of(
    st.binary(max_size=300),  # mostly invalid UTF-8
    message_body.map(lambda b: json.dumps(b).encode()),
    deep,
    st.integers(min_value=60_000, max_value=70_000).map(
        lambda n: json.dumps({"to": "+14155550100", "from": "T", "text": "x" * n}).encode()),
)
header_text = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=64),
    st.sampled_from(INJECTIONS),
    st.integers(min_value=1, max_value=8).map(lambda k: "k" * (1024 * k)),  # up to 8 KiB
)
content_type = st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1",
                                "multipart/form-data", "application/x-www-form-urlencoded"])


def assert_json_answer(response: Any) -> dict[str, Any]:
    """No 5xx; a JSON body; a refusal names an error code and a message."""
    assert response.status_code < 500, (response.status_code, response.body[:300])
    body = json.loads(response.body)
    if response.status_code >= 400:
        assert body["error"]["code"] and body["error"]["message"], body
        assert "Traceback" not in response.body.decode(errors="replace")
    return dict(body)


def raw(api: Any) -> Any:
    """The test client without the OpenAPI answer check (the properties here are the point)."""
    return getattr(api.http, "_http", api.http)


@pytest.fixture
def key(aws: Container) -> str:
    return make_client(aws, credit_cents=10_000_000, rate_limit_rps=10_000, rate_limit_burst=10_000)


@HYPO
@given(body=raw_body, idem=st.none() | header_text, ctype=content_type)
def test_hostile_send_bodies_and_headers(api: Any, key: str, body: bytes, idem: str | None,
                                         ctype: str) -> None:
    headers = {"Content-Type": ctype, "X-API-Key": key}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    assert_json_answer(raw(api).post("/v1/messages", headers=headers, body=body))


@HYPO
@given(body=raw_body, ctype=content_type)
def test_hostile_quote_bodies(api: Any, key: str, body: bytes, ctype: str) -> None:
    assert_json_answer(raw(api).post("/v1/quote", headers={"Content-Type": ctype,
                                                           "X-API-Key": key}, body=body))


list_params = st.dictionaries(
    st.sampled_from(["status", "to", "since", "until", "client_reference", "limit", "cursor"]),
    st.one_of(st.text(max_size=40), st.sampled_from(INJECTIONS + ["NaN", "inf", "-1", "1e999"]),
              st.integers(min_value=1, max_value=4).map(lambda k: "A" * (1024 * k))),
    max_size=4)


@HYPO
@given(params=list_params)
def test_hostile_list_queries_are_refused_as_json(api: Any, key: str,
                                                  params: dict[str, str]) -> None:
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
    response = raw(api).get(f"/v1/messages?{query}", headers={"X-API-Key": key})
    answer = assert_json_answer(response)
    if response.status_code >= 400:
        assert answer["error"]["code"] in {"validation_error", "invalid_cursor", "unprocessable"}


@HYPO
@given(api_key=header_text, extra=st.dictionaries(
    st.sampled_from(["X-Forwarded-For", "User-Agent", "Accept", "X-Amz-Target", "Cookie"]),
    header_text, max_size=3))
def test_hostile_api_keys_and_headers_are_401_json(api: Any, api_key: str,
                                                   extra: dict[str, str]) -> None:
    body = json.dumps({"to": "+14155550100", "from": "T", "text": "x"}).encode()
    response = raw(api).post("/v1/messages", body=body,
                             headers={"Content-Type": "application/json", "X-API-Key": api_key,
                                      **extra})
    assert assert_json_answer(response)["error"]["code"] == "unauthorized"


@HYPO
@given(ident=st.one_of(st.sampled_from(INJECTIONS + ["..", "../v1/me", "..%2f..%2fme", "%2e%2e"]),
                       st.text(max_size=80)))
def test_hostile_ids_and_paths_are_404_json(api: Any, key: str, ident: str) -> None:
    for path in (f"/v1/messages/{quote(ident, safe='')}", f"/v1/messages/{quote(ident, safe='/')}",
                 f"/v1/dlr/{quote(ident, safe='')}"):
        method = "POST" if path.startswith("/v1/dlr") else "GET"
        response = raw(api).request(method, path, headers={"X-API-Key": key}, body=b"")
        answer = assert_json_answer(response)
        if response.status_code >= 400:
            assert response.status_code in {400, 401, 404, 405}, answer


@HYPO
@given(body=raw_body, ts=st.none() | header_text, sig=st.none() | header_text)
def test_hostile_delivery_reports_are_refused_as_json(api: Any, body: bytes, ts: str | None,
                                                      sig: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if ts is not None:
        headers["X-Signature-Timestamp"] = ts
    if sig is not None:
        headers["X-Signature"] = sig
    response = raw(api).post("/v1/dlr/mock", headers=headers, body=body)
    assert assert_json_answer(response)["error"]["code"] in {"unauthorized", "payload_too_large"}


def test_oversized_delivery_report_answer_is_documented(api: Any) -> None:
    # The checked client raises when an answer's status is not in the OpenAPI document.
    response = api.http.post("/v1/dlr/mock", headers={"Content-Type": "application/json"},
                             body=b"[" + b"0," * 40_000 + b"0]")
    assert response.status_code == 413
