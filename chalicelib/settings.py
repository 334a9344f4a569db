"""One typed settings object, read from the environment once.

Stage values live in ``.chalice/config.json``; Chalice copies them into
``os.environ`` before it imports ``app.py``. Nothing else in the code base
reads ``os.environ``.

A frozen dataclass rather than pydantic-settings: the API function imports
this on every cold start, and pydantic adds ~150 ms there (see README,
design notes).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from chalicelib.domain.breaker import BreakerConfig
from chalicelib.domain.policy import PolicyDefaults
from chalicelib.domain.retry import RetryPolicy
from chalicelib.resources import (
    CALLBACK_MARGIN_S,
    CALLBACKS_TIMEOUT_S,
    SEND_MARGIN_S,
    SEND_MAX_RECEIVES,
    SENDER_TIMEOUT_S,
    ResourceNames,
    resource_names,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


def stage_environment(stage: str, project_dir: str = ".") -> dict[str, str]:
    """The variables ``.chalice/config.json`` sets for ``stage``, as Chalice applies them.

    For processes Chalice does not start (the local runner, the admin CLI).
    Empty when there is no config (as inside a deployed function).
    """
    import json
    from pathlib import Path

    path = Path(project_dir) / ".chalice" / "config.json"
    if not path.exists():
        return {}
    config = json.loads(path.read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return {k: str(v) for k, v in env.items()}


def parse_duration(text: str) -> float:
    """Parse ``15s``, ``30m``, ``1h``, ``250ms`` or a bare number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"not a duration: {text!r} (use e.g. 15s, 30m, 1h)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds):  # 400 digits make an infinite float
        raise SettingsError(f"not a finite duration: {text[:40]!r}...")
    return seconds


