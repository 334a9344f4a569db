"""The app's Lambda functions, as ``chalice package`` turns them into a template.

Derived from the Chalice app itself (its routes and event sources) and from
``.chalice/config.json`` (timeouts, policy files): a function added to
``app.py`` shows up in the template, its policy and its alarms with no list
to keep up to date here.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.app import Chalice, SQSEventConfig
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_TIMEOUT
from chalice.utils import to_cfn_resource_name

from chalicelib.settings import stage_environment

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / ".chalice" / "config.json"
API_HANDLER = "api_handler"
# `chalice package` gives the REST API's function this fixed logical id.
API_LOGICAL_ID = "APIHandler"


@dataclass(frozen=True)
class LambdaFunction:
    """One function of the packaged app."""

    name: str  # Chalice's name: api_handler, sender, dlr, sweeper...
    timeout_s: int
    policy_file: str | None
    queue: str | None = None  # the SQS queue it consumes, if any

    @property
    def logical_id(self) -> str:
        return API_LOGICAL_ID if self.name == API_HANDLER else to_cfn_resource_name(self.name)

    @property
    def role_id(self) -> str:
        return to_cfn_resource_name(f"{self.name}_role")

    @property
    def sqs_event_id(self) -> str:
        return to_cfn_resource_name(f"{self.name}-sqs-event-source")

    @property
    def log_group_id(self) -> str:
        return f"{self.logical_id}LogGroup"


def load_config() -> dict[str, Any]:
    """``.chalice/config.json``."""
    config: dict[str, Any] = json.loads(CONFIG_FILE.read_text())
    return config


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_app(stage: str) -> Chalice:
    """``app.app``, imported with the stage's environment as Chalice does.

    If it was already imported (for another stage, say), that import stands;
    ``functions`` refuses queues that are not the stage's.
    """
    with _environment(stage_environment(stage, str(ROOT))):
        app: Chalice = importlib.import_module("app").app
    return app


def function_names(app: Chalice) -> list[str]:
    """Every Lambda function Chalice makes of ``app``."""
    names = [API_HANDLER] if app.routes else []
    names += [auth.name for auth in app.builtin_auth_handlers]
    names += [source.name for source in app.event_sources]
    names += [fn.name for fn in app.pure_lambda_functions]
    return names


def consumed_queues(app: Chalice) -> dict[str, str]:
    """Function name -> the SQS queue it consumes."""
    return {
        source.name: str(source.queue)
        for source in app.event_sources
        if isinstance(source, SQSEventConfig)
    }


def functions(app: Chalice, stage: str, queues: set[str]) -> list[LambdaFunction]:
    """The functions of ``app`` for ``stage``; ``queues`` are the stage's work queues."""
    config = load_config()
    consumed = consumed_queues(app)
    strangers = sorted(set(consumed.values()) - queues)
    if strangers:
        raise ValueError(f"app.py consumes {strangers}, not queues of stage {stage!r} "
                         "(chalicelib/resources.py); was it imported for another stage?")
    out = []
    for name in function_names(app):
        chalice_config = Config(chalice_stage=stage, function_name=name, config_from_disk=config)
        out.append(LambdaFunction(
            name=name,
            timeout_s=int(chalice_config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT),
            policy_file=chalice_config.iam_policy_file,
            queue=consumed.get(name),
        ))
    return out
