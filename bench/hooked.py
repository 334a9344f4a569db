"""Run a module with the bench's hooks on: what ``make bench`` starts its stacks' processes with.

    python -m bench.hooked localstack.runner --worker-id 1 --schedules
    python -m bench.hooked localstack.local_api --port 8080 --stage local

With ``AWS_CALLS_DIR`` set, this counts the process's AWS calls and times its
handlers (``bench/awscalls.py``), then runs the module as ``python -m`` would.
``bench/run.py`` hands it to ``localstack.stack.Stack`` as the launcher of the
API and runner processes, so the local stack itself knows nothing of the bench.

The hooks go in before the module runs, so before ``app`` is imported:

- the API (``localstack.local_api``): each request ``chalice local`` passes to
  the app is one invocation of ``api``;
- anything else (the runners): each call of a handler the app registers
  (``sender``, ``dlr``, ``callbacks``, ``sweeper``) is one invocation of it, as
  Lambda bills them.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Callable
from typing import Any

from bench import awscalls

API_MODULE = "localstack.local_api"


def role(module: str, args: list[str]) -> str:
    """The name the process's counts are filed under: ``api``, ``worker-<id>``, or the module's."""
    if module == API_MODULE:
        return "api"
    if "--worker-id" in args[:-1]:
        return f"worker-{args[args.index('--worker-id') + 1]}"
    return module.rsplit(".", 1)[-1]


class TimedHandlers(dict[str, Callable[..., Any]]):
    """A Chalice app's ``handler_map`` whose every handler is timed under its name."""

    def __setitem__(self, name: str, handler: Callable[..., Any]) -> None:
        super().__setitem__(name, awscalls.timed(name, handler))


def time_requests() -> None:
    """Time each request the local API passes to the app as one ``api`` invocation."""
    from chalice.app import Chalice

    Chalice.__call__ = awscalls.timed("api", Chalice.__call__)  # type: ignore[method-assign]


def time_handlers() -> None:
    """Time every handler an app registers (from the moment ``Chalice()`` is built)."""
    from chalice.app import Chalice

    original = Chalice.__init__

    def __init__(self: Chalice, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        timed = TimedHandlers()
        for name, handler in self.handler_map.items():
            timed[name] = handler
        self.handler_map = timed

    Chalice.__init__ = __init__  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m bench.hooked <module> [args...]", file=sys.stderr)
        return 2
    module, *args = argv
    name = role(module, args)
    if awscalls.install(name):
        if name == "api":
            time_requests()
        else:
            time_handlers()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
