"""Twilio Programmable Messaging (``twilio``): its REST API over HTTPS, and its callbacks.

Submission is one ``POST {TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json``,
form-encoded, with HTTP basic auth (the account SID and auth token, or an API
key pair). Its ``StatusCallback`` is ``{PUBLIC_BASE_URL}/v1/dlr/twilio?ref=<the
gateway's message id>``, so a callback names its message without an index.
Twilio signs each callback with ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed
by the auth token, over that URL followed by the POST parameters sorted by
name; ``parse_report`` recomputes it and refuses (403) what does not match, and
``parse_inbound`` checks incoming messages (``{PUBLIC_BASE_URL}/v1/inbound/twilio``)
with the same code.

Hand-written rather than the ``twilio`` package: the package (with aiohttp
and requests) would add megabytes and cold-start time to every function for
one POST and one HMAC; the tests check both against the official package.

The POST is never retried here: Twilio takes no idempotency key, so a retry
of a request whose answer was lost could send the SMS twice. A timeout is a
temporary failure, retried by the queue like any other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.errors import ForbiddenError, ValidationError
from chalicelib.domain.inbound import InboundSms
from chalicelib.domain.provider_errors import Outcome, SubmitResult
from chalicelib.domain.reports import DELIVERED, MAX_REFERENCE, PROGRESS, DeliveryReport, OutboundSms
from chalicelib.settings import TwilioSettings

log = logging.getLogger(__name__)

NAME = "twilio"
CALLBACK_PATH = "/v1/dlr/twilio"
INBOUND_PATH = "/v1/inbound/twilio"
MAX_INBOUND_FIELD = 64  # MessageSid, From, To: a sid is 34 characters, a number at most 16
REFERENCE_PARAMETER = "ref"
# Twilio allows ValidityPeriod from 1 to 36,000 s (10 h, its default).
MIN_VALIDITY_S, MAX_VALIDITY_S = 1, 36_000
FINAL_STATUSES = {"delivered": DELIVERED, "undelivered": "UNDELIVERED", "failed": "FAILED",
                  "canceled": "FAILED"}
# Twilio error codes a retry can help with, and faults of our account (credentials,
# suspension) that an operator fixes: they must not fail every queued message for
# good. Any other 4xx refusal is the message's, and permanent.
TEMPORARY_CODES = frozenset({"20429", "20500", "20503", "21611", "30001", "30410",
                             "20003", "20005", "30002"})
# Refusals of this account, not of the message: the destination or sender is not
# enabled here (geo permissions, no sender for that country, a trial's unverified
# number). Another provider of the route may send it.
REFUSED_CODES = frozenset({"21408", "21606", "21608", "21612", "21659"})
# Meanings of the codes an SMS gateway meets most, for error.message.
CODE_MEANINGS = {
    "20003": "authentication failed (account SID, auth token or API key)",
    "20005": "the account is not active",
    "20429": "too many requests",
    "20500": "Twilio internal error",
    "20503": "Twilio service unavailable",
    "21211": "invalid 'To' phone number",
    "21212": "invalid 'From' phone number",
    "21408": "sending to this region is not enabled",
    "21602": "message body is required",
    "21603": "a 'From' or 'MessagingServiceSid' is required",
    "21604": "a 'To' phone number is required",
    "21606": "the 'From' number is not a valid, SMS-capable number of this account",
    "21608": "a trial account can send only to verified numbers",
    "21610": "the recipient replied STOP (unsubscribed)",
    "21659": "the 'From' is not a Twilio number for this destination's country",
    "21611": "the 'From' number has too many queued messages",
    "21612": "cannot route from this 'From' to this 'To'",
    "21614": "'To' is not a valid mobile number",
    "21617": "the message body is too long",
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
    "30034": "message from an unregistered number (US A2P 10DLC)",
    "30410": "provider timeout",
}


class TwilioProvider:
    """The ``Provider`` and ``ReportSource`` of Twilio."""

    name = NAME

    def __init__(self, settings: TwilioSettings, public_base_url: str) -> None:
        self._s = settings
        self._public_base_url = public_base_url.rstrip("/")
        # No redirect handler: a POST with our credentials never follows a Location.
        self._opener = urllib.request.build_opener(_NoRedirect)

    @property
    def messages_url(self) -> str:
        sid = urllib.parse.quote(self._s.account_sid, safe="")
        return f"{self._s.api_base}/2010-04-01/Accounts/{sid}/Messages.json"

    def callback_url(self, reference: str) -> str:
        query = urllib.parse.urlencode({REFERENCE_PARAMETER: reference})
        return f"{self._public_base_url}{CALLBACK_PATH}?{query}"

    def form(self, sms: OutboundSms) -> dict[str, str]:
        """The Create Message parameters for ``sms``."""
        form = {"To": sms.to, "Body": sms.text,
                "StatusCallback": self.callback_url(sms.message_id)}
        if sms.sender_owned or not (self._s.from_number or self._s.messaging_service_sid):
            form["From"] = sms.sender
        elif self._s.messaging_service_sid:
            form["MessagingServiceSid"] = self._s.messaging_service_sid
        else:
            form["From"] = self._s.from_number
        if sms.ttl_s is not None and sms.ttl_s <= MAX_VALIDITY_S:
            # Above Twilio's maximum, its default (the maximum) applies: nothing to send.
            form["ValidityPeriod"] = str(max(MIN_VALIDITY_S, int(sms.ttl_s)))
        if self._s.max_price:
            form["MaxPrice"] = self._s.max_price
        return form

    def accepted_before(self, message_id: str) -> str | None:
        """Cannot say: Twilio's API has no lookup by our reference."""
        return None

    def submit(self, sms: OutboundSms) -> SubmitResult:
        if sms.test_mode:
            # Twilio has no dry run: a test-mode message is never handed over.
            return SubmitResult(Outcome.ACCEPTED, provider_message_id=f"test-{sms.message_id}",
                                dry_run=True)
        user, password = ((self._s.api_key_sid, self._s.api_key_secret) if self._s.api_key_sid
                          else (self._s.account_sid, self._s.auth_token))
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(
            self.messages_url, data=urllib.parse.urlencode(self.form(sms)).encode(),
            method="POST", headers={"Authorization": f"Basic {token}",
                                    "Content-Type": "application/x-www-form-urlencoded",
                                    "Accept": "application/json",
                                    "User-Agent": "sms-gateway"})
        try:
            with self._opener.open(request, timeout=self._s.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (OSError, ValueError) as exc:  # timeouts, refused connections, bad URLs
            log.warning("Twilio create unanswered", extra={"error": type(exc).__name__})
            return SubmitResult(Outcome.TEMPORARY, error_code="TIMEOUT",
                                reason=f"no answer from Twilio: {type(exc).__name__}")
        result = _answer(status, raw)
        log.info("Twilio create answered", extra={
            "http_status": status, "provider_message_id": result.provider_message_id,
            "error_code": result.error_code})
        return result

    def verified_params(self, raw: bytes, headers: Mapping[str, str], path: str,
                        query: Mapping[str, str]) -> dict[str, str]:
        """The parameters of a request Twilio signed for ``{PUBLIC_BASE_URL}{path}`` (and
        ``query``), each with its first value; ``ForbiddenError`` unless
        ``X-Twilio-Signature`` matches and it is for this account. Status callbacks and
        inbound messages are signed alike."""
        try:
            params = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True,
                                           strict_parsing=False, max_num_fields=200)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ForbiddenError("not a Twilio callback") from exc
        url = self._public_base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        # Whatever the header holds (a lone surrogate too), compared as bytes: no exception.
        signature = headers.get("x-twilio-signature", "").encode("utf-8", "surrogatepass")
        if not self._s.auth_token or not self._public_base_url or not any(
                hmac.compare_digest(signature,
                                    twilio_signature(self._s.auth_token, variant, params).encode())
                for variant in port_variants(url)):
            raise ForbiddenError("bad or missing X-Twilio-Signature")
        first = {name: values[0] for name, values in params.items()}
        if first.get("AccountSid") != self._s.account_sid:
            raise ForbiddenError("the callback is for another Twilio account")
        return first

    def parse_report(self, raw: bytes, headers: Mapping[str, str], now: float,
                     query: Mapping[str, str]) -> DeliveryReport:
        """A status callback: signed by Twilio for the URL we gave it, then read leniently."""
        first = self.verified_params(raw, headers, CALLBACK_PATH, query)
        reference = query.get(REFERENCE_PARAMETER, "")
        sid = first.get("MessageSid") or first.get("SmsSid") or ""
        raw_status = (first.get("MessageStatus") or first.get("SmsStatus") or "").lower()
        if not 0 < len(reference) <= MAX_REFERENCE:
            raise ValidationError("the callback URL carries no message reference", "ref")
        if not sid or not raw_status:
            raise ValidationError("MessageSid and MessageStatus are required", "MessageStatus")
        status = FINAL_STATUSES.get(raw_status, PROGRESS)  # unknown statuses: the timeline
        code = first.get("ErrorCode") or None
        if status in (PROGRESS, DELIVERED):
            return DeliveryReport(NAME, reference, sid, status, provider_status=raw_status,
                                  occurred_at=now)
        return DeliveryReport(NAME, reference, sid, status, error_code=code or status,
                              error_message=_meaning(code) if code else f"Twilio: {raw_status}",
                              provider_status=raw_status, occurred_at=now)


    def parse_inbound(self, raw: bytes, headers: Mapping[str, str], query: Mapping[str, str],
                      now: float | None = None) -> InboundSms:
        """An incoming message, posted to ``{PUBLIC_BASE_URL}/v1/inbound/twilio`` (the
        number's or the Messaging Service's webhook): signed as status callbacks are;
        ``MessageSid`` (else ``SmsSid``), ``From``, ``To`` and ``Body`` read, every other
        parameter left (Twilio adds them without notice)."""
        first = self.verified_params(raw, headers, INBOUND_PATH, query)
        sid = first.get("MessageSid") or first.get("SmsSid") or ""
        sender, recipient = first.get("From", ""), first.get("To", "")
        for name, value in (("MessageSid", sid), ("From", sender), ("To", recipient)):
            if not 0 < len(value) <= MAX_INBOUND_FIELD:
                raise ValidationError(f"{name} is required (1-{MAX_INBOUND_FIELD} characters)",
                                      name)
        return InboundSms(NAME, sid, sender, recipient, first.get("Body", ""),
                          time.time() if now is None else now)


