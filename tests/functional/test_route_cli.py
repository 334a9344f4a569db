"""The operator's routes and provider costs: the CLI against moto, and the make targets
(``make route``, ``routes``, ``route-delete``, ``provider-cost``, ``provider-costs``)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace

import boto3
import pytest

from chalicelib import cli
from chalicelib.container import Container
from chalicelib.domain.routing import Mode, Route, SenderType
from chalicelib.settings import Settings
from localstack import provision
from tests.support.emulator_server import serving_emulator
from tests.support.paths import ROOT

pytestmark = pytest.mark.functional


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the admin CLI in-process (against moto); its exit code, stdout and stderr."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def stored(aws: Container) -> list[Route]:
    return aws.route_book.routes()


US = ("route", "--name", "us", "--country", "US", "--providers", "twilio,aws-sms")


# -- routes ------------------------------------------------------------------------
def test_a_route_is_created_then_replaced_whole(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = admin(capsys, *US)
    assert code == 0 and out.startswith("created route us: country=US -> priority")
    assert "ROUTES_CACHE_TTL (30 s)" in out
    assert stored(aws) == [Route("us", ("twilio", "aws-sms"), country="US")]

    admin(capsys, "client", "--name", "acme")
    code, out, _ = admin(capsys, "route", "--name", "us", "--prefix", "+1415", "--client", "acme",
                         "--sender-type", "long_code", "--mode", "weighted",
                         "--weights", "70,30", "--providers", "twilio,aws-sms")
    assert code == 0 and out.startswith("replaced route us")
    assert stored(aws) == [Route("us", ("twilio", "aws-sms"), Mode.WEIGHTED, prefix="+1415",
                                 client_id="acme", sender_type=SenderType.LONG_CODE,
                                 weights=(70, 30))]  # the country is gone


def test_a_route_with_neither_country_nor_prefix_matches_every_destination(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = admin(capsys, "route", "--name", "all", "--providers", "mock")
    assert code == 0 and "all: every destination -> priority mock" in out
    assert stored(aws) == [Route("all", ("mock",))]


def test_routes_lists_most_specific_first_then_the_default_route(
        aws: Container, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    admin(capsys, "client", "--name", "acme")
    for args in (("--name", "all", "--providers", "mock"), US[1:],
                 ("--name", "sf", "--prefix", "+1415", "--mode", "weighted",
                  "--weights", "70,30", "--providers", "twilio,aws-sms"),
                 ("--name", "acme-uk", "--client", "acme", "--country", "GB",
                  "--mode", "cheapest", "--providers", "aws-sms,twilio")):
        assert admin(capsys, "route", *args)[0] == 0

    code, out, _ = admin(capsys, "routes")

    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["route", "match", "mode", "providers"]
    assert [line.split()[0] for line in lines[1:]] == ["acme-uk", "sf", "us", "all", "default"]
    assert lines[1].split()[1:] == ["client=acme", "country=GB", "cheapest", "aws-sms,", "twilio"]
    assert lines[2].split()[1:] == ["prefix=+1415", "weighted", "twilio:70,", "aws-sms:30"]
    assert lines[4].split()[1:4] == ["every", "destination", "priority"]
    assert "mock  (stage local's PROVIDER, as PROVIDERS is not set)" in lines[5]

    monkeypatch.setenv("PROVIDERS", "twilio,mock")
    assert "twilio, mock  (stage local's PROVIDERS)" in admin(capsys, "routes")[1]


def test_routes_shows_a_deployed_stages_stored_providers(
        aws: Container, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    ssm = boto3.client("ssm", region_name=aws.settings.region)
    ssm.put_parameter(Name="/sms-gateway/local/PROVIDERS", Value="aws-sms,twilio", Type="String")
    monkeypatch.setenv("SETTINGS_PATH", "/sms-gateway/local/")
    out = admin(capsys, "routes")[1]
    assert "aws-sms, twilio  (stage local's PROVIDERS)" in out.splitlines()[-1]
    monkeypatch.setenv("PROVIDERS", "mock")  # as on a function: the environment wins
    assert "mock  (stage local's PROVIDERS)" in admin(capsys, "routes")[1]


def test_a_route_is_deleted_once(aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    admin(capsys, *US)
    code, out, _ = admin(capsys, "route-delete", "--name", "us")
    assert code == 0 and out.startswith("deleted route us")
    assert stored(aws) == []
    code, out, err = admin(capsys, "route-delete", "--name", "us")
    assert (code, out) == (2, "") and "no route 'us'" in err


@pytest.mark.parametrize("args, problems", [
    (("--name", "default", "--providers", "mock"), ["'default' is reserved"]),
    (("--name", "us", "--providers", "twilio,nexmo"), ["unknown provider 'nexmo'"]),
    (("--name", "us", "--providers", ""), ["at least one provider"]),
    (("--name", "", "--providers", "mock"), ["name must match"]),
    (("--name", "us", "--providers", "mock", "--mode", "fastest"), ["mode must be one of"]),
    (("--name", "us", "--providers", "mock", "--sender-type", "pigeon"), ["sender type must be"]),
    (("--name", "us", "--providers", "mock", "--country", "USA"), ["ISO 3166"]),
    (("--name", "us", "--providers", "mock", "--country", "XX"), ["no telephone numbers"]),
    (("--name", "us", "--providers", "mock", "--prefix", "1415"), ["prefix must be +"]),
    (("--name", "us", "--providers", "mock,twilio", "--weights", "70,30"),
     ["weights are for MODE=weighted only"]),
    (("--name", "us", "--providers", "mock,twilio", "--mode", "weighted", "--weights", "70"),
     ["one weight per provider"]),
    (("--name", "us", "--providers", "mock,twilio", "--mode", "weighted", "--weights", "a,b"),
     ["whole numbers"]),
    (("--name", "Bad!", "--providers", "nexmo", "--country", "usa"),
     ["name must match", "unknown provider 'nexmo'", "ISO 3166"]),  # every problem at once
    (("--name", "us", "--providers", "mock", "--client", "ghost"), ["no client 'ghost'"]),
    (("--name", "us", "--providers", "mock", "--client", "Ghost!"), ["CLIENT must be"]),
])
def test_a_bad_route_is_refused_on_stderr_with_exit_2_and_nothing_written(
        aws: Container, capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
        problems: list[str]) -> None:
    code, out, err = admin(capsys, "route", *args)
    assert (code, out) == (2, "") and err.startswith("error: ")
    for problem in problems:
        assert problem in err, problem
    assert stored(aws) == []


def test_the_default_route_cannot_be_deleted(aws: Container,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = admin(capsys, "route-delete", "--name", "default")
    assert code == 2 and "change PROVIDERS instead" in err


# -- provider costs ----------------------------------------------------------------
def test_provider_costs_are_set_replaced_and_listed(
        aws: Container, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin(capsys, "provider-costs")[1].startswith("no provider costs")
    code, out, _ = admin(capsys, "provider-cost", "--provider", "twilio", "--country", "us",
                         "--micros", "7900")
    assert code == 0 and out.startswith("twilio costs 7900 micro-dollars (0.0079 USD) per part "
                                        "in US")
    admin(capsys, "provider-cost", "--provider", "aws-sms", "--country", "US", "--micros", "0")
    admin(capsys, "provider-cost", "--provider", "twilio", "--country", "US", "--micros", "8100")
    assert aws.route_book.costs() == {("twilio", "US"): 8100, ("aws-sms", "US"): 0}

    lines = admin(capsys, "provider-costs")[1].splitlines()
    assert [line.split() for line in lines[1:]] == [["aws-sms", "US", "0", "0"],
                                                    ["twilio", "US", "8100", "0.0081"]]


@pytest.mark.parametrize("provider, country, micros, problem", [
    ("nexmo", "US", "7900", "unknown provider 'nexmo'"),
    ("twilio", "USA", "7900", "ISO 3166"),
    ("twilio", "XX", "7900", "no telephone numbers"),
    ("twilio", "US", "-1", "micros must be a whole number of 0 or more"),
    ("twilio", "US", "7.9", "micros must be a whole number"),
    ("twilio", "US", "", "micros must be a whole number"),
])
def test_a_bad_cost_is_refused_on_stderr_with_exit_2_and_nothing_written(
        aws: Container, capsys: pytest.CaptureFixture[str], provider: str, country: str,
        micros: str, problem: str) -> None:
    code, out, err = admin(capsys, "provider-cost", "--provider", provider, "--country",
                           country, "--micros", micros)
    assert (code, out) == (2, "") and problem in err
    assert aws.route_book.costs() == {}


# -- the make targets --------------------------------------------------------------
def dry_run(*args: str) -> str:
    """The command ``make -n`` would run for the admin CLI."""
    done = subprocess.run(["make", "-n", "-s", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=True)
    lines = done.stdout.replace("\\\n", " ").splitlines()  # continued lines joined
    (command,) = [line for line in lines if "chalicelib.cli" in line]
    return " ".join(command.split())


def test_make_route_passes_each_variable_and_leaves_out_those_not_given() -> None:
    full = dry_run("route", "NAME=us", "COUNTRY=US", "PROVIDERS=twilio,aws-sms",
                   "PREFIX=+1415", "CLIENT=acme", "SENDER_TYPE=long_code", "MODE=weighted",
                   "WEIGHTS=70,30")
    for option in ('--name "us"', '--providers "twilio,aws-sms"', '--country "US"',
                   '--prefix "+1415"', '--client "acme"', '--sender-type "long_code"',
                   '--mode "weighted"', '--weights "70,30"'):
        assert option in full, option
    bare = dry_run("route", "NAME=all", "PROVIDERS=mock")
    assert "--country" not in bare and "--prefix" not in bare and "--weights" not in bare
    assert 'provider-cost --provider "twilio" --country "US" --micros "7900"' in dry_run(
        "provider-cost", "PROVIDER=twilio", "COUNTRY=US", "MICROS=7900")
    assert 'route-delete --name "us"' in dry_run("route-delete", "NAME=us")


def test_the_make_targets_against_an_emulator_keep_provider_variables_out_of_the_settings(
) -> None:
    """PROVIDERS and PROVIDER of ``make route`` / ``make provider-cost`` are the route's and
    the cost's; were they read as the stage's settings, a name the settings refuse would be
    a traceback instead of the route's refusal."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"AWS_ENDPOINT_URL", "PROVIDERS", "PROVIDER", "MAKEFLAGS"}}
    with serving_emulator() as url:
        provision.provision(replace(Settings.from_env({}), endpoint_url=url))

        def make(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True,
                                  text=True, timeout=60, env={**env, "AWS_ENDPOINT_URL": url})

        made = make("route", "NAME=us", "COUNTRY=US", "PROVIDERS=twilio,aws-sms")
        assert made.returncode == 0, made.stderr
        refused = make("route", "NAME=eu", "PROVIDERS=nexmo")
        assert refused.returncode == 2
        assert "error: route 'eu' refused: unknown provider 'nexmo'" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert make("provider-cost", "PROVIDER=twilio", "COUNTRY=US",
                    "MICROS=7900").returncode == 0
        assert "unknown provider 'nexmo'" in make("provider-cost", "PROVIDER=nexmo",
                                                  "COUNTRY=US", "MICROS=1").stderr
        listed = make("routes").stdout.splitlines()
        assert [line.split()[0] for line in listed] == ["route", "us", "default"]
        assert "twilio" in make("provider-costs").stdout
        assert make("route-delete", "NAME=us").returncode == 0
        assert [line.split()[0] for line in make("routes").stdout.splitlines()] == [
            "route", "default"]


def test_a_bad_stage_setting_is_an_error_message_not_a_traceback(
        aws: Container, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVIDERS", "nexmo")
    code, out, err = admin(capsys, "routes")
    assert (code, out) == (2, "") and "error: PROVIDERS must be one of" in err
