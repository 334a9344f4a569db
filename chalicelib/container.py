"""The composition root: builds every adapter and service once per container.

Nothing here runs at import time. ``get_container()`` builds lazily on first
use (the first request of a warm Lambda pays it once); ``reset_container()``
lets tests start over with other settings. Only the edges (``http``,
``workers``), ``app.py`` and the CLI import this module.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.adapters.accounts import DynamoAccounts
from chalicelib.adapters.books import DynamoBooks
from chalicelib.adapters.contacts import DynamoContacts
from chalicelib.adapters.health import DynamoHealth
from chalicelib.adapters.inbound import DynamoConversations, DynamoInbound, SenderClaims
from chalicelib.adapters.messages import DynamoMessages
from chalicelib.adapters.models import Tables, bind_tables
from chalicelib.adapters.pacer import DynamoPacer
from chalicelib.adapters.parameters import StoredSettings
from chalicelib.adapters.queues import SqsQueue
from chalicelib.adapters.routes import DynamoRouteBook
from chalicelib.adapters.stats import DynamoStats
from chalicelib.adapters.webhooks import WebhookSender
from chalicelib.domain.cursors import CursorCodec, cursor_key
from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.inbound import InboundSms
from chalicelib.domain.ratelimit import RateLimit
from chalicelib.domain.reports import DeliveryReport
from chalicelib.domain.routing import default_route
from chalicelib.observability import ObservabilityConfig, Telemetry
from chalicelib.ports import ContactStore, Pacer, Provider, ProviderHealth, ReportSource
from chalicelib.providers import mock as mock_inbound
from chalicelib.providers.mock import MockProvider
from chalicelib.resources import SEND_MAX_RECEIVES
from chalicelib.services.accept import AcceptService
from chalicelib.services.auth import Authenticator, ReadThrottle, hash_api_key
from chalicelib.services.callbacks import CallbackService
from chalicelib.services.dlr import DlrIntake, DlrService
from chalicelib.services.inbound import InboundList, InboundService
from chalicelib.services.ledger import Ledger
from chalicelib.services.manage import ApiKeys, MessageManager
from chalicelib.services.operator import OperatorView, WatchedQueue
from chalicelib.services.optouts import OptOutApi, OptOutBook
from chalicelib.services.prices import ClientPrices
from chalicelib.services.routes_admin import RoutesAdmin
from chalicelib.services.routing import Router, RouteTable
from chalicelib.services.sender import SenderService
from chalicelib.services.stats import StatsService
from chalicelib.services.sweeper import Sweeper
from chalicelib.services.webhook_secrets import WebhookSecrets
from chalicelib.settings import AWS_SMS_CONNECT_TIMEOUT_S, PROVIDER_NAMES, Settings, SettingsError

if TYPE_CHECKING:  # the real providers are imported when first used (cold starts)
    from chalicelib.providers.aws_sms import AwsSmsProvider
    from chalicelib.providers.twilio import TwilioProvider

AWS_SMS, TWILIO = "aws-sms", "twilio"

__all__ = ["Container", "get_container", "hash_api_key", "reset_container"]


log = logging.getLogger(__name__)


class Container:
    """Lazily built adapters and services for one set of settings."""

    def __init__(self, settings: Settings, stored: Mapping[str, str] | None = None,
                 base: Settings | None = None) -> None:
        self.settings = settings
        self.stored = dict(stored or {})  # what came from SETTINGS_PATH
        self.base = base or settings  # the settings before the stored ones were laid over
        self.checked_at = time.monotonic()

    def _boto_client(self, service: str, **config: Any) -> Any:
        options = {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 2}, **config}
        return boto_client(service, self.settings.region, self.settings.endpoint_url, options)

    # -- adapters ----------------------------------------------------------------
    @cached_property
    def tables(self) -> Tables:
        s = self.settings
        return bind_tables(s.names, s.region, s.endpoint_url)

    @cached_property
    def sqs(self) -> Any:
        return self._boto_client("sqs")

    @cached_property
    def send_queue(self) -> SqsQueue:
        return SqsQueue(self.sqs, self.settings.names.send_queue)

    @cached_property
    def dlr_queue(self) -> SqsQueue:
        return SqsQueue(self.sqs, self.settings.names.dlr_queue)

    @cached_property
    def callbacks_queue(self) -> SqsQueue:
        return SqsQueue(self.sqs, self.settings.names.callbacks_queue)

    @cached_property
    def inbound_queue(self) -> SqsQueue:
        return SqsQueue(self.sqs, self.settings.names.inbound_queue)

    def queue(self, name: str) -> SqsQueue:
        """Any of the stage's queues by name (dead-letter queues included: the CLI)."""
        for q in (self.send_queue, self.dlr_queue, self.callbacks_queue, self.inbound_queue):
            if q.name == name:
                return q
        return SqsQueue(self.sqs, name)

    @cached_property
    def accounts(self) -> DynamoAccounts:
        return DynamoAccounts(self.tables.clients, self.tables.ledger)

    @cached_property
    def books(self) -> DynamoBooks:
        t = self.tables
        return DynamoBooks(t.clients, t.messages, t.ledger, self.settings.stuck_after_s,
                           t.contacts)

    @cached_property
    def messages(self) -> DynamoMessages:
        return DynamoMessages(self.tables.messages, self.settings.stuck_after_s)

    # -- provider health and pacing -----------------------------------------------
    @cached_property
    def health(self) -> ProviderHealth:
        return DynamoHealth(self.tables.routing)

    @cached_property
    def pacer(self) -> Pacer:
        return DynamoPacer(self.tables.routing)  # one TAT hint per container

    @cached_property
    def telemetry(self) -> Telemetry:
        return Telemetry()

    def observability_config(self) -> ObservabilityConfig:
        s = self.settings
        return ObservabilityConfig(stage=s.stage, function_prefix=s.names.function(""),
                                   log_level=s.log_level, log_privacy=s.log_privacy)

    # -- providers ---------------------------------------------------------------
    @cached_property
    def mock_provider(self) -> MockProvider:
        s = self.settings
        return MockProvider(s.mock, self.tables.provider_sends, self.dlr_queue,
                            dict(s.dlr_secrets).get(MockProvider.name))

    @cached_property
    def aws_sms_provider(self) -> AwsSmsProvider:
        from chalicelib.providers.aws_sms import AwsSmsProvider

        s = self.settings
        # One attempt per send: botocore's retry of a request whose answer was lost
        # would be a second SMS (AWS takes no idempotency key on SendTextMessage).
        client = self._boto_client("pinpoint-sms-voice-v2", read_timeout=s.aws_sms.timeout_s,
                                   connect_timeout=AWS_SMS_CONNECT_TIMEOUT_S,
                                   retries={"total_max_attempts": 1})
        return AwsSmsProvider(client, s.aws_sms, s.names.configuration_set)

    @cached_property
    def twilio_provider(self) -> TwilioProvider:
        from chalicelib.providers.twilio import TwilioProvider

        return TwilioProvider(self.settings.twilio, self.settings.public_base_url)

    def provider_named(self, name: str) -> Provider:
        """The adapter of provider ``name`` (built on first use)."""
        if name == AWS_SMS:
            return self.aws_sms_provider
        if name == TWILIO:
            return self.twilio_provider
        return self.mock_provider

    @cached_property
    def provider(self) -> Provider:
        """The default route's first usable provider; ``SettingsError`` naming what is
        missing when this stage cannot send (no provider, incomplete settings, the mock on
        a deployed stage that is no sandbox)."""
        s = self.settings
        problem = s.provider_problem()
        if problem:
            raise SettingsError(problem)
        return self.provider_named(next(n for n in s.default_providers if not s.problem_of(n)))

    @cached_property
    def providers(self) -> LazyProviders:
        """Every provider this stage can send through, by name, each built on first use."""
        return LazyProviders(self.settings.usable_providers(), self.provider_named)

    # -- routing -----------------------------------------------------------------
    @cached_property
    def route_book(self) -> DynamoRouteBook:
        """The routing table's routes and costs, uncached (``route_table`` caches its reads)."""
        return DynamoRouteBook(self.tables.routing)

    @cached_property
    def route_table(self) -> RouteTable:
        s = self.settings
        return RouteTable(self.route_book, default_route(s.default_providers),
                          s.routes_cache_ttl_s, usable=s.usable_providers())

    @cached_property
    def router(self) -> Router:
        s = self.settings
        return Router(self.route_table, self.providers, self.telemetry,
                      health=self.health,
                      pacer=self.pacer if s.provider_mps else None, mps=s.provider_mps,
                      breaker=s.breaker)

    def sending_refusal(self) -> str | None:
        """Why nothing may be sent now (the API refuses new messages, the sender holds its
        records); None when the provider is ready."""
        return self.settings.provider_problem()

    @cached_property
    def report_sources(self) -> dict[str, ReportSource]:
        """Providers that may post reports to the DLR webhook: those that can verify them
        (the mock with its ``DLR_SECRETS`` secret, Twilio with its auth token).

        AWS End User Messaging has no webhook: its events reach the DLR queue from
        SNS (``queued_report``)."""
        s = self.settings
        sources: dict[str, ReportSource] = {}
        if MockProvider.name in dict(s.dlr_secrets) and s.mock_allowed:
            sources[MockProvider.name] = self.mock_provider
        if s.twilio.auth_token and s.twilio.account_sid and s.public_base_url:
            sources[TWILIO] = self.twilio_provider
        return sources

    @staticmethod
    def queued_report(body: Any) -> DeliveryReport:
        """A DLR-queue record: an AWS End User Messaging event (from SNS), or a report
        in the gateway's shape (from the webhook or the mock)."""
        from chalicelib.providers import aws_sms

        if aws_sms.is_event(body):
            return aws_sms.parse_event(body)
        return DeliveryReport.parse(body)

    @staticmethod
    def queued_inbound(body: Any) -> InboundSms:
        """An inbound-queue record: a two-way message of AWS End User Messaging (from
        SNS), or a reply of the mock (``make inbound``)."""
        from chalicelib.providers import aws_sms

        if mock_inbound.is_inbound(body):
            return mock_inbound.parse_inbound(body)
        return aws_sms.parse_inbound(body, time.time())

    # -- services ----------------------------------------------------------------
    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.books, self.messages, self.telemetry, self.callbacks)

    @cached_property
    def manager(self) -> MessageManager:
        return MessageManager(self.messages, self.ledger,
                              CursorCodec(cursor_key(self.settings.webhook_master_secret)))

    @cached_property
    def api_keys(self) -> ApiKeys:
        return ApiKeys(self.accounts)

    @cached_property
    def prices(self) -> ClientPrices:
        return ClientPrices(self.accounts, self.settings.price_per_part_cents)

    @cached_property
    def callbacks(self) -> CallbackService:
        s = self.settings
        poster = WebhookSender(s.callback_timeout_s, s.callback_allow_private,
                               s.callback_allowed_networks)
        return CallbackService(s.webhook_master_secret, self.callbacks_queue, self.messages,
                               self.accounts, poster, self.telemetry,
                               secret_grace_s=s.webhook_secret_grace_s)

    @cached_property
    def webhook_secrets(self) -> WebhookSecrets:
        s = self.settings
        return WebhookSecrets(s.webhook_master_secret, self.accounts, s.webhook_secret_grace_s)

    @cached_property
    def dlr_intake(self) -> DlrIntake:
        return DlrIntake(self.report_sources, self.dlr_queue)

    @cached_property
    def authenticator(self) -> Authenticator:
        s = self.settings
        return Authenticator(self.accounts, s.auth_cache_ttl_s,
                             negative_ttl_s=s.auth_negative_cache_ttl_s)

    @cached_property
    def read_throttle(self) -> ReadThrottle:
        s = self.settings
        return ReadThrottle(RateLimit(s.read_rate_limit_rps, s.read_rate_limit_burst))

    @cached_property
    def accept(self) -> AcceptService:
        s = self.settings
        return AcceptService(s.policy_defaults(), s.strict_phone_numbers, self.books,
                             self.messages, self.send_queue, self.telemetry,
                             routes=self.route_table, opt_outs=self.opt_outs,
                             contacts=self.contacts)

    @cached_property
    def sender(self) -> SenderService:
        s = self.settings
        refusal = self.sending_refusal()
        return SenderService(s.retry_policy(), s.send_timeout_s, self.messages, self.ledger,
                             None, self.telemetry, notifier=self.callbacks, refusal=refusal,
                             router=None if refusal else self.router,
                             send_queue=self.send_queue,
                             fresh_record_after=SEND_MAX_RECEIVES - 5,
                             opt_outs=self.opt_outs, clients=self.accounts,
                             stats=self.stats_store)

    @cached_property
    def sweeper(self) -> Sweeper:
        s = self.settings
        return Sweeper(s.stuck_after_s, s.dlr_timeout_s, self.messages, self.ledger,
                       self.send_queue, self.telemetry, send_timeout_s=s.send_timeout_s)

    @cached_property
    def dlr(self) -> DlrService:
        return DlrService(self.messages, self.ledger, self.telemetry)

    # -- two-way: inbound messages, conversations, opt-outs ------------------------
    @cached_property
    def inbound_store(self) -> DynamoInbound:
        return DynamoInbound(self.tables.inbound)

    @cached_property
    def sender_claims(self) -> SenderClaims:
        return SenderClaims(self.tables.clients)

    @cached_property
    def conversations(self) -> DynamoConversations:
        s = self.settings
        origins = {s.twilio.from_number, s.aws_sms.origination_identity} - {""}
        return DynamoConversations(self.sender_claims, self.tables.messages, origins)

    @cached_property
    def contacts(self) -> ContactStore:
        return DynamoContacts(self.tables.contacts)

    @cached_property
    def opt_outs(self) -> OptOutBook:
        return OptOutBook(self.contacts, self.callbacks, self.telemetry)

    @cached_property
    def inbound(self) -> InboundService:
        return InboundService(self.inbound_store, self.conversations, self.accounts,
                              self.messages, self.send_queue, self.opt_outs, self.callbacks,
                              self.telemetry)

    @cached_property
    def opt_out_api(self) -> OptOutApi:
        return OptOutApi(self.opt_outs, self.contacts,
                         CursorCodec(cursor_key(self.settings.webhook_master_secret)),
                         self.settings.strict_phone_numbers)

    @cached_property
    def inbound_list(self) -> InboundList:
        return InboundList(self.inbound_store,
                           CursorCodec(cursor_key(self.settings.webhook_master_secret)))

    # -- the console: statistics and the operator's view ----------------------------
    @cached_property
    def stats_store(self) -> DynamoStats:
        return DynamoStats(self.tables.contacts)

    @cached_property
    def stats(self) -> StatsService:
        return StatsService(self.stats_store)

    @cached_property
    def operator(self) -> OperatorView:
        n = self.settings.names
        watched = [WatchedQueue(label, queue, SqsQueue(self.sqs, dlq))
                   for label, queue, dlq in (
                       ("send", self.send_queue, n.send_dlq), ("dlr", self.dlr_queue, n.dlr_dlq),
                       ("callbacks", self.callbacks_queue, n.callbacks_dlq),
                       ("inbound", self.inbound_queue, n.inbound_dlq))]
        return OperatorView(self.accounts, self.stats_store, watched, self.health,
                            lambda: {p: self.settings.problem_of(p) for p in PROVIDER_NAMES},
                            self.settings.breaker)

    # -- routes and provider costs (operators) ------------------------------------
    @cached_property
    def routes_admin(self) -> RoutesAdmin:
        # Any provider the code knows: a route may name one whose settings come later.
        return RoutesAdmin(self.route_book, PROVIDER_NAMES)

    def readiness(self) -> dict[str, str]:
        """Probe DynamoDB and SQS with short timeouts, and say whether a provider can send;
        name what failed."""
        checks: dict[str, str] = {}
        names = self.settings.names
        probes = {
            "dynamodb": lambda: self._quick("dynamodb").describe_table(TableName=names.messages_table),
            "sqs": lambda: self._quick("sqs").get_queue_url(QueueName=names.send_queue),
        }
        for name, probe in probes.items():
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                checks[name] = f"unavailable: {type(exc).__name__}"
        checks["provider"] = self.sending_refusal() or "ok"
        return checks

    def _quick(self, service: str) -> Any:
        cache = self.__dict__.setdefault("_quick_clients", {})
        if service not in cache:
            cache[service] = self._boto_client(
                service, connect_timeout=1, read_timeout=1, retries={"max_attempts": 0}
            )
        return cache[service]


