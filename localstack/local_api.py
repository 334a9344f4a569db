"""``chalice local``, with API Gateway's greedy ``{proxy+}`` path matching.

Three additions to make the local API behave like API Gateway, and one to
make it take its environment as every other process does:

Chalice's local route matcher only matches a path variable against one path
segment, so ``/{proxy+}`` (the catch-all that answers unknown routes with a
JSON 404 on API Gateway) missed deeper paths locally and they got a 403.
This launcher adds the greedy fallback. And the server's listen backlog is
raised from socketserver's 5, which reset connections under 40 concurrent
clients. And any method (TRACE, QUERY...) reaches the app, which answers a
JSON 405, instead of http.server's HTML 501. And a variable set in the
environment wins over the stage's value in ``.chalice/config.json``: Chalice
itself copies the stage's variables over ``os.environ`` before it imports
``app.py``, so ``PHONE_VALIDATION=strict make up`` would otherwise change
nothing. Then it runs the real ``chalice local`` command with the given
arguments.

    python -m localstack.local_api --port 8080 --stage local
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlparse

from chalice.local import ChaliceRequestHandler, MatchResult, RouteMatcher, ThreadedHTTPServer

GREEDY = "/{proxy+}"
_original = RouteMatcher.match_route


def _match_route(self: Any, url: str) -> MatchResult:
    try:
        return _original(self, url)
    except ValueError:
        if GREEDY not in self.route_urls:
            raise
        parsed = urlparse(url)
        query = parse_qs(parsed.query, keep_blank_values=True)
        return MatchResult(GREEDY, {"proxy": parsed.path.lstrip("/")}, query)


def _any_method(self: Any, name: str) -> Any:
    if name.startswith("do_"):
        return self._generic_handle
    raise AttributeError(name)


def install() -> None:
    """Make every local gateway (chalice local, chalice.test) match greedily."""
    RouteMatcher.match_route = _match_route  # type: ignore[method-assign]
    ThreadedHTTPServer.request_queue_size = 256
    # http.server answers methods it has no handler for with an HTML 501; send
    # them to the app, which answers a JSON 405 as API Gateway's routing would.
    ChaliceRequestHandler.__getattr__ = _any_method


def keep_explicit_environment(explicit: Mapping[str, str] | None = None) -> None:
    """Let the stage's variables fill in only what ``explicit`` (the environment) leaves unset."""
    from chalice.cli.factory import CLIFactory

    given = set(os.environ if explicit is None else explicit)
    load = CLIFactory.load_chalice_app

    def load_chalice_app(self: CLIFactory, environment_variables: Mapping[str, str] | None = None,
                         validate_feature_flags: bool | None = True) -> Any:
        if environment_variables is not None:
            environment_variables = {k: v for k, v in environment_variables.items()
                                     if k not in given}
        return load(self, environment_variables, validate_feature_flags)

    CLIFactory.load_chalice_app = load_chalice_app  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    install()
    keep_explicit_environment()
    from localstack import loggroups

    loggroups.install("api")  # before chalice imports the app, which builds its logger
    from chalice.cli import main as chalice_main

    sys.argv = ["chalice", "local", *argv]
    result: int = chalice_main()
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
