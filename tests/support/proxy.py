"""A forwarding HTTP proxy on a free local port: what sits between the stack's processes
and the emulator (their ``AWS_ENDPOINT_URL``), seeing every AWS call.

    proxy = Proxy()
    port = proxy.start(emulator_port)   # now http://127.0.0.1:<port> reaches the emulator
    ...
    proxy.requests                      # how many requests it forwarded
    proxy.operations["DynamoDB_20120810.UpdateItem"]
    proxy.stop()

It forwards each request as it came (``Host`` and the signature untouched) and answers
with what the emulator answered. ``exchange`` is the seam for a fault injector: a
subclass can forward the request (the emulator applies it) and return ``None``, and the
client gets no answer (its connection is closed), as when a response is lost.
"""

from __future__ import annotations

import http.client
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

# Headers that belong to one connection, not to the request or answer (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade"})
UPSTREAM_TIMEOUT_S = 60.0  # above SQS's longest long poll (20 s)


@dataclass(frozen=True)
class Request:
    """One request as the client sent it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def operation(self) -> str:
        """The AWS operation: ``X-Amz-Target`` (JSON protocols), else the query ``Action``."""
        target = self.headers.get("x-amz-target")
        if target:
            return target
        actions = parse_qs(self.body.decode("utf-8", "replace")).get("Action", [])
        return actions[0] if actions else f"{self.method} {self.path.split('?')[0]}"


@dataclass(frozen=True)
class Answer:
    """What the emulator answered."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (a killed process) is no error of the proxy's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Proxy:
    """Forwards every HTTP request it gets to one local port, counting them."""

    def __init__(self, host: str = "127.0.0.1", listen_port: int = 0) -> None:
        self.host = host
        self.listen_port = listen_port  # 0: a free one
        self.target_port = 0
        self.operations: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, target_port: int) -> int:
        """Listen on a free port, forwarding to ``target_port``; the port it listens on."""
        self.target_port = target_port
        self._server = _Server((self.host, self.listen_port), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="proxy",
                                        daemon=True)
        self._thread.start()
        return self.port

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> int:
        """How many requests it has seen."""
        with self._lock:
            return sum(self.operations.values())

    def seen(self, request: Request) -> None:
        with self._lock:
            self.operations[request.operation] += 1

    def exchange(self, request: Request) -> Answer | None:
        """Forward ``request`` and return the answer; ``None`` sends the client none."""
        return self.forward(request)

    def forward(self, request: Request) -> Answer:
        upstream = http.client.HTTPConnection(self.host, self.target_port,
                                              timeout=UPSTREAM_TIMEOUT_S)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP}
            upstream.request(request.method, request.path, body=request.body, headers=headers)
            response = upstream.getresponse()
            body = response.read()
            kept = [(k, v) for k, v in response.getheaders()
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            return Answer(response.status, response.reason, kept, body)
        finally:
            upstream.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _handler_for(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(self.command, self.path,
                              {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(length) if length else b"")
            proxy.seen(request)
            try:
                answer = proxy.exchange(request)
            except OSError as exc:
                self.send_error(502, f"the emulator did not answer: {exc}")
                return
            if answer is None:
                self.close_connection = True  # the answer is lost
                return
            self.send_response(answer.status, answer.reason)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _relay

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
            return

    return Handler