class LazyProviders(Mapping[str, Provider]):
    """Provider adapters by name, each built when first looked up (a cold start that
    sends through one provider never builds the others' clients)."""

    def __init__(self, names: Collection[str], build: Callable[[str], Provider]) -> None:
        self._names = tuple(names)
        self._build = build
        self._built: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def __getitem__(self, name: str) -> Provider:
        if name not in self._names:
            raise KeyError(name)
        with self._lock:
            if name not in self._built:
                self._built[name] = self._build(name)
            return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_container: Container | None = None
_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None, str], Any] = {}
_clients_lock = threading.Lock()  # not the container's: building a client takes a while
_stored: dict[tuple[str, str, str | None], StoredSettings] = {}
_stored_lock = threading.Lock()


def boto_client(service: str, region: str, endpoint_url: str | None,
                options: dict[str, Any]) -> Any:
    """One boto3 client per (service, region, endpoint, options) and process.

    Building a client loads its service model (tens of milliseconds); boto3
    clients are thread-safe, so containers for the same settings share them.
    """
    import boto3  # deferred: keeps the import off cold paths that never need it
    from botocore.config import Config

    cache_key = (service, region, endpoint_url, repr(sorted(options.items())))
    with _clients_lock:
        if cache_key not in _clients:
            _clients[cache_key] = boto3.session.Session().client(
                service, region_name=region, endpoint_url=endpoint_url, config=Config(**options))
        return _clients[cache_key]


