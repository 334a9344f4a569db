"""``make providers``: what an operator sees of each provider, against moto."""

from __future__ import annotations

import argparse
import re
import time

import pytest

from chalicelib import cli
from chalicelib.container import Container
from chalicelib.domain.pacing import pace_limit

pytestmark = pytest.mark.functional


def sections(out: str) -> dict[str, dict[str, str]]:
    """The output as {provider: {label: text}}."""
    found: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            current = found.setdefault(line.strip(), {})
        else:
            label, _, text = line.strip().partition(":")
            current[label] = text.strip()
    return found


@pytest.mark.settings(providers=("mock", "twilio"), provider_mps={"mock": 5.0})
def test_each_provider_with_its_route_breaker_success_rate_and_pace(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN twilio has failed enough to open its breaker, mock has a few outcomes and a
    # booked bucket
    now, cfg = time.time(), aws.settings.breaker
    for _ in range(cfg.min_failures):
        aws.health.record("twilio", now, cfg, failed=1)
    aws.health.record("mock", now, cfg, ok=3)
    aws.health.record("mock", now, cfg, failed=1)
    assert aws.pacer.take("mock", pace_limit(5.0), 10, now).allowed  # books 2 s

    # WHEN the operator asks
    assert cli.providers(aws, argparse.Namespace()) == 0
    shown = sections(capsys.readouterr().out)

    # THEN every provider is there, each with what it is doing
    assert list(shown) == ["mock", "aws-sms", "twilio"]
    mock, aws_sms, twilio = shown["mock"], shown["aws-sms"], shown["twilio"]
    assert mock["usable"] == "yes"
    assert mock["default route"] == "yes, 1 of 2 (mock, twilio)"
    assert mock["breaker"] == "closed (opened 0 times)"
    assert mock["window"].startswith("3 ok, 1 failed: 75% success, since ")
    assert mock["pace"].startswith("5 parts/s (PROVIDER_MPS; sent at most 4.55), booked ")
    assert "idle" not in mock["pace"]
    assert twilio["usable"].startswith("no: PROVIDER=twilio needs TWILIO_ACCOUNT_SID")
    assert twilio["default route"] == "yes, 2 of 2 (mock, twilio)"
    opened = re.fullmatch(r"open since \S+Z, next probe in (\d+) s \(opened 1 time\)",
                          twilio["breaker"])
    assert opened and 0 < int(opened.group(1)) <= cfg.cooldown_s
    assert twilio["window"] == (f"no outcomes in the current window (BREAKER_WINDOW "
                                f"{cfg.window_s:g} s)")
    assert twilio["pace"] == "no cap (PROVIDER_MPS does not name it)"
    assert aws_sms["default route"] == "no"
    assert aws_sms["breaker"] == "closed (opened 0 times)"


def test_a_half_open_breaker_says_the_next_send_is_a_probe(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = aws.settings.breaker
    long_ago = time.time() - cfg.cooldown_s - 1
    for _ in range(cfg.min_failures):
        aws.health.record("mock", long_ago, cfg, failed=1)

    assert cli.providers(aws, argparse.Namespace()) == 0
    mock = sections(capsys.readouterr().out)["mock"]

    assert mock["breaker"].startswith("half-open since ")
    assert "the next send is a probe" in mock["breaker"]
    assert mock["pace"] == "no cap (PROVIDER_MPS does not name it)"


def test_make_providers_runs_the_command_with_the_stages_settings(
        aws: Container, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDER_MPS", "mock=2.5")
    assert cli.main(["providers"]) == 0
    mock = sections(capsys.readouterr().out)["mock"]
    assert mock["pace"] == "2.5 parts/s (PROVIDER_MPS; sent at most 2.27), idle"
    assert mock["window"].startswith("no outcomes")
