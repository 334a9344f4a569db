"""A local server that answers as Twilio's Programmable Messaging API is documented.

Twilio cannot be reached from the tests, so the Twilio adapter's end-to-end tests talk
to this instead. What it does, and where Twilio documents it:

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` and the Message resource JSON:
  "Messages resource" (twilio.com/docs/messaging/api/message-resource): every create needs
  a recipient (``To``), a sender (``From`` or ``MessagingServiceSid``) and content (``Body``,
  ``MediaUrl`` or ``ContentSid``); the first status is ``queued``, or ``accepted`` with a
  Messaging Service, whose ``num_segments`` is ``0`` until a sender is chosen.
- HTTP basic auth with an Account SID and Auth Token, or an API Key SID and secret:
  "Twilio API requests" (twilio.com/docs/usage/requests-to-twilio) and error 20003.
- Error answers ``{"code", "message", "more_info", "status"}`` with the codes' pages
  under twilio.com/docs/api/errors/.
- Status callbacks: the same page's "Twilio's request to the StatusCallback URL" (a
  form-encoded POST; ``MessageStatus`` and ``ErrorCode``, ``RawDlrDoneDate`` for most
  ``delivered``/``undelivered`` SMS; Twilio adds parameters without notice), signed with
  ``X-Twilio-Signature`` by the official package's ``RequestValidator``, keyed by the
  account's Auth Token ("Webhooks security", twilio.com/docs/usage/webhooks/webhooks-security).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hmac
import json
import math
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
TWILIO_API = "https://api.twilio.com"
MAX_BODY_CHARS = 1600
POLL_S = 0.05  # how soon stop() and close() return

# The titles of Twilio's error pages (docs/api/errors/<code>). 20003's and 21211's are the
# texts Twilio's answers carry, as public code quotes them.
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21602: "Message body is required",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
    21604: "'To' phone number is required to send a Message",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number "
           "for this destination/account",
    21609: "Invalid 'StatusCallback'",
    21617: "The concatenated message body exceeds the 1600 character limit",
}

# What a Message resource's error_message says for the delivery errors this server scripts.
DELIVERY_ERRORS: dict[int, str] = {
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
    30034: "US A2P 10DLC - Message from an Unregistered Number",
    30410: "Provider Timeout Error",
}

# The error code a final status carries unless the outcome names one.
DEFAULT_ERROR_CODES: dict[str, int | None] = {
    "delivered": None, "sent": None, "undelivered": 30003, "failed": 30008}

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
CREATE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
FETCH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>[^/]+)\.json$")

# GSM 03.38: the default alphabet (ESC included) and the extension table (two septets each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# An outcome: a final status ("delivered", "undelivered", "failed", or "sent" for a
# carrier that sends no receipt), or that status with the ErrorCode it carries.
Outcome = str | tuple[str, int]


def count_segments(body: str) -> int:
    """SMS parts for ``body``: GSM-7 160 / 153 a part, else UCS-2 70 / 67 UTF-16 units.

    An approximation of Twilio's count (it does not keep escape pairs or surrogate pairs
    whole across parts); the gateway's own segmentation is what the tests check.
    """
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body):
        units, single, part = sum(2 if c in GSM7_EXTENSION else 1 for c in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / part)


def rfc2822(at: datetime) -> str:
    """``Thu, 24 Aug 2023 05:01:45 +0000``, as Twilio's dates are written."""
    return email.utils.format_datetime(at.astimezone(UTC).replace(microsecond=0))


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error JSON."""
    return {"code": code, "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, as it arrived."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    form: dict[str, list[str]]
    user: str | None  # the basic-auth username (Account SID or API Key SID)

    def param(self, name: str) -> str | None:
        """The first value of form parameter ``name``."""
        values = self.form.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        """Header ``name``, whatever the case it was sent in."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass(frozen=True)
