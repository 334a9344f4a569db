"""Logs and metrics, set up once for every function by one Chalice middleware.

Logs are Powertools JSON lines on stdout (CloudWatch Logs on AWS; the local
stack files them by function, see ``localstack/loggroups.py``). Every record
of an invocation carries ``function_name``, ``cold_start`` and, once known,
``request_id``, ``client_id`` and ``message_id``. The keys are thread-local:
the local runner hosts several functions in one process and ``chalice local``
serves requests on threads. The API's ``request_id`` travels on as the SQS
message attribute ``request_id``, so one request can be followed through the
sender, DLR and callback functions.

Privacy: unless ``LOG_PRIVACY=off``, phone numbers are masked to their last
four digits and message text is left out, whatever a log call passes.

Metrics are EMF (``SmsGateway`` namespace) with the dimensions ``service`` and
``stage`` only; ``MessagesFailed`` also rolls up by ``reason``, an error code
from a closed list (the caller, who decided the failure, names it).

A leaf: Powertools, Chalice's request type and the standard library, nothing
of ours. The app hands the middleware a function that returns the
``ObservabilityConfig`` to apply; services reach this module only through the
``Telemetry`` port (``Telemetry`` below is its implementation).
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from chalice.app import Request, Response

SERVICE = "sms-gateway"
NAMESPACE = "SmsGateway"
CORRELATION_KEYS = ("request_id", "client_id", "message_id")
REQUEST_ID_ATTRIBUTE = "request_id"
T = TypeVar("T")


@dataclass(frozen=True)
class ObservabilityConfig:
    """What the logs and metrics need to know of the deployment."""

    stage: str = "local"
    function_prefix: str = f"{SERVICE}-local-"  # + the function's name, `-` for `_`
    log_level: str = "INFO"
    log_privacy: bool = True

# -- privacy -----------------------------------------------------------------
_PHONE = re.compile(r"(?<![\w.+])\+?\d{7,15}(?![\w.])")
_VERBATIM = frozenset({
    "level", "location", "timestamp", "service", "sampling_rate", "cold_start", "xray_trace_id",
    "function_name", "function_request_id", *CORRELATION_KEYS, "provider_message_id", "event_id",
    "reference",
})
# Inbound text too: Twilio's Body and End User Messaging's messageBody.
_TEXT_KEYS = frozenset({"text", "message_text", "sms_text", "body", "Body", "messageBody",
                        "help_text"})
_PHONE_KEYS = frozenset({"to", "from", "phone", "phone_number", "msisdn", "recipient", "number",
                         "from_number", "to_number", "person", "originationNumber",
                         "destinationNumber", "From", "To"})


def mask_phone(value: str) -> str:
    """``+14155550123`` -> ``+*******0123``: the last four digits stay."""
    digits = re.sub(r"\D", "", value)
    return ("+" if value.startswith("+") else "") + "*" * max(0, len(digits) - 4) + digits[-4:]


def scrub(value: Any, key: str = "") -> Any:
    """A log record's value with phone numbers masked and message text left out."""
    if key in _VERBATIM:
        return value
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items() if str(k) not in _TEXT_KEYS}
    if isinstance(value, list | tuple):
        return [scrub(v, key) for v in value]
    if isinstance(value, str):
        if key in _PHONE_KEYS:
            return mask_phone(value)
        return _PHONE.sub(lambda m: mask_phone(m.group(0)), value)
    return value


class PrivateFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, scrubbing each record unless privacy is off."""

    privacy = True

    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(scrub(log) if self.privacy else log)


_formatter = PrivateFormatter(utc=True)
logger = Logger(service=SERVICE, utc=True, logger_formatter=_formatter)
# The code base logs through stdlib loggers under `chalicelib`: same handler, same keys.
_library = logging.getLogger("chalicelib")
_library.addHandler(logger.registered_handler)
_library.propagate = False

# -- invocation state ----------------------------------------------------------
_local = threading.local()
_metrics_lock = threading.Lock()
_seen_functions: set[str] = set()
_configured: list[ObservabilityConfig] = []


def configure(config: ObservabilityConfig) -> None:
    """Apply ``LOG_LEVEL`` and ``LOG_PRIVACY`` (a no-op when nothing changed)."""
    if _configured and _configured[0] == config:
        return
    logger.setLevel(config.log_level)
    _library.setLevel(config.log_level)
    _formatter.privacy = config.log_privacy
    _configured[:] = [config]


def _config() -> ObservabilityConfig:
    return _configured[0] if _configured else ObservabilityConfig()


def current_function() -> str | None:
    """The function this thread is running an invocation of, if any."""
    return getattr(_local, "function", None)


def correlate(**keys: Any) -> None:
    """Add keys (``request_id``, ``client_id``, ``message_id``...) to this thread's log records."""
    values = {k: v for k, v in keys.items() if v is not None}
    if values:
        logger.thread_safe_append_keys(**values)




@contextmanager
def scope(**keys: Any) -> Iterator[None]:
    """Correlation keys for one unit of work (a record, a swept message), then the old ones."""
    saved = logger.thread_safe_get_current_keys()
    correlate(**keys)
    try:
        yield
    finally:
        logger.thread_safe_clear_keys()
        correlate(**saved)


def _function_name(context: Any, config: ObservabilityConfig) -> str:
    name = str(getattr(context, "function_name", "") or "api_handler")
    # chalice local and the test client name the API function `api_handler`.
    return name if name.startswith(f"{SERVICE}-") else config.function_prefix + name.replace("_", "-")


@contextmanager
def invocation(context: Any) -> Iterator[None]:
    """One Lambda invocation: its log keys and its metrics, flushed at the end."""
    config = _config()
    function = _function_name(context, config)
    cold_start = function not in _seen_functions
    _seen_functions.add(function)
    _local.function, _local.stage, _local.metrics = function, config.stage, {}
    logger.thread_safe_clear_keys()
    correlate(function_name=function, cold_start=cold_start,
              function_request_id=getattr(context, "aws_request_id", None))
    try:
        yield
    finally:
        flush_metrics()
        logger.thread_safe_clear_keys()
        _local.function = _local.metrics = None


# -- metrics -------------------------------------------------------------------
Dimension = tuple[str, str] | None  # one more dimension (name, value), or none


def _new_metrics(dimension: Dimension) -> EphemeralMetrics:
    stage = getattr(_local, "stage", None) or "unknown"
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE,
                               default_dimensions={"service": SERVICE, "stage": stage})
    if dimension is not None:
        # A second roll-up: service, stage and reason (or provider).
        metrics.add_dimensions(**{dimension[0]: dimension[1]})
    return metrics


def _add(name: str, unit: MetricUnit, value: float, dimension: Dimension = None) -> None:
    buffers: dict[Dimension, EphemeralMetrics] | None = getattr(_local, "metrics", None)
    if buffers is None:  # outside an invocation (a CLI, a test): emit at once
        metrics = _new_metrics(dimension)
        metrics.add_metric(name=name, unit=unit, value=value)
        metrics.flush_metrics()
        return
    with _metrics_lock:  # an invocation's records may run on several threads
        if dimension not in buffers:
            buffers[dimension] = _new_metrics(dimension)
        buffers[dimension].add_metric(name=name, unit=unit, value=value)


def on_this_invocation(work: Callable[[], T]) -> Callable[[], T]:
    """``work``, made to run on another thread as part of this thread's invocation: the
    same function name, log keys and metrics (flushed when the invocation ends). Wrap
    each unit of work on its own (each gets its own copy of the log keys)."""
    function, stage = current_function(), getattr(_local, "stage", None)
    metrics = getattr(_local, "metrics", None)
    context = contextvars.copy_context()

    def run() -> T:
        _local.function, _local.stage, _local.metrics = function, stage, metrics
        try:
            return context.run(work)
        finally:
            _local.function = _local.metrics = None

    return run


