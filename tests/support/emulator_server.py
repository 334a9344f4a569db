"""The embedded emulator (``localstack.emulator.make_app``) served from a thread, for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config


@contextmanager
def serving_emulator() -> Iterator[str]:
    """Serve the emulator on a free loopback port; yield its URL. On exit the server
    stops and moto's backends (the emulator's own included) are reset."""
    from moto.core.base_backend import BackendDict
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from werkzeug.serving import make_server

    from localstack import emulator

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, emulator.make_app(), threaded=True,
                         request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="emulator", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        BackendDict.reset()


def client(url: str, service: str, region: str = "us-east-1", **config: Any) -> Any:
    """A boto3 client of ``service`` at ``url``: dummy credentials, no retries."""
    return boto3.client(service, endpoint_url=url, region_name=region,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, **config))