class CallbackAttempt:
    """One status callback this server posted, and what the receiver answered."""

    message_sid: str
    url: str
    params: dict[str, str]
    signature: str
    status: int | None  # the receiver's HTTP status; None when it gave no answer
    error: str | None = None


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Scripted:
    status: int
    code: int
    message: str
    retry_after: int | None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Callbacks are not redirected (urllib would follow a 30x anywhere)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class TwilioApi:
    """Twilio's Messages API on 127.0.0.1 and a free port; a context manager.

    ``accounts`` maps Account SIDs to Auth Tokens, ``api_keys`` maps API Key SIDs to
    (secret, Account SID). ``numbers``, when given, maps Account SIDs to the ``From``
    numbers they own; any other ``From`` is refused with 21606. With a Messaging Service
    and no ``From``, callbacks name ``service_sender`` as the sender Twilio chose.
    """

    def __init__(self, accounts: Mapping[str, str],
                 api_keys: Mapping[str, tuple[str, str]] | None = None,
                 numbers: Mapping[str, Collection[str]] | None = None,
                 callback_delay_s: float = 0.05, service_sender: str = "+15005550006") -> None:
        self.accounts = dict(accounts)
        self.api_keys = dict(api_keys or {})
        self.numbers = None if numbers is None else {k: set(v) for k, v in numbers.items()}
        self.callback_delay_s = callback_delay_s
        self.service_sender = service_sender
        # The final outcome of every message, or per destination ("To") with "delivered"
        # for the others.
        self.outcome: Outcome | dict[str, Outcome] = "delivered"
        # Parameters added to every callback, as Twilio adds parameters without notice.
        self.extra_callback_params: dict[str, str] = {}
        self._changed = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._callbacks: list[CallbackAttempt] = []
        self._messages: dict[str, dict[str, Any]] = {}
        self._callback_urls: dict[str, str] = {}
        self._failures: deque[_Scripted] = deque()
        self._outage: _Scripted | None = None
        self._hangs: deque[float] = deque()
        self._stopping = threading.Event()
        self._workers: list[threading.Thread] = []
        self._server: _Server | None = None
        self._opener = urllib.request.build_opener(_NoRedirects)

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> TwilioApi:
        """Serve on a free port of 127.0.0.1 (from a daemon thread)."""
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _Handler, self)
            threading.Thread(target=self._server.serve_forever, args=(POLL_S,), daemon=True,
                             name="twilio-api").start()
        return self

    def stop(self) -> None:
        """Stop serving, cut scripted hangs short and end the callback threads."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for worker in list(self._workers):
            worker.join(timeout=5)

    def __enter__(self) -> TwilioApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, where ``https://api.twilio.com`` would be."""
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what happened ------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first (a copy)."""
        with self._changed:
            return list(self._requests)

    @property
    def callbacks(self) -> list[CallbackAttempt]:
        """Every status callback posted, oldest first (a copy)."""
        with self._changed:
            return list(self._callbacks)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every Message resource created, oldest first (copies)."""
        with self._changed:
            return [dict(m) for m in self._messages.values()]

    def message(self, sid: str) -> dict[str, Any]:
        """The stored Message resource ``sid`` (a copy)."""
        with self._changed:
            return dict(self._messages[sid])

    def wait_for_callbacks(self, count: int, timeout: float = 5.0) -> list[CallbackAttempt]:
        """The callbacks once at least ``count`` were posted; fails after ``timeout`` s."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._callbacks) >= count, timeout):
                raise AssertionError(f"{len(self._callbacks)} callbacks in {timeout} s, wanted {count}")
            return list(self._callbacks)

    # -- scripting ----------------------------------------------------------------

    def fail_next(self, status: int = 429, code: int = 20429, message: str | None = None,
                  times: int = 1, retry_after: int | None = None) -> None:
        """The next ``times`` authenticated creates answer this error and create nothing.

        ``retry_after`` adds a ``Retry-After`` header (seconds). Twilio's 20429 page says
        a 429 is never processed and is safe to retry; it promises no such header for
        this API, so an adapter must also cope without one.
        """
        text = message or ERROR_MESSAGES.get(code, f"Error {code}")
        with self._changed:
            self._failures.extend(_Scripted(status, code, text, retry_after) for _ in range(times))

    def fail_all(self, status: int = 503, code: int = 20503, message: str | None = None) -> None:
        """Every authenticated create answers this error until ``recover()`` (an outage)."""
        text = message or ERROR_MESSAGES.get(code, f"Error {code}")
        with self._changed:
            self._outage = _Scripted(status, code, text, None)

    def recover(self) -> None:
        """End the outage ``fail_all`` began."""
        with self._changed:
            self._outage = None

    def hang_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` creates wait ``seconds`` before they are handled.

        The message is still created and answered late: a client that timed out has
        lost the answer to a message Twilio accepted (a retry sends it twice).
        """
        with self._changed:
            self._hangs.extend(seconds for _ in range(times))

    def post_inbound(self, url: str, from_number: str, to_number: str, body: str,
                     account: str | None = None, signature: str | None = None,
                     sid: str | None = None) -> tuple[int | None, str]:
        """Post an incoming message to a number's messaging webhook ``url``, as Twilio does
        when ``from_number`` texts ``to_number``: form-encoded, signed with the account's
        Auth Token over ``url``. Its HTTP status and body (the TwiML answer).

        ``signature`` replaces the computed ``X-Twilio-Signature``; ``sid`` repeats one
        (Twilio may post a webhook again).
        """
        account = account or next(iter(self.accounts))
        params = {"MessageSid": sid or "SM" + secrets.token_hex(16), "AccountSid": account,
                  "From": from_number, "To": to_number, "Body": body, "NumMedia": "0",
                  "NumSegments": "1", "SmsStatus": "received", "ApiVersion": API_VERSION}
        params["SmsSid"] = params["SmsMessageSid"] = params["MessageSid"]
        signed = (RequestValidator(self.accounts[account]).compute_signature(url, params)
                  if signature is None else signature)
        status, body, error = self._post_form(url, params, signed, timeout=10)
        if status is None:
            raise ConnectionError(error)
        return status, body

    def post_status(self, message_sid: str, status: str, error_code: int | None = None,
                    signature: str | None = None) -> int | None:
        """Post one status callback for ``message_sid`` now; the receiver's HTTP status.

        ``signature`` replaces the computed ``X-Twilio-Signature`` (to send a wrong one).
        The message must have been created with a ``StatusCallback``.
        """
        with self._changed:
            if message_sid not in self._callback_urls:
                raise KeyError(f"{message_sid} was created without a StatusCallback")
        self._advance(message_sid, status, error_code)
        return self._post_callback(message_sid, status, error_code, signature).status

    # -- the API ------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _owner(self, authorization: str | None) -> str | None:
        """The Account SID that the basic-auth credentials belong to, if they are good."""
        user, password = _basic_credentials(authorization)
        if user is None or password is None:
            return None
        if user in self.accounts and _same(self.accounts[user], password):
            return user
        key = self.api_keys.get(user)
        if key is not None and _same(key[0], password):
            return key[1]
        return None

    def answer(self, request: RecordedRequest) -> _Answer:
        """The answer to ``request``, routed by method and path."""
        create, fetch = CREATE.match(request.path), FETCH.match(request.path)
        if request.method == "POST" and create is not None:
            account = create["account"]
            return self._authorized(request, account, lambda: self._create(account, request))
        if request.method == "GET" and fetch is not None:
            account, sid = fetch["account"], fetch["sid"]
            return self._authorized(request, account, lambda: self._fetch(sid, account, request.path))
        return _not_found(request.path)

    def _authorized(self, request: RecordedRequest, account: str,
                    handle: Callable[[], _Answer]) -> _Answer:
        """``handle()`` if the credentials are the path's account's (or its API key's)."""
        if self._owner(request.header("Authorization")) != account:
            return _Answer(401, error_body(401, 20003, ERROR_MESSAGES[20003]))
        return handle()

    def _create(self, account: str, request: RecordedRequest) -> _Answer:
        with self._changed:
            hang = self._hangs.popleft() if self._hangs else 0.0
        if hang:
            self._stopping.wait(hang)
        with self._changed:
            scripted = self._failures.popleft() if self._failures else self._outage
        if scripted is not None:
            headers = {} if scripted.retry_after is None else {"Retry-After": str(scripted.retry_after)}
            return _Answer(scripted.status, error_body(scripted.status, scripted.code, scripted.message),
                           headers)
        refused = self._refusal(account, request)
        if refused is not None:
            return _Answer(400, error_body(400, *refused))
        message = self._new_message(account, request)
        self._start_delivery(message["sid"])
        return _Answer(201, message)

    def _refusal(self, account: str, request: RecordedRequest) -> tuple[int, str] | None:
        """(code, message) of the validation error Twilio documents for this create."""
        to, sender = request.param("To"), request.param("From")
        if not to:
            return 21604, ERROR_MESSAGES[21604]
        if not E164.match(to):
            return 21211, ERROR_MESSAGES[21211].format(to=to)
        if not sender and not request.param("MessagingServiceSid"):
            return 21603, ERROR_MESSAGES[21603]
        if sender and self.numbers is not None and sender not in self.numbers.get(account, ()):
            return 21606, ERROR_MESSAGES[21606]
        return _content_refusal(request)

    def _new_message(self, account: str, request: RecordedRequest) -> dict[str, Any]:
        body, media = request.param("Body"), request.form.get("MediaUrl", [])
        service = request.param("MessagingServiceSid")
        sid = ("MM" if media else "SM") + secrets.token_hex(16)
        now = rfc2822(datetime.now(UTC))
        uri = f"/{API_VERSION}/Accounts/{account}/Messages/{sid}"
        message = {
            "account_sid": account, "api_version": API_VERSION, "body": body or "",
            "date_created": now, "date_sent": None, "date_updated": now,
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": request.param("From"), "messaging_service_sid": service,
            "num_media": str(len(media)),
            "num_segments": "0" if service else str(count_segments(body or "")),
            "price": None, "price_unit": "USD", "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": request.param("To"), "uri": f"{uri}.json",
        }
        with self._changed:
            self._messages[sid] = message
            callback = request.param("StatusCallback")
            if callback:
                self._callback_urls[sid] = callback
            return dict(message)

    def _fetch(self, sid: str, account: str, path: str) -> _Answer:
        with self._changed:
            message = self._messages.get(sid)
            if message is None or message["account_sid"] != account:
                return _not_found(path)
            return _Answer(200, dict(message))

    # -- delivery and callbacks ---------------------------------------------------

    def _outcome_for(self, to: str) -> tuple[str, int | None]:
        outcome = self.outcome.get(to, "delivered") if isinstance(self.outcome, dict) else self.outcome
        if isinstance(outcome, tuple):
            return outcome
        return outcome, DEFAULT_ERROR_CODES[outcome]

    def _start_delivery(self, sid: str) -> None:
        with self._changed:
            if sid not in self._callback_urls:
                return
            final, code = self._outcome_for(self._messages[sid]["to"])
        # "failed" means the message never left Twilio, so no "sent" comes before it.
        steps = [(final, code)] if final in ("failed", "sent") else [("sent", None), (final, code)]
        worker = threading.Thread(target=self._deliver, args=(sid, steps), daemon=True,
                                  name=f"twilio-callbacks-{sid}")
        with self._changed:
            self._workers.append(worker)
        worker.start()

    def _deliver(self, sid: str, steps: list[tuple[str, int | None]]) -> None:
        for status, code in steps:
            if self._stopping.wait(self.callback_delay_s):
                return
            self._advance(sid, status, code)
            self._post_callback(sid, status, code, None)

    def _advance(self, sid: str, status: str, code: int | None) -> None:
        """The stored resource takes the new status (and its error, if any)."""
        now = rfc2822(datetime.now(UTC))
        with self._changed:
            message = self._messages[sid]
            message.update(status=status, date_updated=now)
            if status == "sent" and message["date_sent"] is None:
                message["date_sent"] = now
            if message["messaging_service_sid"] and not message["from"]:
                message["from"] = self.service_sender
            if code is not None:
                message.update(error_code=code, error_message=DELIVERY_ERRORS.get(code))

    def _callback_params(self, sid: str, status: str, code: int | None) -> dict[str, str]:
        with self._changed:
            message = dict(self._messages[sid])
        params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": message["account_sid"], "From": message["from"] or self.service_sender,
                  "To": message["to"], "ApiVersion": API_VERSION}
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if code is not None:
            params["ErrorCode"] = str(code)
        if status in ("delivered", "undelivered"):
            params["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
        params.update(self.extra_callback_params)
        return params

    def _post_callback(self, sid: str, status: str, code: int | None,
                       signature: str | None) -> CallbackAttempt:
        with self._changed:
            url = self._callback_urls[sid]
            token = self.accounts[self._messages[sid]["account_sid"]]
        params = self._callback_params(sid, status, code)
        signed = RequestValidator(token).compute_signature(url, params) if signature is None else signature
        answered, error = self._send(url, params, signed)
        attempt = CallbackAttempt(sid, url, params, signed, answered, error)
        with self._changed:
            self._callbacks.append(attempt)
            self._changed.notify_all()
        return attempt

    def _send(self, url: str, params: dict[str, str], signature: str) -> tuple[int | None, str | None]:
        """POST the form to ``url``; (HTTP status, error). Twilio does not retry these."""
        status, _, error = self._post_form(url, params, signature, timeout=5)
        return status, error

    def _post_form(self, url: str, params: dict[str, str], signature: str,
                   timeout: float) -> tuple[int | None, str, str | None]:
        """POST a signed form to ``url``; (HTTP status, body, error), following no redirect."""
        request = urllib.request.Request(
            url, data=urllib.parse.urlencode(params).encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "X-Twilio-Signature": signature})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.status, response.read().decode(), None
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode(), None
        except (urllib.error.URLError, OSError) as failed:
            return None, "", str(failed)


