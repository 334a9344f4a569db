"""Count this process's AWS calls and handler durations, for ``make bench``.

Switched on by the bench alone: ``bench/hooked.py`` (the launcher of the
stacks' API and runner processes) and ``bench/floor.py`` call ``install``.
Off unless ``AWS_CALLS_DIR`` is set. Then every botocore session made in the
process (boto3's and PynamoDB's alike) gets a ``before-call`` hook, and the
counts are written to ``$AWS_CALLS_DIR/<role>-<pid>.json`` twice a second
and at exit. Each DynamoDB write is keyed by the attribute names it writes,
so the cost model can tell which writes also update an index.

    {"calls": {"dynamodb UpdateItem sms-gateway-local-messages status,attempts": 12, ...},
     "invocations": {"sender": [count, seconds], ...}}
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ENV = "AWS_CALLS_DIR"
FLUSH_EVERY_S = 0.5
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b")
_TARGET = re.compile(r"#?\w[\w.]*")

_lock = threading.Lock()
_calls: Counter[str] = Counter()
_invocations: dict[str, list[float]] = {}
_path: Path | None = None


def call_key(service: str, operation: str, params: dict[str, Any]) -> str:
    """``service operation [table [index=...] [written attributes]]``."""
    parts = [service, operation]
    table = params.get("TableName")
    if table:
        parts.append(str(table))
        if params.get("IndexName"):
            parts.append(f"index={params['IndexName']}")
    if service == "dynamodb" and operation in WRITES:
        parts.append(written(operation, params))
    elif operation == "TransactWriteItems":
        parts.append("|".join(_transact_item(entry) for entry in params.get("TransactItems", [])))
    return " ".join(parts)


TRANSACT_OPERATIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                       "ConditionCheck": "ConditionCheck"}


def _transact_item(entry: dict[str, Any]) -> str:
    """``PutItem:table:SET=a,b``: one item of a transaction, priced as that write."""
    kind, op = next(iter(entry.items()))
    operation = TRANSACT_OPERATIONS[kind]
    done = written(operation, op) if operation in WRITES else "-"
    return f"{operation}:{op['TableName']}:{done}"


def written(operation: str, params: dict[str, Any]) -> str:
    """``SET=a,b;REMOVE=c``: the attributes a write sets and removes (not those it tests)."""
    if operation == "PutItem":
        return "SET=" + ",".join(sorted(params.get("Item", {})))
    if operation == "DeleteItem":
        return "DELETE=*"
    names = params.get("ExpressionAttributeNames", {})
    clauses: dict[str, set[str]] = {}
    chunks = _CLAUSE.split(params.get("UpdateExpression", ""))
    for kind, body in zip(chunks[1::2], chunks[2::2], strict=True):
        targets = clauses.setdefault("REMOVE" if kind == "REMOVE" else "SET", set())
        for item in _top_level_items(body):
            match = _TARGET.match(item.strip())
            if match:
                targets.add(names.get(match.group(0), match.group(0)))
    return ";".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(clauses.items())) or "-"


def _top_level_items(body: str) -> list[str]:
    items, depth, current = [], 0, ""
    for ch in body:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    return [*items, current]


def _count(params: dict[str, Any], model: Any, **_: Any) -> None:
    key = call_key(model.service_model.endpoint_prefix, model.name, params)
    with _lock:
        _calls[key] += 1


def record_invocation(function: str, seconds: float) -> None:
    """Add one handler invocation of ``function`` that took ``seconds``."""
    with _lock:
        entry = _invocations.setdefault(function, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds


def snapshot() -> dict[str, Any]:
    with _lock:
        return {"pid": os.getpid(), "time": time.time(), "calls": dict(_calls),
                "invocations": {k: list(v) for k, v in _invocations.items()}}


def flush() -> None:
    if _path is None:
        return
    tmp = _path.with_suffix(".tmp")
    tmp.write_text(json.dumps(snapshot()))
    tmp.replace(_path)


def _flusher() -> None:
    while True:
        time.sleep(FLUSH_EVERY_S)
        with contextlib.suppress(OSError):
            flush()


def install(role: str) -> bool:
    """Count this process's calls if ``AWS_CALLS_DIR`` is set; True when counting."""
    global _path
    directory = os.environ.get(ENV)
    if not directory or _path is not None:
        return False
    import botocore.session

    original = botocore.session.Session.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # provide-client-params runs once per API call, before validation and
        # retries: one count per call the code makes.
        self.register("provide-client-params", _count)

    botocore.session.Session.__init__ = __init__
    Path(directory).mkdir(parents=True, exist_ok=True)
    _path = Path(directory) / f"{role}-{os.getpid()}.json"
    atexit.register(flush)
    threading.Thread(target=_flusher, name="aws-calls-flush", daemon=True).start()
    return True


def timed(function: str, handler: Any) -> Any:
    """Wrap a Lambda handler so its invocations and durations are recorded."""

    def wrapper(*args: Any) -> Any:  # (event, context), or (self, event, context)
        started = time.perf_counter()
        try:
            return handler(*args)
        finally:
            record_invocation(function, time.perf_counter() - started)

    return wrapper


def time_handlers(handler_map: dict[str, Any]) -> None:
    """When counting, time every handler of ``handler_map`` as Lambda bills it."""
    if _path is not None:
        for name in list(handler_map):
            handler_map[name] = timed(name, handler_map[name])