def count(name: str, value: int = 1) -> None:
    """Add to a counter (EMF unit Count)."""
    _add(name, MetricUnit.Count, value)


def count_failure(reason: str) -> None:
    """``MessagesFailed``, by reason (a code from a closed list: the caller's to keep small)."""
    _add("MessagesFailed", MetricUnit.Count, 1, ("reason", reason))


def count_for_provider(name: str, provider: str) -> None:
    """A counter by provider (``ProviderSubmitted``, ``ProviderFailedTemporarily``...);
    ``provider`` is one of the few provider names."""
    _add(name, MetricUnit.Count, 1, ("provider", provider))


def record_ms(name: str, milliseconds: float) -> None:
    """Record a duration (EMF unit Milliseconds)."""
    _add(name, MetricUnit.Milliseconds, round(max(0.0, milliseconds), 3))




def flush_metrics() -> None:
    """Print this invocation's EMF blobs (one per dimension set)."""
    buffers: dict[Dimension, EphemeralMetrics] = getattr(_local, "metrics", None) or {}
    for metrics in buffers.values():
        if metrics.metric_set:
            metrics.flush_metrics()
    buffers.clear()


# -- SQS records ---------------------------------------------------------------
def request_id_of(record: Any) -> str | None:
    """The ``request_id`` attribute an SQS record carries, if any."""
    attribute = record.message_attributes[REQUEST_ID_ATTRIBUTE]
    return attribute.string_value if attribute is not None and attribute.string_value else None




def traced(work: Callable[[], None], keys: dict[str, Any],
           expected: tuple[type[BaseException], ...] = ()) -> None:
    """Run one record's ``work`` under its correlation ``keys``; log unexpected errors."""
    with scope(**keys):
        try:
            work()
        except expected:
            raise
        except Exception:
            logger.exception("record failed; it comes back")
            raise


class Telemetry:
    """The ``Telemetry`` port over this module: what services count and correlate."""

    def count(self, name: str, value: int = 1) -> None:
        count(name, value)

    def count_failure(self, reason: str) -> None:
        count_failure(reason)

    def count_for_provider(self, name: str, provider: str) -> None:
        count_for_provider(name, provider)

    def record_ms(self, name: str, milliseconds: float) -> None:
        record_ms(name, milliseconds)

    def correlate(self, **keys: Any) -> None:
        correlate(**keys)

    def scope(self, **keys: Any) -> Any:
        return scope(**keys)


# -- the middleware ------------------------------------------------------------
def middleware(config: Callable[[], ObservabilityConfig]) -> Callable[[Any, Callable[[Any], Any]], Any]:
    """Chalice middleware for every function: logger keys, metrics, and the API's access log.

    ``config`` is asked once per invocation (cheap: the container's settings),
    so a test that builds a new container with other log settings gets them.
    """

    def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
        configure(config())
        if isinstance(event, Request):
            return _observe_http(event, get_response)
        with invocation(getattr(event, "context", None)):
            return get_response(event)

    return observe


def _observe_http(request: Request, get_response: Callable[[Request], Response]) -> Response:
    context = request.context
    if not context.get("requestId"):  # chalice local and the test client leave it out
        context["requestId"] = str(uuid.uuid4())
    with invocation(request.lambda_context):
        params = request.uri_params or {}
        # The route adds client_id (and a new message's id) once it knows them.
        correlate(request_id=context["requestId"], message_id=params.get("message_id"))
        started = time.perf_counter()
        try:
            response = get_response(request)
        except Exception:
            logger.exception("unhandled error; the answer is 500")
            raise
        logger.info("request", extra={
            "http_method": request.method, "path": context.get("path") or request.path,
            "http_status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
    return response
