"""A client's callback endpoint: a real HTTP server on loopback.

It verifies each signature the way the README tells clients to, and can fail
on purpose.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chalicelib.domain.signing import verify


class Receiver:
    """Keeps the events whose signature verifies with ``secret``; answers 400 to the others.

    ``fail_next`` good events are answered 500 (and not kept) before it answers 200 again.
    """

    def __init__(self, secret: str = "") -> None:
        self.events: list[dict[str, Any]] = []
        self.rejected = 0
        self.fail_next = 0
        self.secret = secret
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(receiver.secret, self.headers.get("X-Signature-Timestamp"),
                            self.headers.get("X-Signature"), body, time.time())
                if not ok:
                    receiver.rejected += 1
                    status = 400
                elif receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = 500
                else:
                    receiver.events.append(json.loads(body))
                    status = 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
