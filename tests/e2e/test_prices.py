"""Prices per destination country over real HTTP, set as an operator sets them (the CLI
behind ``make price``): the hold and capture of a GB message, the flat price of a US one,
max_price_cents, and the quote."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from chalicelib.domain.provider_errors import Outcome
from tests.support.gateway import Gateway
from tests.support.outcomes import key_with_outcomes
from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e

GB_BODY = {"to": "+447700900123", "from": "TEST", "text": "Hello SMS Gateway!"}
US_BODY = {**GB_BODY, "to": "+1234567890"}


def admin(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": stack.endpoint, "STAGE": "local",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    return subprocess.run([sys.executable, "-m", "chalicelib.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_gb_price_set_by_the_operator_is_held_and_captured(gateway: Gateway,
                                                             stack: Any) -> None:
    # GIVEN a client (global price 5) whose GB price the operator sets to 7
    client_id, key = gateway.new_client(credit_cents=1000)
    done = admin(stack, "price", "--client", client_id, "--country", "GB", "--cents", "7")
    assert done.returncode == 0, done.stderr
    assert "GB  " in admin(stack, "prices", "--client", client_id).stdout
    refused = admin(stack, "price", "--client", client_id, "--country", "UK", "--cents", "7")
    assert refused.returncode == 2 and "did you mean GB" in refused.stderr

    # WHEN it asks for a quote, then sends a message to GB and one to the US
    quote = gateway.request("POST", "/v1/quote", key, {"to": GB_BODY["to"], "text": "hi"})
    assert (quote.status, quote.body["country"], quote.body["cost_cents"]) == (200, "GB", 7)
    over = gateway.request("POST", "/v1/messages", key, {**GB_BODY, "max_price_cents": 6})
    assert (over.status, over.body["error"]["code"]) == (422, "max_price_exceeded")
    assert gateway.container().accounts.balance(client_id).available == 1000
    gb_key = key_with_outcomes(gateway, client_id, [Outcome.ACCEPTED])
    us_key = key_with_outcomes(gateway, client_id, [Outcome.ACCEPTED], skip={gb_key})
    gb = gateway.request("POST", "/v1/messages", key, {**GB_BODY, "max_price_cents": 7},
                         {"Idempotency-Key": gb_key})
    us = gateway.request("POST", "/v1/messages", key, US_BODY, {"Idempotency-Key": us_key})
    assert (gb.status, us.status) == (202, 202), (gb.body, us.body)

    # THEN GB holds and captures 7 cents, the US the global 5
    finals = [gateway.wait_final(key, a.body["message_id"]) for a in (gb, us)]
    assert [(f["status"], f["cost_cents"]) for f in finals] == [("DELIVERED", 7),
                                                                ("DELIVERED", 5)]
    balance = gateway.wait_settled(client_id)
    assert (balance.available, balance.spent) == (1000 - 12, 12)
    assert gateway.request("GET", "/v1/me", key).body["country_prices"] == {"GB": 7}
