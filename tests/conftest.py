"""Fixtures by cost: functional (moto in-process) and end-to-end (a real local stack)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.paths import ROOT

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_ENDPOINT_URL", None)  # functional tests use moto in-process
os.environ.pop("AWS_PROFILE", None)

from chalicelib.container import Container  # noqa: E402
from chalicelib.settings import Settings  # noqa: E402
from tests.support.settings import changed, functional_settings  # noqa: E402


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    """Fast settings for functional tests (stage ``local``, no endpoint: moto in-process).

    A ``settings`` mark changes them (a module's mark first, then the test's).
    """
    fast = functional_settings()
    for mark in reversed(list(request.node.iter_markers("settings"))):
        fast = changed(fast, **mark.kwargs)
    return fast


@pytest.fixture
def aws(settings: Settings) -> Iterator[Container]:
    """moto in-process with the stage's resources provisioned from infra/."""
    from localstack import provision

    with provision.in_process(settings) as container:
        yield container


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A local callback receiver that verifies Standard Webhooks signatures."""
    from tests.support.receiver import Receiver

    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def api(aws: Container) -> Iterator[Any]:
    """Chalice's test client over the app, against moto."""
    from chalice.test import Client

    from app import app
    from localstack import local_api

    local_api.install()

    from tests.support.openapi import CheckedHttp

    with Client(app, stage_name="local", project_dir=str(ROOT)) as client:
        client._http_client = CheckedHttp(client.http)  # every answer meets the OpenAPI document
        yield client



# End-to-end modules that start stacks of their own; every other e2e module shares the
# session's stack (tests/e2e/conftest.py).
OWN_STACKS = ("tests/e2e/test_bench_smoke.py",
              "tests/e2e/test_twilio.py", "tests/e2e/test_aws_sms.py",
              "tests/e2e/test_routing.py", "tests/e2e/test_pacing.py",
              "tests/e2e/test_validity.py", "tests/browser/test_console.py")


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under xdist (``make test``): the tests of the shared e2e stack go to one worker, so
    one stack serves them all; each module with a stack of its own keeps its tests on one
    worker too (its module-scoped stack starts once); every other test goes to whichever
    worker is free.

    pytest-xdist's own ``loadgroup`` renames node ids in a way pytest 9 ignores, so
    the grouping is this scheduler's scope instead.
    """
    from xdist.scheduler import LoadScopeScheduling

    class SharedStackScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module in OWN_STACKS:
                return module
            return "shared-e2e-stack" if nodeid.startswith("tests/e2e/") else nodeid

    return SharedStackScheduling(config, log)
