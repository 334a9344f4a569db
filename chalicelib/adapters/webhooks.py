"""POSTs callbacks to client URLs so that no URL can reach inside (the SSRF guard).

- The URL is taken apart by the domain's ``callback_target``, the same rules that
  refused it with a 400 when a client gave it; one that still cannot be parsed
  is refused (``CallbackRefusedError``: the event is dropped and logged).
- The host is resolved once. Every address it resolves to must be public (or in
  ``CALLBACK_ALLOWED_NETWORKS``), and the connection goes to a vetted address,
  while the host name stays in ``Host``, SNI and the certificate check: there is
  no second lookup for DNS rebinding to answer differently.
- One deadline (``CALLBACK_TIMEOUT``) for the whole POST: the lookup (in a thread
  of its own, abandoned when it overruns), connect, TLS, sending, and reading the
  status line and headers. Each socket operation waits at most the time left and
  reading stops at the deadline, so a server that trickles bytes is cut off.
- No redirects (``http.client`` follows none): a 3xx is an answer that is not 2xx,
  retried on the callback schedule like any other.
- No answer (a timeout, a refused connection, a temporary DNS failure) is 0, which
  the service retries; a name that does not exist is a refusal.
"""

from __future__ import annotations

import http.client
import io
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalicelib.domain.callbacks import (
    CallbackTarget,
    CallbackUrlError,
    Network,
    callback_target,
    may_call_address,
)
from chalicelib.domain.errors import CallbackRefusedError

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Sequence[str]]
# getaddrinfo's answers that say the name has no address (any other failure may pass).
_NO_SUCH_NAME = frozenset(getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA",
                                                        "EAI_ADDRFAMILY") if hasattr(socket, n))


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (the system's resolver), in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


class Deadline:
    """The end of one POST, on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left; ``TimeoutError`` when there are none."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("the callback's deadline passed")
        return left


class _DeadlineReader(io.RawIOBase):
    """A socket's reading side that gives up at the deadline, however slowly bytes come."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        super().__init__()
        self._sock, self._deadline = sock, deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What ``http.client`` uses of a socket (send, read, close), each within the deadline."""

    def __init__(self, sock: socket.socket, deadline: Deadline) -> None:
        self._sock, self._deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(self._deadline.left())  # sendall's timeout bounds the whole call
        self._sock.sendall(data)

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))

    def close(self) -> None:
        self._sock.close()


class PinnedConnection(http.client.HTTPConnection):
    """HTTP to a vetted address; ``Host`` names the URL's host."""

    def __init__(self, target: CallbackTarget, address: str, deadline: Deadline,
                 context: ssl.SSLContext | None = None) -> None:
        super().__init__(target.host, target.port)
        self._address, self._deadline, self._context = address, deadline, context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), timeout=self._deadline.left())
        try:
            if self._context is not None:
                # The handshake's timeout bounds it as a whole; SNI and the certificate
                # check use the URL's host, never the address.
                sock.settimeout(self._deadline.left())
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self._deadline)


class WebhookSender:
    """The ``WebhookPoster`` port: one signed POST, within ``timeout_s`` from start to status."""

    def __init__(self, timeout_s: float, allow_private: bool,
                 allowed_networks: tuple[Network, ...] = (),
                 resolve: Resolver = system_resolver,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout_s
        self._allow_private = allow_private
        self._allowed = allowed_networks
        self._resolve = resolve
        self._ssl_context = ssl_context

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body``; the HTTP status, or 0 when no answer came in time.
        ``CallbackRefusedError`` when the URL may never be called."""
        deadline = Deadline(self._timeout)
        try:
            target = callback_target(url)
        except CallbackUrlError as exc:
            raise CallbackRefusedError(f"callback URL {exc}") from None
        try:
            addresses = self.vetted_addresses(target, deadline)
            return self._post_to(target, addresses, body, headers, deadline)
        except (OSError, http.client.HTTPException) as exc:
            log.info("callback not answered", extra={"reason": f"{type(exc).__name__}: {exc}"})
            return 0

    def vetted_addresses(self, target: CallbackTarget, deadline: Deadline) -> list[str]:
        """Where ``target`` may be reached: resolved once, every address checked.

        ``CallbackRefusedError`` for a name with no address or any address that is not
        allowed; ``OSError`` (a retry) for a lookup that failed for now or overran."""
        addresses = [target.literal] if target.literal else self._lookup(target, deadline)
        if not addresses:
            raise CallbackRefusedError("callback host has no address")
        if not self._allow_private:
            for address in addresses:
                if not may_call_address(address, self._allowed):
                    raise CallbackRefusedError("callback URL resolves to a private address")
        return addresses

    def _lookup(self, target: CallbackTarget, deadline: Deadline) -> list[str]:
        try:
            return list(_within(deadline.left(), lambda: self._resolve(target.host, target.port)))
        except socket.gaierror as exc:
            if exc.errno in _NO_SUCH_NAME:
                raise CallbackRefusedError(f"callback host does not resolve: {exc}") from None
            raise  # EAI_AGAIN and the like: try again later

    def _post_to(self, target: CallbackTarget, addresses: list[str], body: bytes,
                 headers: Mapping[str, str], deadline: Deadline) -> int:
        context = self._context() if target.scheme == "https" else None
        failure: OSError = ConnectionError("no address to connect to")
        for address in addresses:
            connection = PinnedConnection(target, address, deadline, context)
            try:
                connection.connect()
            except OSError as exc:  # the next vetted address, while time is left
                connection.close()
                failure = exc
                continue
            try:
                connection.request("POST", target.path, body=body, headers={
                    "Content-Type": "application/json", "User-Agent": "sms-gateway",
                    "Connection": "close", **headers})
                return int(connection.getresponse().status)
            finally:
                connection.close()
        raise failure

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context


def _within(seconds: float, work: Callable[[], Sequence[str]]) -> Sequence[str]:
    """``work()`` in a thread of its own; ``TimeoutError`` if it takes longer than ``seconds``
    (the thread is left to finish: getaddrinfo cannot be interrupted)."""
    result: list[Sequence[str]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="callback-dns", daemon=True).start()
    if not done.wait(seconds):
        raise TimeoutError(f"DNS took longer than {seconds:.1f} s")
    if errors:
        raise errors[0]
    return result[0]