def _duration(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except SettingsError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def parse_secrets(text: str) -> dict[str, str]:
    """``mock=s3cret,acme=other`` -> {"mock": "s3cret", "acme": "other"}."""
    secrets: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, secret = pair.partition("=")
        if not sep or not name.strip() or not secret.strip():
            raise SettingsError(f"DLR_SECRETS wants provider=secret pairs, got {pair!r}")
        secrets[name.strip()] = secret.strip()
    return secrets


def _number(name: str, text: str) -> float:
    """A finite float: ``nan`` and ``inf`` parse as floats and break every comparison."""
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, got {text[:40]!r}")
    return value


def _integer(name: str, text: str, low: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {text[:40]!r}") from None
    if low is not None and value < low:
        raise SettingsError(f"{name} must be at least {low}, got {text}")
    return value


def _rate(name: str, text: str) -> float:
    value = _number(name, text)
    if not 0.0 <= value <= 1.0:
        raise SettingsError(f"{name} must be between 0 and 1, got {text}")
    return value


def _positive_int(name: str, text: str) -> int:
    return _integer(name, text, low=1)


def _positive_float(name: str, text: str) -> float:
    value = _number(name, text)
    if not value > 0:
        raise SettingsError(f"{name} must be greater than 0, got {text}")
    return value


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``127.0.0.0/8, fd00::/8`` -> the networks (a bare address is its own /32 or /128)."""
    networks = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise SettingsError(f"CALLBACK_ALLOWED_NETWORKS wants CIDRs such as 10.1.0.0/16, "
                                f"got {item!r} ({exc})") from None
    return tuple(networks)


def _factor(name: str, text: str) -> float:
    value = _number(name, text)
    if value < 1:  # below 1 the delays would shrink with each attempt
        raise SettingsError(f"{name} must be at least 1, got {text}")
    return value


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class MockProviderSettings:
    """Outcome rates and timing of the mock SMS provider."""

    success_rate: float = 0.8
    temp_fail_rate: float = 0.15
    perm_fail_rate: float = 0.05
    seed: int = 42
    latency_ms: int = 0
    dlr_delay_s: int = 1
    dlr_fail_rate: float = 0.0


PROVIDER_NAMES = ("mock", "aws-sms", "twilio")
LOCAL_STAGE = "local"  # the emulator's stage (``dev`` runs with it too); any other is deployed
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
AWS_SMS_CONNECT_TIMEOUT_S = 2.0
MESSAGE_TYPES = ("TRANSACTIONAL", "PROMOTIONAL")
# What a deployed stage may read from SSM Parameter Store: parameters of these names
# under ``SETTINGS_PATH`` fill the settings the environment does not set. The
# secrets are SecureString parameters; ``make deploy`` writes both kinds.
SECRET_SETTINGS = ("DLR_SECRETS", "WEBHOOK_MASTER_SECRET", "TWILIO_AUTH_TOKEN",
                   "TWILIO_API_KEY_SECRET")
STORED_SETTINGS = SECRET_SETTINGS + (
    "PROVIDER", "PROVIDERS", "PROVIDER_MPS", "PUBLIC_BASE_URL", "TWILIO_ACCOUNT_SID",
    "TWILIO_API_KEY_SID", "TWILIO_FROM",
    "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_MAX_PRICE", "AWS_SMS_ORIGINATION_IDENTITY",
    "AWS_SMS_CONFIGURATION_SET", "AWS_SMS_MESSAGE_TYPE", "AWS_SMS_MAX_PRICE",
    "MOCK_PROVIDER_SANDBOX")
# Where each stored setting lands: a field, or (group, field).
_STORED_FIELDS: dict[str, tuple[str, ...]] = {
    "DLR_SECRETS": ("dlr_secrets",), "WEBHOOK_MASTER_SECRET": ("webhook_master_secret",),
    "PROVIDER": ("provider",), "PROVIDERS": ("providers",), "PROVIDER_MPS": ("provider_mps",),
    "PUBLIC_BASE_URL": ("public_base_url",),
    "MOCK_PROVIDER_SANDBOX": ("mock_sandbox",),
    "TWILIO_AUTH_TOKEN": ("twilio", "auth_token"),
    "TWILIO_API_KEY_SECRET": ("twilio", "api_key_secret"),
    "TWILIO_ACCOUNT_SID": ("twilio", "account_sid"), "TWILIO_API_KEY_SID": ("twilio", "api_key_sid"),
    "TWILIO_FROM": ("twilio", "from_number"),
    "TWILIO_MESSAGING_SERVICE_SID": ("twilio", "messaging_service_sid"),
    "TWILIO_MAX_PRICE": ("twilio", "max_price"),
    "AWS_SMS_ORIGINATION_IDENTITY": ("aws_sms", "origination_identity"),
    "AWS_SMS_CONFIGURATION_SET": ("aws_sms", "configuration_set"),
    "AWS_SMS_MESSAGE_TYPE": ("aws_sms", "message_type"),
    "AWS_SMS_MAX_PRICE": ("aws_sms", "max_price_per_part"),
}


@dataclass(frozen=True)
class AwsSmsSettings:
    """AWS End User Messaging SMS (``pinpoint-sms-voice-v2``)."""

    origination_identity: str = ""  # a pool, phone number or sender ID (id or ARN)
    configuration_set: str = ""  # default: the stage's (``ResourceNames.configuration_set``)
    message_type: str = "TRANSACTIONAL"
    max_price_per_part: str = ""  # USD, as AWS takes it; empty: no cap
    timeout_s: float = 5.0


@dataclass(frozen=True)
class TwilioSettings:
    """Twilio Programmable Messaging."""

    api_base: str = "https://api.twilio.com"
    account_sid: str = ""
    auth_token: str = ""  # also what Twilio signs its callbacks with
    api_key_sid: str = ""  # an API key pair, if you would rather not send with the token
    api_key_secret: str = ""
    from_number: str = ""
    messaging_service_sid: str = ""
    max_price: str = ""  # USD per message; empty: no cap
    timeout_s: float = 8.0  # per connect and per read


def _choice(name: str, text: str, allowed: tuple[str, ...]) -> str:
    if text not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {text!r}")
    return text


def _provider(text: str, stage: str) -> str:
    """``PROVIDER``; unset, the mock on the local stage and none on a deployed one."""
    chosen = text.strip().lower()
    if not chosen:
        return "mock" if stage == LOCAL_STAGE else ""
    return _choice("PROVIDER", chosen, PROVIDER_NAMES)


def _providers(text: str) -> tuple[str, ...]:
    """``PROVIDERS``, the default route's providers in order (empty: ``PROVIDER`` alone)."""
    names = tuple(filter(None, (p.strip().lower() for p in text.split(","))))
    for name in names:
        _choice("PROVIDERS", name, PROVIDER_NAMES)
    if len(set(names)) != len(names):
        raise SettingsError(f"PROVIDERS names a provider twice: {text!r}")
    return names


def parse_mps(text: str) -> dict[str, float]:
    """``twilio=10,aws-sms=20`` -> each provider's parts-per-second cap."""
    caps: dict[str, float] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = pair.partition("=")
        name = name.strip().lower()
        if not sep or name not in PROVIDER_NAMES:
            raise SettingsError(f"PROVIDER_MPS wants provider=parts-per-second pairs with a "
                                f"provider of {', '.join(PROVIDER_NAMES)}, got {pair!r}")
        caps[name] = _positive_float(f"PROVIDER_MPS {name}", value.strip())
    return caps


def _price(name: str, text: str) -> str:
    if text:
        try:
            if not _number(name, text) > 0:
                raise ValueError
        except ValueError:
            raise SettingsError(f"{name} must be a price in USD above 0, got {text!r}") from None
    return text


@dataclass(frozen=True)
class Settings:
    """Every knob of the gateway, parsed and validated."""

    stage: str = "local"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    port: int = 8080
    price_per_part_cents: int = 5
    max_parts: int = 10
    strict_phone_numbers: bool = True
    rate_limit_rps: float = 100.0
    rate_limit_burst: int = 200
    retry_min_delay_s: float = 15.0
    retry_max_delay_s: float = 1800.0
    retry_factor: float = 2.0
    max_attempts: int = 10
    send_timeout_s: float = 60.0
    stuck_after_s: float = 300.0
    dlr_timeout_s: float = 72 * 3600.0
    auth_cache_ttl_s: float = 30.0
    auth_negative_cache_ttl_s: float = 5.0  # how long an unknown key stays refused unread
    read_rate_limit_rps: float = 50.0  # per client and API instance: the read routes
    read_rate_limit_burst: int = 100
    log_level: str = "INFO"
    log_privacy: bool = True  # mask phone numbers, leave message text out of logs
    dlr_secrets: Mapping[str, str] = field(default_factory=dict)
    webhook_master_secret: str = ""
    webhook_secret_grace_s: float = 24 * 3600.0  # the previous secret signs too, after a rotation
    callback_allow_private: bool = False
    callback_timeout_s: float = 5.0  # one POST, DNS to status line
    # Private networks callbacks may reach although CALLBACK_ALLOW_PRIVATE is off.
    callback_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    mock: MockProviderSettings = field(default_factory=MockProviderSettings)
    provider: str = "mock"  # "" when none is set: a deployed stage's default
    providers: tuple[str, ...] = ()  # PROVIDERS as set: the default route, in order
    provider_mps: Mapping[str, float] = field(default_factory=dict)  # PROVIDER_MPS caps
    routes_cache_ttl_s: float = 30.0  # how long a warm function keeps routes, costs, prices
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    mock_sandbox: bool = False  # MOCK_PROVIDER_SANDBOX: a deployed stage may send with the mock
    public_base_url: str = ""  # how providers reach the API, stage path included
    settings_path: str = ""  # SSM path of STORED_SETTINGS; empty: the environment only
    settings_max_age_s: float = 300.0
    aws_sms: AwsSmsSettings = field(default_factory=AwsSmsSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)

    @property
    def names(self) -> ResourceNames:
        """Table and queue names of this stage."""
        return resource_names(self.stage)

    def policy_defaults(self) -> PolicyDefaults:
        """What a client without settings of its own gets."""
        return PolicyDefaults(self.rate_limit_rps, self.rate_limit_burst,
                              self.price_per_part_cents, self.max_parts)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retry_min_delay_s, self.retry_max_delay_s, self.retry_factor,
                           self.max_attempts)

    def __post_init__(self) -> None:
        # Each attempt is one receive of the send record, and early duplicates
        # take a few more: the dead-letter queue must never take a message
        # that is still being retried.
        if self.max_attempts >= SEND_MAX_RECEIVES:
            raise SettingsError(f"MAX_ATTEMPTS must be below the send queue's maxReceiveCount "
                                f"({SEND_MAX_RECEIVES}), got {self.max_attempts}")
        if self.retry_min_delay_s > self.retry_max_delay_s:
            raise SettingsError(f"RETRY_MIN_DELAY ({self.retry_min_delay_s:g} s) must not be "
                                f"above RETRY_MAX_DELAY ({self.retry_max_delay_s:g} s)")
        # A provider call must fit in the sender function with room for the SENT write.
        # A breaker's window and cooldown of 0 would count nothing and probe at will.
        for name, timeout in (("AWS_SMS_TIMEOUT", self.aws_sms.timeout_s),
                              ("TWILIO_TIMEOUT", self.twilio.timeout_s),
                              ("BREAKER_WINDOW", self.breaker.window_s),
                              ("BREAKER_COOLDOWN", self.breaker.cooldown_s)):
            if not timeout > 0:
                raise SettingsError(f"{name} must be above 0, got {timeout:g} s")
        if self.send_budget_s() + SEND_MARGIN_S > SENDER_TIMEOUT_S:
            slowest = max({*self.default_providers, *self.usable_providers()} or {"mock"},
                          key=self.budget_of)
            name = {"aws-sms": "AWS_SMS_TIMEOUT", "twilio": "TWILIO_TIMEOUT"}.get(
                slowest, "MOCK_LATENCY_MS")
            raise SettingsError(
                f"{name} is too long: one {slowest} call can take "
                f"{self.send_budget_s():g} s, and the sender's {SENDER_TIMEOUT_S} s timeout "
                f"must also leave {SEND_MARGIN_S:g} s for the SENT write")

        if not 0 < self.callback_timeout_s <= CALLBACKS_TIMEOUT_S - CALLBACK_MARGIN_S:
            raise SettingsError(
                f"CALLBACK_TIMEOUT must be above 0 and at most "
                f"{CALLBACKS_TIMEOUT_S - CALLBACK_MARGIN_S:g} s (the callbacks function's "
                f"{CALLBACKS_TIMEOUT_S} s timeout less {CALLBACK_MARGIN_S:g} s), "
                f"got {self.callback_timeout_s:g} s")

    @property
    def deployed(self) -> bool:
        """Any stage but the emulator's: it must send through a real provider."""
        return self.stage != LOCAL_STAGE

    @property
    def mock_allowed(self) -> bool:
        """The mock provider exists locally, and on a deployed stage only as a sandbox."""
        return not self.deployed or self.mock_sandbox

    @property
    def default_providers(self) -> tuple[str, ...]:
        """The default route: ``PROVIDERS``, else ``PROVIDER`` alone (else none)."""
        return self.providers or ((self.provider,) if self.provider else ())

    def provider_problem(self) -> str | None:
        """Why this stage cannot send, naming the setting to set; None when it can (at
        least one provider of ``PROVIDERS`` is usable)."""
        if not self.default_providers:
            return (f"PROVIDER is not set: stage {self.stage} sends only through a real provider "
                    f"(PROVIDER=aws-sms or twilio, or PROVIDERS=twilio,aws-sms; for a sandbox, "
                    f"PROVIDER=mock with MOCK_PROVIDER_SANDBOX=true)")
        problems = [self.problem_of(name) for name in self.default_providers]
        if all(problems):
            return "; ".join(p for p in problems if p)
        return None

    def problem_of(self, name: str) -> str | None:
        """Why provider ``name`` cannot send on this stage; None when it can."""
        if name == "mock" and not self.mock_allowed:
            return (f"PROVIDER=mock on stage {self.stage} needs MOCK_PROVIDER_SANDBOX=true: the "
                    f"mock 'delivers', and charges for, messages no carrier sees")
        if name == "twilio":
            t = self.twilio
            missing = [label for label, value in (
                ("TWILIO_ACCOUNT_SID", t.account_sid), ("TWILIO_AUTH_TOKEN", t.auth_token),
                ("PUBLIC_BASE_URL", self.public_base_url)) if not value]
            if t.api_key_sid and not t.api_key_secret:
                missing.append("TWILIO_API_KEY_SECRET")
            if missing:
                return f"PROVIDER=twilio needs {', '.join(missing)}"
        return None

    def usable_providers(self) -> tuple[str, ...]:
        """The providers this stage can send through (a route may name any of them)."""
        return tuple(name for name in PROVIDER_NAMES if self.problem_of(name) is None)

    def send_budget_s(self) -> float:
        """The longest one provider call can take, over the providers this stage uses:
        connecting and reading each get their timeout (Twilio's ``TWILIO_TIMEOUT`` bounds
        each socket operation)."""
        return max((self.budget_of(name) for name in {*self.default_providers, *self.usable_providers()}),
                   default=self.budget_of("mock"))

    def budget_of(self, name: str) -> float:
        if name == "aws-sms":
            return AWS_SMS_CONNECT_TIMEOUT_S + self.aws_sms.timeout_s
        if name == "twilio":
            return 2 * self.twilio.timeout_s
        return self.mock.latency_ms / 1000 + 1

    def overlay(self, values: Mapping[str, str]) -> Settings:
        """These settings with ``values`` (stored settings, by their variable names) in
        place of their own; parsed and checked as the environment's would be."""
        known = {k: v for k, v in values.items() if k in _STORED_FIELDS}
        if not known:
            return self
        parsed = Settings.from_env(known)
        result: Settings = self
        for name in known:
            path = _STORED_FIELDS[name]
            if len(path) == 1:
                result = replace(result, **{path[0]: getattr(parsed, path[0])})
            else:
                group = replace(getattr(result, path[0]),
                                **{path[1]: getattr(getattr(parsed, path[0]), path[1])})
                result = replace(result, **{path[0]: group})
        return result

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env
        try:
            return cls._parse(env)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, SettingsError):
                raise
            raise SettingsError(str(exc)) from exc

    @classmethod
    def _parse(cls, env: Mapping[str, str]) -> Settings:
        d, dm = cls(), MockProviderSettings()
        g = env.get
        mock = MockProviderSettings(
            success_rate=_rate("MOCK_SUCCESS_RATE", g("MOCK_SUCCESS_RATE", str(dm.success_rate))),
            temp_fail_rate=_rate("MOCK_TEMP_FAIL_RATE",
                                 g("MOCK_TEMP_FAIL_RATE", str(dm.temp_fail_rate))),
            perm_fail_rate=_rate("MOCK_PERM_FAIL_RATE",
                                 g("MOCK_PERM_FAIL_RATE", str(dm.perm_fail_rate))),
            seed=_integer("MOCK_SEED", g("MOCK_SEED", "42")),
            latency_ms=_integer("MOCK_LATENCY_MS", g("MOCK_LATENCY_MS", "0"), low=0),
            dlr_delay_s=int(_duration("MOCK_DLR_DELAY", g("MOCK_DLR_DELAY", "1s"))),
            dlr_fail_rate=_rate("MOCK_DLR_FAIL_RATE", g("MOCK_DLR_FAIL_RATE", "0")),
        )
        return cls(
            stage=g("STAGE", d.stage),
            region=g("AWS_DEFAULT_REGION", g("AWS_REGION", d.region)),
            endpoint_url=g("AWS_ENDPOINT_URL") or None,
            port=_integer("PORT", g("PORT", str(d.port)), low=0),
            price_per_part_cents=_positive_int("PRICE_PER_PART_CENTS", g("PRICE_PER_PART_CENTS", "5")),
            max_parts=_positive_int("MAX_PARTS", g("MAX_PARTS", "10")),
            strict_phone_numbers=g("PHONE_VALIDATION", "strict").lower() != "e164",
            rate_limit_rps=_positive_float("RATE_LIMIT_RPS", g("RATE_LIMIT_RPS", str(d.rate_limit_rps))),
            rate_limit_burst=_positive_int("RATE_LIMIT_BURST",
                                           g("RATE_LIMIT_BURST", str(d.rate_limit_burst))),
            retry_min_delay_s=_duration("RETRY_MIN_DELAY", g("RETRY_MIN_DELAY", "15s")),
            retry_max_delay_s=_duration("RETRY_MAX_DELAY", g("RETRY_MAX_DELAY", "30m")),
            retry_factor=_factor("RETRY_FACTOR", g("RETRY_FACTOR", "2.0")),
            max_attempts=_positive_int("MAX_ATTEMPTS", g("MAX_ATTEMPTS", "10")),
            send_timeout_s=_duration("SEND_TIMEOUT", g("SEND_TIMEOUT", "60s")),
            stuck_after_s=_duration("STUCK_AFTER", g("STUCK_AFTER", "5m")),
            dlr_timeout_s=_duration("DLR_TIMEOUT", g("DLR_TIMEOUT", "72h")),
            auth_cache_ttl_s=_duration("AUTH_CACHE_TTL", g("AUTH_CACHE_TTL", "30s")),
            auth_negative_cache_ttl_s=_duration("AUTH_NEGATIVE_CACHE_TTL",
                                                g("AUTH_NEGATIVE_CACHE_TTL", "5s")),
            read_rate_limit_rps=_positive_float(
                "READ_RATE_LIMIT_RPS", g("READ_RATE_LIMIT_RPS", str(d.read_rate_limit_rps))),
            read_rate_limit_burst=_positive_int(
                "READ_RATE_LIMIT_BURST", g("READ_RATE_LIMIT_BURST", str(d.read_rate_limit_burst))),
            log_level=_choice("LOG_LEVEL", g("LOG_LEVEL", d.log_level).strip().upper(), LOG_LEVELS),
            log_privacy=g("LOG_PRIVACY", "on").strip().lower() not in {"off", "false", "0", "no"},
            dlr_secrets=parse_secrets(g("DLR_SECRETS", "")),
            webhook_master_secret=g("WEBHOOK_MASTER_SECRET", ""),
            webhook_secret_grace_s=parse_duration(g("WEBHOOK_SECRET_GRACE", "24h")),
            callback_allow_private=_bool(g("CALLBACK_ALLOW_PRIVATE", "false")),
            callback_timeout_s=_duration("CALLBACK_TIMEOUT", g("CALLBACK_TIMEOUT", "5s")),
            callback_allowed_networks=parse_networks(g("CALLBACK_ALLOWED_NETWORKS", "")),
            mock=mock,
            provider=_provider(g("PROVIDER", ""), g("STAGE", d.stage)),
            providers=_providers(g("PROVIDERS", "")),
            provider_mps=parse_mps(g("PROVIDER_MPS", "")),
            routes_cache_ttl_s=_duration("ROUTES_CACHE_TTL", g("ROUTES_CACHE_TTL", "30s")),
            breaker=BreakerConfig(
                min_failures=_positive_int("BREAKER_MIN_FAILURES", g("BREAKER_MIN_FAILURES", "5")),
                failure_rate=_rate("BREAKER_FAILURE_RATE", g("BREAKER_FAILURE_RATE", "0.5")),
                window_s=_duration("BREAKER_WINDOW", g("BREAKER_WINDOW", "60s")),
                cooldown_s=_duration("BREAKER_COOLDOWN", g("BREAKER_COOLDOWN", "20s")),
            ),
            mock_sandbox=_bool(g("MOCK_PROVIDER_SANDBOX", "false")),
            public_base_url=g("PUBLIC_BASE_URL", "").strip().rstrip("/"),
            settings_path=g("SETTINGS_PATH", "").strip(),
            settings_max_age_s=_duration("SETTINGS_MAX_AGE", g("SETTINGS_MAX_AGE", "5m")),
            aws_sms=AwsSmsSettings(
                origination_identity=g("AWS_SMS_ORIGINATION_IDENTITY", "").strip(),
                configuration_set=g("AWS_SMS_CONFIGURATION_SET", "").strip(),
                message_type=_choice("AWS_SMS_MESSAGE_TYPE",
                                     g("AWS_SMS_MESSAGE_TYPE", "TRANSACTIONAL").strip().upper(),
                                     MESSAGE_TYPES),
                max_price_per_part=_price("AWS_SMS_MAX_PRICE", g("AWS_SMS_MAX_PRICE", "").strip()),
                timeout_s=_duration("AWS_SMS_TIMEOUT", g("AWS_SMS_TIMEOUT", "5s")),
            ),
            twilio=TwilioSettings(
                api_base=g("TWILIO_API_BASE", "https://api.twilio.com").strip().rstrip("/"),
                account_sid=g("TWILIO_ACCOUNT_SID", "").strip(),
                auth_token=g("TWILIO_AUTH_TOKEN", "").strip(),
                api_key_sid=g("TWILIO_API_KEY_SID", "").strip(),
                api_key_secret=g("TWILIO_API_KEY_SECRET", "").strip(),
                from_number=g("TWILIO_FROM", "").strip(),
                messaging_service_sid=g("TWILIO_MESSAGING_SERVICE_SID", "").strip(),
                max_price=_price("TWILIO_MAX_PRICE", g("TWILIO_MAX_PRICE", "").strip()),
                timeout_s=_duration("TWILIO_TIMEOUT", g("TWILIO_TIMEOUT", "8s")),
            ),
        )