def stored_settings(settings: Settings) -> StoredSettings:
    """The reader of ``settings.settings_path``, one per process (its cache lives there)."""
    options = {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 2}}
    key = (settings.settings_path, settings.region, settings.endpoint_url)
    ssm = boto_client("ssm", settings.region, settings.endpoint_url, options)  # takes its lock
    with _stored_lock:
        if key not in _stored:
            _stored[key] = StoredSettings(ssm, settings.settings_path, settings.settings_max_age_s)
        return _stored[key]


def forget_stored_settings() -> None:
    """Forget the stored settings read so far and their cache, as a new process (tests)."""
    with _stored_lock:
        _stored.clear()


def with_stored(base: Settings, explicit: Collection[str], fresh: bool = False) -> Container:
    """A container for ``base`` with the stored settings (``SETTINGS_PATH``) laid over it,
    except those ``explicit`` in the environment: an explicit variable always wins."""
    if not base.settings_path:
        return Container(base)
    stored = stored_settings(base).read(fresh=fresh)
    laid = {name: value for name, value in stored.items() if name not in explicit}
    return Container(base.overlay(laid), stored, base)


def load_container(env: Mapping[str, str] | None = None) -> Container:
    """The container of a cold start: settings from the environment, then stored ones."""
    env = os.environ if env is None else env
    return with_stored(Settings.from_env(env), set(env))


