"""AWS requests and their price: read the counts the stack's processes dump, price them.

The counts come from ``bench/awscalls.py`` (one JSON file per process); the
requests the stack's processes do not make (the SMS service's SNS events and
SNS's sends into the DLR queue) come as ``EventTraffic``, counted by the emulator.
DynamoDB writes are priced with the write units their indexes add: an item in
an ``ALL``-projected index costs a second unit on every write; a write that
sets an index's key attribute adds one unit (two when it moves an existing
entry, which ``SET`` of a key attribute is taken to do), and ``REMOVE`` of one
adds one (the entry's delete).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PRICES = HERE / "prices.json"
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
READS = {"GetItem", "Query", "Scan"}
PRICED_STAGE = "prod"  # the stage whose template and memory size are priced


@dataclass
class Counts:
    """Calls by key, and handler invocations by function: [count, seconds]."""

    calls: Counter[str] = field(default_factory=Counter)
    invocations: dict[str, list[float]] = field(default_factory=dict)

    def __sub__(self, other: Counts) -> Counts:
        calls = Counter({k: v - other.calls.get(k, 0) for k, v in self.calls.items()})
        inv = {}
        for name, (n, s) in self.invocations.items():
            n0, s0 = other.invocations.get(name, [0, 0.0])
            inv[name] = [n - n0, s - s0]
        return Counts(+calls, inv)

    def by_operation(self) -> Counter[str]:
        """``service.Operation`` -> calls."""
        out: Counter[str] = Counter()
        for key, n in self.calls.items():
            service, operation = key.split(" ")[:2]
            out[f"{service}.{operation}"] += n
        return out


def read_counts(directory: Path, prefix: str = "") -> Counts:
    """Sum every process's file in ``directory`` (those whose name starts with ``prefix``)."""
    total = Counts()
    for path in sorted(directory.glob(f"{prefix}*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        total.calls.update(data.get("calls", {}))
        for name, (n, s) in data.get("invocations", {}).items():
            entry = total.invocations.setdefault(name, [0, 0.0])
            entry[0] += n
            entry[1] += s
    return total


@dataclass(frozen=True)
class Index:
    name: str
    keys: frozenset[str]
    projects_all: bool


def table_names(stage: str) -> dict[str, str]:
    """Each table's logical id -> its name, from the template ``make package`` ships."""
    from infra.template import build

    return {logical: res["Properties"]["TableName"]
            for logical, res in build(stage)["Resources"].items()
            if res["Type"] == "AWS::DynamoDB::Table"}


def table_indexes(stage: str) -> dict[str, list[Index]]:
    """Each table's global secondary indexes, from the template ``make package`` ships."""
    from infra.template import build

    out: dict[str, list[Index]] = {}
    for res in build(stage)["Resources"].values():
        if res["Type"] != "AWS::DynamoDB::Table":
            continue
        props = res["Properties"]
        out[props["TableName"]] = [
            Index(g["IndexName"], frozenset(k["AttributeName"] for k in g["KeySchema"]),
                  g["Projection"]["ProjectionType"] == "ALL")
            for g in props.get("GlobalSecondaryIndexes", [])
        ]
    return out


def written_attributes(written: str) -> tuple[set[str], set[str]]:
    """(set, removed) attribute names from the key's last part (``SET=a,b;REMOVE=c``)."""
    sets: set[str] = set()
    removed: set[str] = set()
    for clause in written.split(";"):
        kind, _, names = clause.partition("=")
        target = removed if kind == "REMOVE" else sets
        target.update(n for n in names.split(",") if n)
    return sets, removed


def write_units(operation: str, written: str, indexes: list[Index], item_wru: int,
                created_with: frozenset[str] = frozenset()) -> int:
    """Write request units of one PutItem / UpdateItem / DeleteItem.

    ``created_with``: attributes every new item of the table has; a ``SET`` of
    an index key among them moves the item's index entry (a delete and a put).
    """
    sets, removed = written_attributes(written)
    units = item_wru
    for index in indexes:
        if index.projects_all and operation != "PutItem":
            units += item_wru  # every change of an item in an ALL index rewrites its entry
        elif operation == "PutItem":
            units += 1 if index.keys <= sets else 0
        else:
            if index.keys & sets:
                units += 2 if index.keys <= created_with else 1
            units += 1 if index.keys & removed else 0
        if index.projects_all and operation == "PutItem" and index.keys <= sets:
            units += item_wru
    return units


def read_units(operation: str, key_parts: list[str]) -> float:
    """Read request units: 1 for a strong read of a small item, 0.5 for an index query."""
    on_index = any(p.startswith("index=") for p in key_parts)
    return 0.5 if on_index else 1.0


CHUNK_BYTES = 64 * 1024  # SNS and SQS bill a request per 64 KB chunk of payload


@dataclass(frozen=True)
class EventTraffic:
    """The events path no process of the stack calls: on AWS, End User Messaging
    publishes each SMS event to the SNS topic and SNS sends it into each SQS
    subscription (the DLR queue). Counted by the emulator, which makes them."""

    publishes: int = 0  # SNS Publish, one per event
    sqs_deliveries: int = 0  # SNS's SendMessage into the subscribed queues
    largest_bytes: int = 0  # the largest event published

    @property
    def chunks(self) -> int:
        """Requests per publish: the largest event's 64 KB chunks (exact while every
        event fits in one, as AWS's do)."""
        return max(1, math.ceil(self.largest_bytes / CHUNK_BYTES))

    @property
    def sns_requests(self) -> int:
        return self.publishes * self.chunks

    @property
    def sqs_requests(self) -> int:
        return self.sqs_deliveries * self.chunks


@dataclass
class Bill:
    """Dollars per million messages, by line."""

    lines: dict[str, float]
    units: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def load_prices() -> dict[str, Any]:
    return dict(json.loads(PRICES.read_text()))


def lambda_memory_gb(stage: str = "prod") -> float:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    memory = config.get("stages", {}).get(stage, {}).get(
        "lambda_memory_size", config.get("lambda_memory_size", 128))
    return float(memory) / 1024


def dynamodb_units(counts: Counts, stage: str, item_wru: dict[str, int],
                   counted_stage: str) -> tuple[float, float]:
    """(write units, read units) of every DynamoDB call in ``counts``.

    The calls name ``counted_stage``'s tables; each is priced as ``stage``'s same table.
    """
    indexes = table_indexes(stage)
    priced = table_names(stage)
    same_table = {name: priced[logical] for logical, name in table_names(counted_stage).items()}
    created: dict[str, frozenset[str]] = {}
    for key in counts.calls:
        parts = key.split(" ")
        puts = [(parts[2], parts[-1])] if parts[:2] == ["dynamodb", "PutItem"] \
            and len(parts) > 3 else []
        if parts[:2] == ["dynamodb", "TransactWriteItems"]:
            puts = [(t, w) for op, t, w in (e.split(":", 2) for e in parts[-1].split("|"))
                    if op == "PutItem"]
        for table, done in puts:
            sets = frozenset(written_attributes(done)[0])
            created[table] = created[table] & sets if table in created else sets
    wru = rru = 0.0
    for key, n in counts.calls.items():
        parts = key.split(" ")
        service, operation = parts[0], parts[1]
        if service != "dynamodb" or len(parts) < 3:
            continue
        table = parts[2]
        logical = same_table.get(table, table)
        if operation in WRITES:
            wru += n * write_units(operation, parts[-1], indexes.get(logical, []),
                                   item_wru.get(logical, 1), created.get(table, frozenset()))
        elif operation == "TransactWriteItems":
            wru += n * _transaction_units(parts[-1], same_table, indexes, item_wru, created)
        elif operation in READS:
            rru += n * read_units(operation, parts[3:])
    return wru, rru


def _transaction_units(items: str, same_table: dict[str, str], indexes: dict[str, list[Index]],
                       item_wru: dict[str, int], created: dict[str, frozenset[str]]) -> float:
    """A transaction's write units: each item as its single-item write, its own part
    twice (DynamoDB charges a transactional write 2 units per KB; index updates are
    standard writes); a condition check as a read-sized unit of its own (1)."""
    units = 0.0
    for entry in items.split("|"):
        operation, table, done = entry.split(":", 2)
        logical = same_table.get(table, table)
        size = item_wru.get(logical, 1)
        if operation == "ConditionCheck":
            units += 2 * size
            continue
        units += size + write_units(operation, done, indexes.get(logical, []), size,
                                    created.get(table, frozenset()))
    return units


def price(counts: Counts, messages: int, api_requests: int, stage: str = PRICED_STAGE,
          item_wru: dict[str, int] | None = None, counted_stage: str = "local",
          events: EventTraffic | None = None) -> Bill:
    """What ``counts`` (made against ``counted_stage``'s tables) and ``events`` would
    cost on AWS as ``stage``, per million messages.

    Not priced: the SMS itself. ``SendTextMessage`` is no request charge; AWS bills
    each message part at the destination's carrier price (each message's
    ``provider_cost``).
    """
    events = events or EventTraffic()
    p = load_prices()["prices"]
    per_million = 1_000_000 / messages
    ops = counts.by_operation()
    sqs = sum(n for op, n in ops.items() if op.startswith("sqs."))
    wru, rru = dynamodb_units(counts, stage, item_wru or {}, counted_stage)
    invocations = sum(n for n, _ in counts.invocations.values())
    seconds = sum(s for _, s in counts.invocations.values())
    # Lambda bills each invocation's duration rounded up to the millisecond.
    gb_s = (seconds + invocations * 0.0005) * lambda_memory_gb(stage)
    units = {"api_requests": api_requests, "lambda_invocations": invocations,
             "lambda_gb_s": gb_s, "dynamodb_wru": wru, "dynamodb_rru": rru, "sqs_requests": sqs,
             "sns_requests": events.sns_requests, "sns_sqs_deliveries": events.sqs_deliveries,
             "sqs_requests_by_sns": events.sqs_requests}
    lines = {
        "API Gateway": api_requests * p["api_gateway_rest_per_million_requests"] / 1e6,
        "Lambda requests": invocations * p["lambda_per_million_requests"] / 1e6,
        "Lambda GB-s": gb_s * p["lambda_per_gb_second"],
        "DynamoDB writes": wru * p["dynamodb_per_million_write_request_units"] / 1e6,
        "DynamoDB reads": rru * p["dynamodb_per_million_read_request_units"] / 1e6,
        "SQS": sqs * p["sqs_per_million_requests"] / 1e6,
        "SNS publishes (events)": events.sns_requests * p["sns_standard_per_million_requests"] / 1e6,
        "SNS deliveries to SQS": events.sqs_deliveries * p["sns_sqs_deliveries_per_million"] / 1e6,
        "SQS sends by SNS": events.sqs_requests * p["sqs_per_million_requests"] / 1e6,
    }
    return Bill({k: v * per_million for k, v in lines.items()},
                {k: v / messages for k, v in units.items()})


def item_write_units(size_bytes: float) -> int:
    """Write units of an item of ``size_bytes`` (1 KB each, rounded up)."""
    return max(1, math.ceil(size_bytes / 1024))
