"""Read the local log groups: follow them, trace one message, summarise metrics; stack status.

    python -m localstack.observe logs [--group all|api|worker]   # make logs, logs-api, logs-worker
    python -m localstack.observe trace <message_id>              # make trace ID=...
    python -m localstack.observe stats [--since 15m]             # make stats
    python -m localstack.observe status                          # make status

The log groups are files ``<logs>/aws/lambda/<function>/<stream>.log`` (see
``loggroups.py``): Powertools JSON lines and EMF metric blobs, as CloudWatch
Logs would hold them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.resources import resource_names
from localstack.loggroups import GROUPS

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_LOGS = ROOT / ".local" / "logs"
API_SUFFIX = "-api-handler"
# Keys every record has; the compact view leaves them out.
_QUIET = {"level", "location", "message", "timestamp", "service", "sampling_rate", "function_name",
          "function_request_id", "cold_start", "xray_trace_id"}


@dataclass(frozen=True)
class Entry:
    """One line of a log group."""

    group: str  # the function: sms-gateway-local-sender
    stream: str  # the process: worker-1
    record: dict[str, Any] | None  # None when the line is not JSON
    line: str

    @property
    def is_metrics(self) -> bool:
        return bool(self.record and "_aws" in self.record)

    @property
    def timestamp(self) -> str:
        if not self.record:
            return ""
        if self.is_metrics:
            ms = self.record["_aws"].get("Timestamp", 0)
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000)) + f",{ms % 1000:03d}+0000"
        return str(self.record.get("timestamp", ""))


def stream_files(logs: Path, group: str = "all") -> list[Path]:
    """The stream files of the wanted groups (api, worker or all)."""
    files = sorted((logs / GROUPS).glob("*/*.log"))
    if group == "api":
        return [f for f in files if f.parent.name.endswith(API_SUFFIX)]
    if group == "worker":
        return [f for f in files if not f.parent.name.endswith(API_SUFFIX)]
    return files


def parse(path: Path, line: str) -> Entry:
    try:
        record = json.loads(line)
    except ValueError:
        record = None
    return Entry(path.parent.name, path.stem, record if isinstance(record, dict) else None,
                 line.rstrip("\n"))


def entries(logs: Path, group: str = "all") -> Iterator[Entry]:
    for path in stream_files(logs, group):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                yield parse(path, line)


def short_group(group: str) -> str:
    """``sms-gateway-local-sender`` -> ``sender``: the function without the stage's prefix
    (``STAGE``, ``local`` by default)."""
    names = resource_names(os.environ.get("STAGE", "local"))
    return group.removeprefix(f"{names.prefix}-")


def render(entry: Entry) -> str:
    """One readable line: time, function, level, message, the interesting keys."""
    r = entry.record
    if r is None:
        return f"{short_group(entry.group):<12} {entry.line}"
    if entry.is_metrics:
        names = [m["Name"] for block in r["_aws"].get("CloudWatchMetrics", []) for m in block["Metrics"]]
        values = " ".join(f"{n}={r.get(n)}" for n in names)
        return f"{entry.timestamp[11:23]} {short_group(entry.group):<12} METRIC {values}"
    keys = " ".join(f"{k}={v}" for k, v in r.items() if k not in _QUIET)
    return (f"{entry.timestamp[11:23]} {short_group(entry.group):<12} {r.get('level', ''):<7} "
            f"{r.get('message', '')}  {keys}")


# -- logs ----------------------------------------------------------------------
def follow(logs: Path, group: str, lines: int = 50, raw: bool = False) -> None:
    """Print the last ``lines`` lines, then new lines as they come (new streams too)."""
    offsets: dict[Path, int] = {}
    backlog = sorted(entries(logs, group), key=lambda e: e.timestamp)[-lines:]
    for entry in backlog:
        print(entry.line if raw else render(entry), flush=True)
    for path in stream_files(logs, group):
        offsets[path] = path.stat().st_size
    while True:
        for path in stream_files(logs, group):
            start = offsets.get(path, 0)
            if path.stat().st_size <= start:
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                f.seek(start)
                chunk = f.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            offsets[path] = start + len(complete.encode("utf-8"))
            for line in complete.splitlines():
                entry = parse(path, line)
                print(entry.line if raw else render(entry), flush=True)
        time.sleep(0.5)


# -- trace ---------------------------------------------------------------------
def trace(logs: Path, message_id: str) -> list[Entry]:
    """Every log record of ``message_id``'s life, across functions, in time order.

    Records that name the message, and records of the same requests (the
    API's ``request_id`` travels with the message) that name no other message.
    """
    records = [e for e in entries(logs) if e.record and not e.is_metrics]
    mine = [e for e in records if e.record and e.record.get("message_id") == message_id]
    request_ids = {e.record.get("request_id") for e in mine if e.record} - {None}
    related = [e for e in records if e.record and e.record.get("message_id") in (None, message_id)
               and e.record.get("request_id") in request_ids and e not in mine]
    return sorted(mine + related, key=lambda e: e.timestamp)


def print_trace(logs: Path, message_id: str) -> int:
    found = trace(logs, message_id)
    if not found:
        print(f"no log records of message {message_id} under {logs}", file=sys.stderr)
        return 1
    functions = sorted({short_group(e.group) for e in found})
    attempts: dict[Any, str | None] = {}
    for e in found:
        if e.record and "attempt" in e.record:
            attempts[e.record["attempt"]] = e.record.get("provider") or attempts.get(
                e.record["attempt"])
    listed = ", ".join(f"{a} ({p})" if p else str(a) for a, p in sorted(attempts.items()))
    print(f"message {message_id}: {len(found)} records in {', '.join(functions)}"
          + (f"; attempts {listed}" if attempts else ""))
    for entry in found:
        print(render(entry))
    return 0


# -- stats ---------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


@dataclass
class MetricSummary:
    unit: str
    values: list[float]


def metric_values(blobs: Iterable[dict[str, Any]]) -> tuple[dict[str, MetricSummary], float]:
    """Per metric (and ``MessagesFailed`` per reason): its values; and the span in seconds."""
    out: dict[str, MetricSummary] = {}
    stamps: list[float] = []
    for blob in blobs:
        meta = blob["_aws"]
        stamps.append(meta.get("Timestamp", 0) / 1000)
        for block in meta.get("CloudWatchMetrics", []):
            for metric in block["Metrics"]:
                name = metric["Name"]
                if "reason" in blob:
                    name = f"{name} ({blob['reason']})"
                value = blob.get(metric["Name"], [])
                summary = out.setdefault(name, MetricSummary(metric.get("Unit", ""), []))
                summary.values.extend(value if isinstance(value, list) else [value])
    span = max(stamps) - min(stamps) if stamps else 0.0
    return out, span


def stats_table(summaries: dict[str, MetricSummary], span_s: float) -> str:
    minutes = max(span_s, 1.0) / 60
    rows = [f"{'metric':<44} {'count':>8} {'per min':>9} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}"]
    for name in sorted(summaries, key=lambda n: (summaries[n].unit != "Count", n)):
        s = summaries[name]
        if s.unit == "Count":
            total = sum(s.values)
            rows.append(f"{name:<44} {total:>8g} {total / minutes:>9.1f}")
        else:
            v = sorted(s.values)
            rows.append(f"{name:<44} {len(v):>8} {len(v) / minutes:>9.1f} {percentile(v, 50):>9.1f} "
                        f"{percentile(v, 99):>9.1f} {v[-1]:>9.1f}")
    return "\n".join(rows)


def print_stats(logs: Path, since_s: float | None) -> int:
    cutoff = (time.time() - since_s) * 1000 if since_s else 0
    blobs = [e.record for e in entries(logs) if e.is_metrics and e.record
             and e.record["_aws"].get("Timestamp", 0) >= cutoff]
    if not blobs:
        print(f"no metrics under {logs} yet: send a message first")
        return 0
    summaries, span = metric_values(blobs)
    print(f"EMF metrics (namespace SmsGateway) over {span:.0f} s, from {len(blobs)} blobs:\n")
    print(stats_table(summaries, span))
    return 0


# -- status --------------------------------------------------------------------
def queue_depths(container: Any) -> list[tuple[str, dict[str, int], int]]:
    """(queue, its visible/in-flight/delayed counts, its dead letters) per work queue."""
    names = container.settings.names
    return [(queue, container.queue(queue).depth(), container.queue(dlq).depth()["visible"])
            for queue, dlq in names.queues().items()]


def message_counts(container: Any) -> Counter[str]:
    """Messages by status (a projected scan: an operator's look at a local table)."""
    messages = container.tables.messages
    scan = messages.scan(attributes_to_get=[messages.status.attr_name])
    return Counter(str(item.status) for item in scan)


def print_status() -> int:
    from chalicelib.container import Container
    from chalicelib.settings import Settings, stage_environment
    from localstack.stack import from_env

    stack = from_env()
    state = stack.status()
    print("processes")
    names = sorted(set(state["processes"]) | {"emulator", "api", "worker-1"})
    for name in names:
        pid = state["processes"].get(name)
        print(f"  {name:<10} {'pid ' + str(pid) if pid else 'not running'}")
    ready = state["readyz"]
    print(f"\nAPI {stack.api_url}: {json.dumps(ready)}")
    stage = os.environ.get("STAGE", "local")
    env = {**stage_environment(stage, str(ROOT)), **os.environ}
    container = Container(Settings.from_env(env))
    try:
        depths = queue_depths(container)
        counts = message_counts(container)
    except Exception as exc:  # noqa: BLE001 - the emulator may be down; say so
        print(f"\nqueues and messages: emulator unavailable at {stack.endpoint} ({type(exc).__name__})")
        return 1
    print(f"\n{'queue':<34} {'visible':>8} {'in flight':>10} {'delayed':>8} {'dead letters':>13}")
    for queue, d, dead in depths:
        print(f"{queue:<34} {d['visible']:>8} {d['in_flight']:>10} {d['delayed']:>8} {dead:>13}")
    print(f"\nmessages: {sum(counts.values())}")
    for status, n in sorted(counts.items()):
        print(f"  {status:<12} {n:>8}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local logs, traces, metrics and status.")
    parser.add_argument("--logs", type=Path, default=DEFAULT_LOGS, help="the logs folder")
    sub = parser.add_subparsers(dest="command", required=True)
    follow_cmd = sub.add_parser("logs", help="follow the log groups")
    follow_cmd.add_argument("--group", choices=["all", "api", "worker"], default="all")
    follow_cmd.add_argument("--raw", action="store_true", help="print the JSON lines as they are")
    trace_cmd = sub.add_parser("trace", help="one message's life across functions")
    trace_cmd.add_argument("message_id")
    stats_cmd = sub.add_parser("stats", help="summarise the EMF metrics")
    stats_cmd.add_argument("--since", help="only the last ... (e.g. 15m, 1h)")
    sub.add_parser("status", help="processes, health, queue depths, messages by status")
    args = parser.parse_args(argv)
    if args.command == "logs":
        try:
            follow(args.logs, args.group, raw=args.raw)
        except KeyboardInterrupt:
            return 0
    if args.command == "trace":
        return print_trace(args.logs, args.message_id)
    if args.command == "stats":
        from chalicelib.settings import parse_duration

        return print_stats(args.logs, parse_duration(args.since) if args.since else None)
    return print_status()


if __name__ == "__main__":
    sys.exit(main())