def _basic_credentials(authorization: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        user, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return (user, password) if colon else (None, None)


def _same(secret: str, given: str) -> bool:
    return hmac.compare_digest(secret.encode(), given.encode())


def _content_refusal(request: RecordedRequest) -> tuple[int, str] | None:
    body = request.param("Body")
    if not body and not request.form.get("MediaUrl") and not request.param("ContentSid"):
        return 21602, ERROR_MESSAGES[21602]
    if body and len(body) > MAX_BODY_CHARS:
        return 21617, ERROR_MESSAGES[21617]
    callback = request.param("StatusCallback")
    if callback is not None:
        parts = urllib.parse.urlsplit(callback)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return 21609, ERROR_MESSAGES[21609]
    return None


def _not_found(path: str) -> _Answer:
    return _Answer(404, error_body(404, 20404, ERROR_MESSAGES[20404].format(path=path)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung request must not hold up server_close()
    request_queue_size = 128  # bursts of connections are not dropped (and retried a second later)

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 api: TwilioApi | None = None) -> None:
        super().__init__(address, handler)
        self.api = api


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._handle(b"")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self._handle(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _handle(self, raw: bytes) -> None:
        parts = urllib.parse.urlsplit(self.path)
        user, _ = _basic_credentials(self.headers.get("Authorization"))
        request = RecordedRequest(
            method=self.command, path=parts.path, query=urllib.parse.parse_qs(parts.query),
            headers=dict(self.headers.items()),
            form=urllib.parse.parse_qs(raw.decode(), keep_blank_values=True), user=user)
        api = self.server.api
        assert api is not None
        api._record(request)
        answer = api.answer(request)
        payload = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


class LocalTwilioHttpClient(TwilioHttpClient):
    """The official client's HTTP client, sending what was meant for api.twilio.com here.

    ``twilio.rest.Client(sid, token, http_client=LocalTwilioHttpClient(api.base_url))``.
    """

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, params: dict[str, object] | None = None,
                data: dict[str, object] | None = None, headers: dict[str, str] | None = None,
                auth: tuple[str, str] | None = None, timeout: float | None = None,
                allow_redirects: bool = False) -> Response:
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API):]
        response: Response = super().request(method, url, params=params, data=data, headers=headers,
                                             auth=auth, timeout=timeout, allow_redirects=allow_redirects)
        return response


