"""A fault injector: an HTTP proxy between the gateway and the AWS emulator that lets a
request reach the emulator (so a write is applied) and then loses its answer.

The answer is lost one of two ways, as on a real network: the connection closes with
no answer (botocore sees ``ConnectionClosedError``), or a 500 ``InternalServerError``
comes back, which DynamoDB documents as "the request may or may not have been
processed". botocore retries both, so the gateway sees the repeat of a write that
already happened: exactly the fault a money write must survive.

    with FaultyProxy(emulator_url, lose=LoseNth("TransactWriteItems", 3)) as proxy:
        settings = replace(settings, endpoint_url=proxy.url)

The proxy also runs alone (``python -m tests.support.faults --target URL --port N
--lose-rate 0.1``) so a whole local stack can sit behind it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

DYNAMODB_PREFIX = "DynamoDB_20120810."
# Operations that write: their answers are the ones worth losing.
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems",
                             "BatchWriteItem"})
HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "proxy-connection", "upgrade", "te", "trailer"})

# Decides, for each DynamoDB operation that reached the emulator, whether its answer is lost.
LosePolicy = Callable[[str], bool]


class LoseNth:
    """Lose the answer of the ``n``-th call of ``operation`` (1-based), and only that one."""

    def __init__(self, operation: str, n: int) -> None:
        self._operation = operation
        self._n = n
        self._seen = 0
        self._lock = threading.Lock()

    def __call__(self, operation: str) -> bool:
        if operation != self._operation:
            return False
        with self._lock:
            self._seen += 1
            return self._seen == self._n


class LoseRate:
    """Lose the answers of a share ``rate`` of DynamoDB writes, drawn from a seeded random."""

    def __init__(self, rate: float, seed: int = 16, writes: frozenset[str] = DYNAMODB_WRITES,
                 ) -> None:
        self._rate = rate
        self._writes = writes
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, operation: str) -> bool:
        if operation not in self._writes:
            return False
        with self._lock:
            return self._random.random() < self._rate


def _never(operation: str) -> bool:
    return False


class FaultyProxy:
    """A threaded HTTP proxy to ``target`` that loses answers as ``lose`` decides."""

    def __init__(self, target: str, lose: LosePolicy = _never, port: int = 0) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.lose = lose
        self.calls: Counter[str] = Counter()  # DynamoDB operations that reached the emulator
        self.lost: Counter[str] = Counter()  # ... and whose answers were lost
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-proxy",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _count(self, operation: str, lost: bool) -> None:
        with self._lock:
            self.calls[operation] += 1
            if lost:
                self.lost[operation] += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target", "")
                operation = target[len(DYNAMODB_PREFIX):] if target.startswith(
                    DYNAMODB_PREFIX) else ""
                status, headers, answer = proxy._send(self.command, self.path, self.headers,
                                                      body)
                lost = bool(operation) and proxy.lose(operation)
                if operation:
                    proxy._count(operation, lost)
                if lost:
                    self._lose(status)
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _lose(self, status: int) -> None:
                # Alternate the two ways an answer gets lost.
                if sum(proxy.lost.values()) % 2:
                    self.close_connection = True  # no answer at all
                    return
                error = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#"
                                    "InternalServerError",
                                    "message": "Internal server error (injected)"}).encode()
                self.send_response(500)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(error)))
                self.end_headers()
                self.wfile.write(error)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler

    def _send(self, method: str, path: str, headers: Any, body: bytes,
              ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._target, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}
            connection.request(method, path, body=body, headers=forwarded)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An HTTP proxy that loses DynamoDB answers.")
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lose-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    proxy = FaultyProxy(args.target, LoseRate(args.lose_rate, args.seed), args.port)
    with proxy:
        print(proxy.url, flush=True)
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
