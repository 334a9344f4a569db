"""The composition root: builds every adapter and service once per container.

Nothing here runs at import time. ``get_container()`` builds lazily on first
use (the first request of a warm Lambda pays it once); ``reset_container()``
lets tests start over with other settings.
"""

from __future__ import annotations

import hashlib
import threading
import time
from functools import cached_property
from typing import Any

from chalicelib.adapters.accounts import DynamoAccounts
from chalicelib.adapters.messages import DynamoMessages
from chalicelib.adapters.models import bind_models
from chalicelib.adapters.providers import MockProvider, Provider
from chalicelib.adapters.queues import SqsQueues
from chalicelib.adapters.webhooks import WebhookSender
from chalicelib.domain.message import Client
from chalicelib.services.accept import AcceptService
from chalicelib.services.callbacks import CallbackService
from chalicelib.services.dlr import DlrIntake, DlrService
from chalicelib.services.ledger import Ledger
from chalicelib.services.manage import MessageManager
from chalicelib.services.sender import SenderService
from chalicelib.services.sweeper import Sweeper
from chalicelib.settings import Settings


def hash_api_key(api_key: str) -> str:
    """API keys are stored and looked up only as their SHA-256."""
    return hashlib.sha256(api_key.encode()).hexdigest()


class Authenticator:
    """API key -> client, with a short in-memory cache per container."""

    def __init__(self, accounts: DynamoAccounts, ttl_s: float) -> None:
        self._accounts = accounts
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, Client]] = {}
        self._lock = threading.Lock()

    def cached_client(self, api_key: str) -> Client | None:
        """The client of ``api_key`` if this container knows it already; never any I/O."""
        with self._lock:
            hit = self._cache.get(hash_api_key(api_key))
        return hit[1] if hit else None

    def client_for(self, api_key: str) -> Client | None:
        key_hash = hash_api_key(api_key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_hash)
        if hit and hit[0] > now:
            return hit[1]
        client = self._accounts.find_by_key_hash(key_hash)
        if client is not None:
            with self._lock:
                self._cache[key_hash] = (now + self._ttl, client)
        return client


class Container:
    """Lazily built adapters and services for one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        bind_models(settings)

    def _boto_client(self, service: str, **config: Any) -> Any:
        import boto3  # deferred: keeps the import off cold paths that never need it
        from botocore.config import Config

        return boto3.session.Session().client(
            service,
            region_name=self.settings.region,
            endpoint_url=self.settings.endpoint_url,
            config=Config(**{"connect_timeout": 2, "read_timeout": 5,
                             "retries": {"max_attempts": 2}, **config}),
        )

    @cached_property
    def sqs(self) -> Any:
        return self._boto_client("sqs")

    @cached_property
    def queues(self) -> SqsQueues:
        return SqsQueues(self.sqs)

    @cached_property
    def accounts(self) -> DynamoAccounts:
        return DynamoAccounts()

    @cached_property
    def messages(self) -> DynamoMessages:
        return DynamoMessages(self.settings.stuck_after_s)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.accounts, self.messages, self.callbacks)

    @cached_property
    def manager(self) -> MessageManager:
        return MessageManager(self.messages, self.ledger)

    @cached_property
    def callbacks(self) -> CallbackService:
        s = self.settings
        sender = WebhookSender(s.callback_timeout_s, s.callback_allow_private)
        return CallbackService(s, self.queues, self.messages, self.accounts, sender)

    @cached_property
    def dlr_intake(self) -> DlrIntake:
        names = self.settings.names
        return DlrIntake(dict(self.settings.dlr_secrets), self.queues, names.dlr_queue)

    @cached_property
    def authenticator(self) -> Authenticator:
        return Authenticator(self.accounts, self.settings.auth_cache_ttl_s)

    @cached_property
    def accept(self) -> AcceptService:
        return AcceptService(self.settings, self.accounts, self.messages, self.queues)

    @cached_property
    def provider(self) -> Provider:
        return MockProvider(self.settings.mock, self.queues, self.settings.names.dlr_queue)

    @cached_property
    def sender(self) -> SenderService:
        return SenderService(self.settings, self.messages, self.ledger, self.provider, self.queues,
                             notifier=self.callbacks)

    @cached_property
    def sweeper(self) -> Sweeper:
        return Sweeper(self.settings, self.messages, self.ledger, self.queues)

    @cached_property
    def dlr(self) -> DlrService:
        return DlrService(self.messages, self.ledger)

    def readiness(self) -> dict[str, str]:
        """Probe DynamoDB and SQS with short timeouts; name what failed."""
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
        return checks

    def _quick(self, service: str) -> Any:
        cache = self.__dict__.setdefault("_quick_clients", {})
        if service not in cache:
            cache[service] = self._boto_client(
                service, connect_timeout=1, read_timeout=1, retries={"max_attempts": 0}
            )
        return cache[service]


_container: Container | None = None
_lock = threading.Lock()


def get_container() -> Container:
    """The process's container, built on first use."""
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = Container(Settings.from_env())
    return _container


def reset_container(settings: Settings | None = None) -> Container | None:
    """Forget the container (tests); build one now from ``settings`` if given."""
    global _container
    with _lock:
        _container = Container(settings) if settings is not None else None
    return _container