def port_variants(url: str) -> list[str]:
    """``url`` as given, and with its default port dropped or added: Twilio has signed
    HTTPS URLs both ways, and its own validator accepts either."""
    parts = urllib.parse.urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if default is None or not host:
        return [url]
    bare = parts._replace(netloc=host).geturl()
    with_port = parts._replace(netloc=f"{host}:{parts.port or default}").geturl()
    return list(dict.fromkeys([url, bare, with_port]))


def twilio_signature(auth_token: str, url: str, params: Mapping[str, list[str]]) -> str:
    """``X-Twilio-Signature`` as Twilio computes it: the URL, then each parameter's name
    and value(s) in name order, HMAC-SHA1 with the auth token, base64."""
    payload = url + "".join(name + value for name in sorted(params)
                            for value in sorted(set(params[name])))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _answer(status: int, raw: bytes) -> SubmitResult:
    try:
        body: Any = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        body = {}
    body = body if isinstance(body, dict) else {}
    if status in (200, 201) and isinstance(body.get("sid"), str) and body["sid"]:
        return SubmitResult(Outcome.ACCEPTED, provider_message_id=body["sid"])
    if 200 <= status < 300:
        # Twilio took it but named no message: a retry could send it twice.
        return SubmitResult(Outcome.PERMANENT, error_code="NO_SID",
                            reason=f"Twilio answered {status} without a message sid; it may have "
                                   "been sent, so it is not tried again")
    code = str(body.get("code") or status)
    message = f"Twilio {code}: {body.get('message') or _meaning(code)}"[:512]
    if "code" not in body and status in (401, 403, 404):
        # Not Twilio's answer (a proxy, a wrong TWILIO_API_BASE): our set-up, not the message.
        return SubmitResult(Outcome.TEMPORARY, error_code=code, reason=message)
    if status == 429 or status >= 500 or code in TEMPORARY_CODES or not 400 <= status < 500:
        return SubmitResult(Outcome.TEMPORARY, error_code=code, reason=message)
    return SubmitResult(Outcome.PERMANENT, error_code=code, reason=message,
                        provider_refused=code in REFUSED_CODES)


def _meaning(code: str) -> str:
    return CODE_MEANINGS.get(code, f"Twilio error {code}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