class StatusCallbackReceiver:
    """A status callback endpoint on loopback that checks each X-Twilio-Signature.

    It rebuilds the URL as the client saw it (Host header, path, query) and validates
    with ``RequestValidator(auth_token).validate``: valid callbacks are kept in
    ``events`` and answered 200 (or 500 while ``fail_next`` > 0), others answered 403.
    """

    def __init__(self, auth_token: str, path: str = "/twilio/status?tenant=t1") -> None:
        self.validator = RequestValidator(auth_token)
        self.path = path
        self.events: list[dict[str, str]] = []
        self.rejected: list[dict[str, str]] = []
        self.fail_next = 0
        self._changed = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, args=(POLL_S,), daemon=True,
                         name="twilio-status-receiver").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        """The valid callbacks once there are ``count``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.events) < count:
                if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                    raise AssertionError(f"{len(self.events)} valid callbacks, wanted {count}")
            return list(self.events)

    def _judge(self, url: str, params: dict[str, str], signature: str) -> int:
        with self._changed:
            if not self.validator.validate(url, params, signature):
                self.rejected.append(params)
                return 403
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500
            self.events.append(params)
            self._changed.notify_all()
            return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
                url = f"http://{self.headers['Host']}{self.path}"
                status = receiver._judge(url, params, self.headers.get("X-Twilio-Signature", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
