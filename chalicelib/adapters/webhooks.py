"""POSTs callbacks to client URLs, refusing private addresses (SSRF guard)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from chalicelib.domain.callbacks import is_public_address, url_problem
from chalicelib.domain.errors import CallbackRefusedError


class WebhookSender:
    def __init__(self, timeout_s: float, allow_private: bool) -> None:
        self._timeout = timeout_s
        self._allow_private = allow_private

    def check(self, url: str) -> None:
        """Refuse URLs that are malformed or resolve to non-public addresses."""
        problem = url_problem(url)
        if problem:
            raise CallbackRefusedError(f"callback URL {problem}")
        if self._allow_private:
            return
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise CallbackRefusedError(f"callback host does not resolve: {exc}") from exc
        for info in infos:
            if not is_public_address(str(info[4][0])):
                raise CallbackRefusedError("callback URL resolves to a private address")

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body``; the HTTP status, or 0 when no answer came."""
        self.check(url)
        request = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "sms-gateway", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, OSError):
            return 0
