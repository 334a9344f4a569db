"""Real HTTP servers on loopback that play a callback URL's owner: honest, redirecting,
slow or trickling. They keep what reached them and check no signature (that is the
receiver's job, ``tests/support/receiver.py``)."""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Seen:
    """One request as the server got it."""

    method: str
    path: str
    host: str
    body: bytes


@dataclass
class Script:
    """How the server answers: ``status`` (with ``location`` for a redirect), after
    ``delay_s``; or, with ``trickle_s``, a status line then one header byte per
    ``trickle_s`` for ``trickle_bytes`` bytes before a complete 200."""

    status: int = 200
    location: str = ""
    delay_s: float = 0.0
    trickle_s: float = 0.0
    trickle_bytes: int = 0


@dataclass
class HookServer:
    """A threaded HTTP server on ``host`` (``port`` 0: any free one)."""

    host: str = "127.0.0.1"
    port: int = 0
    script: Script = field(default_factory=Script)
    seen: list[Seen] = field(default_factory=list)
    cut_off: threading.Event = field(default_factory=threading.Event)
    tls: tuple[Path, Path] | None = None  # certificate and key: speak HTTPS
    sni: list[str] = field(default_factory=list)  # the names TLS clients asked for

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer((self.host, self.port), self._handler())
        self.server.daemon_threads = True
        if self.tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls)
            context.sni_callback = self._note_sni
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def url(self, host: str | None = None, path: str = "/hook") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def _note_sni(self, sock: Any, name: str | None, context: Any) -> None:
        self.sni.append(str(name))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                hook.seen.append(Seen(self.command, self.path, self.headers.get("Host", ""),
                                      self.rfile.read(length)))
                script = hook.script
                time.sleep(script.delay_s)
                if script.trickle_s:
                    self._trickle(script)
                    return
                self.send_response(script.status)
                if script.location:
                    self.send_header("Location", script.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _trickle(self, script: Script) -> None:
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    for _ in range(script.trickle_bytes):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        time.sleep(script.trickle_s)
                    self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")
                except OSError:  # the sender hung up: what the test wants to see
                    hook.cut_off.set()

            do_POST = do_GET = _any  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (its own CA) and its key, as PEM files in ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path

