"""The embedded AWS emulator: moto's server, with DynamoDB writes made atomic
and SQS receives that do not slow down with the queue's depth.

moto's server handles requests on threads, and its DynamoDB backend has no
locks: two concurrent conditional UpdateItems on one item can both pass their
condition and both apply. Real DynamoDB never does that, and the gateway's
money rests on it (seen here: 22 messages accepted on credit for 20 under 40
concurrent requests). This launcher runs the same moto application and
serializes DynamoDB requests only; SQS long polls and the rest stay concurrent.

moto 5.2's ``ReceiveMessage`` checks each message it returns against the
queue's retention period by computing *all* the queue's attributes, three of
which walk every message in the queue: a 10-message receive from a queue
holding N messages costs about 40 N clock reads. With a backlog of 1,400
messages, that was 55 % of the emulator's time and the pipeline fell to
2 messages/s (profiled with py-spy during ``make bench``). ``patch_moto_sqs``
reads the one attribute it needs, and gives moto's SQS a cheaper clock (the
same value, from ``time.time()`` instead of building datetimes). Real SQS
does not slow down with depth, so neither should the emulator.

moto's ``TransactWriteItems`` deep-copies every table it touches before it starts,
to roll back on a cancellation: with the gateway's money in transactions, that
made each hold and settlement cost O(messages stored) (33 transactions/s with
500 items, 10/s with 2,700). ``patch_moto_transactions`` copies only the items
the transaction touches and puts them back if it is cancelled: the same
all-or-nothing result, at O(1), as on DynamoDB. moto, like this patch, ignores
``ClientRequestToken``; the gateway's transactions do not rely on it.

moto has no AWS End User Messaging SMS (``pinpoint-sms-voice-v2``);
``localstack.smsvoice`` emulates the part the gateway uses. ``RouteBy`` hands it the
requests whose ``X-Amz-Target`` names that API (moto never sees them), and the paths
under ``/_aws/sms-voice/``: the emulator's own read-only count of the events it
published (``make bench`` reads it).

    python -m localstack.emulator --host 127.0.0.1 --port 4566
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

DYNAMODB_TARGET = "DynamoDB_"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class SerializeDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, as if per-item atomic."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            with self._lock:
                # Materialize the body inside the lock: moto may answer lazily.
                return [b"".join(self._app(environ, start_response))]
        return self._app(environ, start_response)


class RouteBy:
    """WSGI middleware: requests whose ``key`` in the WSGI environ (``HTTP_X_AMZ_TARGET``,
    ``PATH_INFO``) starts with ``prefix`` go to ``target_app``, the rest to ``app``."""

    def __init__(self, key: str, app: WsgiApp, prefix: str, target_app: WsgiApp) -> None:
        self._key = key
        self._app = app
        self._prefix = prefix
        self._target_app = target_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get(self._key, "").startswith(self._prefix):
            return self._target_app(environ, start_response)
        return self._app(environ, start_response)


def valid_for_retention(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the queue's retention period alone."""
    retention = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention + message.sent_timestamp / 1000 > time.time())


def fast_unix_time_millis(dt: Any = None) -> float:
    """moto's ``unix_time_millis`` ((dt or utcnow()) - epoch, in ms), without datetimes."""
    from moto.core.utils import unix_time_millis

    return time.time() * 1000.0 if dt is None else float(unix_time_millis(dt))


def delete_message(queue: Any, receipt_handle: str) -> None:
    """moto's ``Queue.delete_message`` in one pass with no allocation per message.

    moto's walks the queue twice and builds a list of receipt handles for every
    message it looks at: 10 ms per delete with 10,000 messages waiting.
    """
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    if receipt_handle in queue.deleted_messages:
        return  # already deleted: moto accepts it again
    for message in queue._messages:
        if message.receipt_handle == receipt_handle \
                or receipt_handle in message._old_receipt_handles:
            break
    else:
        raise ReceiptHandleIsInvalid()
    queue.pending_messages.discard(message)
    queue.deleted_messages.update(message.all_receipt_handles)
    # A new list, as moto does: a receive iterating the old one is not disturbed.
    queue._messages = [m for m in queue._messages if m is not message]


def patch_moto_sqs() -> None:
    """Make moto's ``ReceiveMessage`` cost O(messages scanned), not O(batch x depth),
    and its ``DeleteMessage`` one cheap pass."""
    from moto.sqs import models

    # Replacing moto's methods is the point here; mypy sees their narrower signatures.
    models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        valid_for_retention)  # type: ignore[assignment]
    models.unix_time_millis = fast_unix_time_millis
    models.Queue.delete_message = delete_message  # type: ignore[method-assign,assignment]


class _TableCopies:
    """moto's ``copy`` module as its transactions see it: a table "copied" is the table."""

    @staticmethod
    def deepcopy(obj: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)


def _touched(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(table, hash key, range key, a copy of the item or None) of each item written."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    saved = []
    for entry in transact_items:
        _, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        key = op.get("Key") or op.get("Item") or {}
        if table is None or table.hash_key_attr not in key:
            continue  # moto refuses it; nothing is written
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = None
        if table.range_key_attr is not None:
            if table.range_key_attr not in key:
                continue
            range_key = DynamoType(key[table.range_key_attr])
        item = table.get_item(hash_key, range_key)
        saved.append((table, hash_key, range_key, copy.deepcopy(item)))
    return saved


def _restore(saved: list[tuple[Any, ...]]) -> None:
    for table, hash_key, range_key, item in reversed(saved):
        if item is None:
            if table.get_item(hash_key, range_key) is not None:
                table.delete_item(hash_key, range_key)
        elif range_key is not None:
            table.items[hash_key][range_key] = item
        else:
            table.items[hash_key] = item


def patch_moto_transactions() -> None:
    """Make moto's ``TransactWriteItems`` O(items touched), still all or nothing."""
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items
    if getattr(original, "patched", False):
        return

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _touched(self, transact_items)
        try:
            original(self, transact_items)
        except Exception:
            _restore(saved)
            raise

    transact_write_items.patched = True  # type: ignore[attr-defined]
    models.copy = _TableCopies  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def make_app() -> WsgiApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from localstack import smsvoice

    patch_moto_sqs()
    patch_moto_transactions()
    moto_app = SerializeDynamoDB(DomainDispatcherApplication(create_backend_app))
    by_target = RouteBy("HTTP_X_AMZ_TARGET", moto_app, smsvoice.TARGET_PREFIX,
                        smsvoice.application)
    return RouteBy("PATH_INFO", by_target, smsvoice.INTERNAL_PATH, smsvoice.internal_application)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded AWS emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from werkzeug.serving import run_simple

    run_simple(args.host, args.port, make_app(), threaded=True,
               request_handler=MotoRequestHandler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
