"""A client's callback endpoint: a real HTTP server on loopback.

It verifies each callback the way the README tells clients to, with the
Standard Webhooks reference library (``standardwebhooks``), and can fail on
purpose.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


def verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    """True if ``standardwebhooks`` accepts the callback with ``secret``."""
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


class Receiver:
    """Keeps the events that verify with ``secret``; answers 400 to the others.

    ``fail_next`` good events are answered 500 (and not kept) before it answers 200 again.
    ``posts`` holds every request's body and headers, verified or not.
    """

    def __init__(self, secret: str = "") -> None:
        self.events: list[dict[str, Any]] = []
        self.posts: list[tuple[bytes, dict[str, str]]] = []
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
                headers = dict(self.headers.items())
                receiver.posts.append((body, headers))
                if not (receiver.secret and verifies(receiver.secret, body, headers)):
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