def _refreshed(container: Container, max_age_s: float) -> Container:
    """The same container while its stored settings are unchanged; a new one once they
    changed (a rotated token is in use within SETTINGS_MAX_AGE)."""
    s = container.settings
    if not s.settings_path or time.monotonic() - container.checked_at < max_age_s:
        return container
    container.checked_at = time.monotonic()
    try:
        fresh = with_stored(container.base, set(os.environ),
                            fresh=max_age_s < s.settings_max_age_s)
        stored = fresh.stored
        if stored == container.stored:
            return container
    except (BackendUnavailableError, SettingsError):
        # Keep serving with what works; the next check tries again.
        log.exception("stored settings unreadable or invalid; keeping the ones in use")
        return container
    log.info("stored settings changed; rebuilding the container",
             extra={"changed": sorted(k for k in {*stored, *container.stored}
                                      if stored.get(k) != container.stored.get(k))})
    return fresh


def get_container() -> Container:
    """The process's container, built on first use, rebuilt when stored settings change."""
    global _container
    if _container is None or _container.settings.settings_path:
        with _lock:
            _container = load_container() if _container is None else _refreshed(
                _container, _container.settings.settings_max_age_s)
    return _container


def recheck_stored_settings() -> Container:
    """Read the stored settings again now (at most every RECHECK_S), e.g. when a provider's
    callback signature does not match: its token may have just been rotated."""
    global _container
    with _lock:
        _container = (load_container() if _container is None
                      else _refreshed(_container, RECHECK_S))
        return _container


RECHECK_S = 30.0  # an unsigned caller can make each instance read SSM this often at most


def reset_container(settings: Settings | None = None) -> Container | None:
    """Forget the container (tests); build one now from ``settings`` if given, as a cold
    start does (with the stored settings, when ``settings`` name a path)."""
    global _container
    with _lock:
        _container = with_stored(settings, set(os.environ)) if settings is not None else None
    return _container
