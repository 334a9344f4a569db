"""The embedded AWS emulator: moto's server, with DynamoDB writes made atomic.

moto's server handles requests on threads, and its DynamoDB backend has no
locks: two concurrent conditional UpdateItems on one item can both pass their
condition and both apply. Real DynamoDB never does that, and the gateway's
money rests on it (seen here: 22 messages accepted on credit for 20 under 40
concurrent requests). This launcher runs the same moto application and
serializes DynamoDB requests only; SQS long polls and the rest stay concurrent.

    python localstack/emulator.py --host 127.0.0.1 --port 4566
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

DYNAMODB_TARGET = "DynamoDB_"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SerializeDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, as if per-item atomic."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            with self._lock:
                # Materialize the body inside the lock: moto may answer lazily.
                return [b"".join(self._app(environ, start_response))]
        return self._app(environ, start_response)


def make_app() -> WsgiApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return SerializeDynamoDB(DomainDispatcherApplication(create_backend_app))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded AWS emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from werkzeug.serving import run_simple

    run_simple(args.host, args.port, make_app(), threaded=True,
               request_handler=MotoRequestHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
