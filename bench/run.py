"""``make bench``: a fixed, seeded workload against the local stack, side by side with
what the emulator itself allows, the AWS calls and cost per message, cold start
and package size.

    python -m bench.run [--messages 2000] [--workers 1,2] [--long] [--no-floor] [--no-aws-sms] [--no-package]

For each worker count: a fresh stack (emulator, ``chalice local``, runners) on
free ports under ``.local/bench/``, its API and runners started through
``python -m bench.hooked`` with ``AWS_CALLS_DIR`` set, so that each counts its
AWS calls and times its handlers (``bench/awscalls.py``); 4 clients
send their share of the messages concurrently; the run ends when every
message is final and every client's hold is back to zero. Then, against the
same emulator, ``bench/floor.py`` replays the same calls with no app code.
Then one more stack runs the same workload with ``PROVIDER=aws-sms`` (the
worker count of the last run, no floor): the sender calls the emulator's
``SendTextMessage``, whose events reach the DLR queue through SNS. Those
publishes and SNS's sends into the queue happen inside the emulator, so they
are read from its own count (``GET /_aws/sms-voice/publishes``), not from the
processes' hooks. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import costs, floor, startup
from chalicelib.resources import resource_names

ROOT = Path(__file__).resolve().parent.parent

CLIENTS = 4
SEED = 20261128
FINAL = {"DELIVERED", "FAILED_PERM", "CANCELLED"}
# The mock rates the figures were measured with, its default DLR delay (1 s); fast
# retries (as the end-to-end tests); the sweeper at its real rate (every minute).
FAST = {
    "RETRY_MIN_DELAY": "1s",
    "RETRY_MAX_DELAY": "2s",
    "MAX_ATTEMPTS": "4",
    "LOG_LEVEL": "WARNING",
    # The workload every published figure was measured with (the defaults are
    # now the seed's 0.8 / 0.15 / 0.05); bench/floor.py replays the same rates.
    "MOCK_SUCCESS_RATE": str(floor.SUCCESS),
    "MOCK_TEMP_FAIL_RATE": str(floor.TEMP),
    "MOCK_PERM_FAIL_RATE": str(round(1 - floor.SUCCESS - floor.TEMP, 2)),
}
KEYS = ("accepted_per_s", "api_p50_ms", "api_p99_ms", "final_per_s", "floor_per_s",
        "floor_ratio", "decay_ratio", "round_trips_send", "aws_requests_per_message",
        "usd_per_million", "cold_start_ratio", "package_mb", "aws_sms")
AWS_SMS = "aws-sms"
# The rows the events path adds to an aws-sms run's requests per message.
SNS_PUBLISH, SQS_BY_SNS = "sns.Publish", "sqs.SendMessage (by SNS)"
DECAY_WINDOW = 1000


def texts(count: int, seed: int) -> list[str]:
    """The workload's texts: mostly one GSM part, some two, some UCS-2."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        kind = rng.random()
        if kind < 0.80:
            out.append(f"Your code is {rng.randrange(10**6):06d}. Message {i}.")
        elif kind < 0.95:
            out.append(f"Order {i} shipped. " + "Tracking details follow. " * 7)
        else:
            out.append(f"Заказ {i} отправлен. Спасибо!")
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Api:
    url: str

    def post(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/v1/messages", data=data, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-API-Key": key})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


@dataclass
class Load:
    """What the clients saw."""

    started: float = 0.0
    finished: float = 0.0
    latencies: list[float] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)
    api_requests: int = 0
    refused: dict[int, int] = field(default_factory=dict)


def send_all(api: Api, keys: list[str], all_texts: list[str]) -> Load:
    """Each client sends its share in order, one request at a time (429: wait, resend)."""
    load, lock = Load(), threading.Lock()

    def client(index: int, key: str) -> None:
        mine = all_texts[index::len(keys)]
        for n, text in enumerate(mine):
            # A number per message: a provider's opted-out refusal (the emulator's
            # permanent outcome) is the client's opt-out of that number, which would
            # refuse the later messages to it.
            to = f"+1415{index:02d}{n:05d}"
            while True:
                t0 = time.perf_counter()
                status, headers, body = api.post(key, {"to": to, "from": "BENCH",
                                                       "text": text})
                elapsed = time.perf_counter() - t0
                with lock:
                    load.api_requests += 1
                    if status == 202:
                        load.latencies.append(elapsed)
                        load.message_ids.append(body["message_id"])
                    else:
                        load.refused[status] = load.refused.get(status, 0) + 1
                if status == 202:
                    break
                time.sleep(float(headers.get("Retry-After", "1")) if status == 429 else 0.5)

    threads = [threading.Thread(target=client, args=(i, k)) for i, k in enumerate(keys)]
    load.started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.finished = time.time()
    return load


class Books:
    """Direct reads of the stack's tables (the bench's own calls are not counted)."""

    def __init__(self, endpoint: str, stage: str) -> None:
        import boto3

        self.ddb = boto3.session.Session().client("dynamodb", region_name="us-east-1",
                                                  endpoint_url=endpoint)
        self.names = resource_names(stage)

    def create_clients(self, n: int, tag: str) -> list[tuple[str, str]]:
        """``n`` clients with ample credit and a rate limit the workload never meets."""
        from chalicelib.container import hash_api_key

        out = []
        for i in range(n):
            client_id, key = f"bench-{tag}-{i}", f"key-{uuid.uuid4().hex}"
            now = repr(time.time())
            item = {"client_id": {"S": client_id}, "name": {"S": f"bench {i}"},
                    "api_key_hash": {"S": hash_api_key(key)},
                    "available_cents": {"N": "1000000000"}, "initial_cents": {"N": "1000000000"},
                    "held_cents": {"N": "0"}, "spent_cents": {"N": "0"}, "topup_cents": {"N": "0"},
                    "rate_limit_rps": {"N": "10000"}, "rate_limit_burst": {"N": "10000"},
                    "callback_on_sent": {"BOOL": False}, "webhook_secret_version": {"N": "1"},
                    "created_at": {"N": now}}
            self.ddb.put_item(TableName=self.names.clients_table, Item=item)
            out.append((client_id, key))
        return out

    def held(self, client_ids: list[str]) -> int:
        total = 0
        for client_id in client_ids:
            item = self.ddb.get_item(TableName=self.names.clients_table, ConsistentRead=True,
                                     Key={"client_id": {"S": client_id}})["Item"]
            total += int(item["held_cents"]["N"])
        return total

    def wait_settled(self, client_ids: list[str], timeout_s: float) -> float:
        """Poll until nothing is held; return the time it was first seen so."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.held(client_ids) == 0:
                return time.time()
            time.sleep(0.2)
        raise TimeoutError(f"holds still open after {timeout_s:.0f} s")

    def messages(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.names.messages_table, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: names plus values (numbers taken at their text length)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        (kind, raw), = value.items()
        size += len(str(raw).encode()) if kind in {"S", "N"} else 1
    return size


@dataclass
class RunResult:
    workers: int
    messages: int
    load: Load
    final_at: float
    statuses: dict[str, int]
    settled_times: list[float]
    counts: costs.Counts
    round_trips: int
    message_wru: int
    stage: str  # the stack's: its tables are those the counts name
    provider: str = "mock"
    events: costs.EventTraffic = field(default_factory=costs.EventTraffic)
    events_from_records: int | None = None  # aws-sms: the events the messages account for
    sms_usd: float = 0.0  # what the provider reported charging for the SMS (provider_cost)
    floor: dict[str, Any] | None = None

    @property
    def accepted_per_s(self) -> float:
        return self.messages / (self.load.finished - self.load.started)

    @property
    def final_per_s(self) -> float:
        return self.messages / (self.final_at - self.load.started)

    def decay(self) -> float | None:
        """Completion rate over the last window divided by that over the first."""
        t = sorted(self.settled_times)
        if len(t) < 2 * DECAY_WINDOW:
            return None
        first = DECAY_WINDOW / (t[DECAY_WINDOW - 1] - self.load.started)
        last = DECAY_WINDOW / (t[-1] - t[-DECAY_WINDOW - 1])
        return last / first

    def window_rates(self) -> list[float]:
        """Completions per second over each successive window of finished messages."""
        t = sorted(self.settled_times)
        edges = [self.load.started] + t[DECAY_WINDOW - 1::DECAY_WINDOW]
        return [DECAY_WINDOW / (b - a) for a, b in itertools.pairwise(edges) if b > a]


def stack_for(state: Path, workers: int, provider: str = "mock") -> Any:
    from localstack.stack import Stack, free_port

    env = {**FAST, "PROVIDER": provider, "AWS_CALLS_DIR": str(state / "awscalls")}
    return Stack(state_dir=state, emulator_port=free_port(), api_port=free_port(),
                 workers=workers, extra_env=env, launcher=[sys.executable, "-m", "bench.hooked"])


def api_counts(state: Path) -> costs.Counts:
    return costs.read_counts(state / "awscalls", "api-")


def fresh_counts(state: Path, prefix: str = "") -> costs.Counts:
    """The processes' counts once their periodic dump has caught up."""
    time.sleep(1.2)
    return costs.read_counts(state / "awscalls", prefix)


def measure_round_trips(api: Api, key: str, state: Path) -> int:
    """AWS calls of one warm ``POST /v1/messages`` (median of 3), all sequential in its code."""
    trips = []
    for i in range(3):
        before = fresh_counts(state, "api-")
        api.post(key, {"to": "+1234567890", "from": "BENCH", "text": f"round trip {i}"})
        after = fresh_counts(state, "api-")
        trips.append(sum((after - before).calls.values()))
    return int(statistics.median(trips))


def emulator_publishes(endpoint: str) -> dict[str, dict[str, int]]:
    """The emulator's own count of what it published, by SNS topic ARN."""
    from localstack.smsvoice import PUBLISHES_PATH

    with urllib.request.urlopen(endpoint + PUBLISHES_PATH, timeout=10) as resp:
        return dict(json.loads(resp.read()))


def event_traffic(endpoint: str, stage: str, before: dict[str, dict[str, int]],
                  after: dict[str, dict[str, int]]) -> costs.EventTraffic:
    """The SMS events published to the stage's topic between two counts, and SNS's
    sends of them into the topic's SQS subscriptions (one each, as moto's SNS makes)."""
    import boto3

    name = resource_names(stage).sms_events_topic
    arn = next((a for a in after if a.rsplit(":", 1)[-1] == name), None)
    if arn is None:
        return costs.EventTraffic()
    published = after[arn]["publishes"] - before.get(arn, {}).get("publishes", 0)
    sns = boto3.session.Session().client("sns", region_name="us-east-1", endpoint_url=endpoint)
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    to_sqs = sum(1 for sub in subscriptions if sub["Protocol"] == "sqs")
    return costs.EventTraffic(published, published * to_sqs, after[arn]["largest"])


def events_in_records(messages: list[dict[str, Any]]) -> int:
    """The events the messages' items account for: the progress reports recorded on
    each, plus one final report for each message a report settled (it carries the
    provider's cost; the sender's refusals and timeouts do not)."""
    progress = sum(len(m["events"]["L"]) for m in messages if "events" in m)
    finals = sum(1 for m in messages if m["status"]["S"] in FINAL and "provider_cost" in m)
    return progress + finals


def run_app(workers: int, n_messages: int, state: Path, with_floor: bool,
            provider: str = "mock") -> RunResult:
    shutil.rmtree(state, ignore_errors=True)
    stack = stack_for(state, workers, provider)
    try:
        stack.up(timeout_s=120)
        books = Books(stack.endpoint, stack.stage)
        api = Api(stack.api_url)
        (warm_id, warm_key), = books.create_clients(1, "warm")
        api.post(warm_key, {"to": "+1234567890", "from": "BENCH", "text": "warm up"})
        # The API path is the same for every provider: measured on the mock runs only.
        round_trips = measure_round_trips(api, warm_key, state) if provider == "mock" else 0
        books.wait_settled([warm_id], 60)
        pairs = books.create_clients(CLIENTS, f"w{workers}")
        client_ids, keys = [c for c, _ in pairs], [k for _, k in pairs]
        for key in keys:  # warm each client's API key cache, as a busy API has it
            api.post(key, {"to": "+1234567890", "from": "BENCH", "text": "warm up"})
        books.wait_settled([warm_id, *client_ids], 60)
        before = fresh_counts(state)
        published_before = emulator_publishes(stack.endpoint)
        load = send_all(api, keys, texts(n_messages, SEED))
        final_at = books.wait_settled(client_ids, timeout_s=max(300.0, n_messages * 0.5))
        counts = fresh_counts(state) - before
        # Every accepted message's events are out once its final one has settled it.
        events = event_traffic(stack.endpoint, stack.stage, published_before,
                               emulator_publishes(stack.endpoint))
        ids = set(load.message_ids)
        mine = [m for m in books.messages() if m["message_id"]["S"] in ids]
        statuses: dict[str, int] = {}
        for m in mine:
            statuses[m["status"]["S"]] = statuses.get(m["status"]["S"], 0) + 1
        unfinished = len(ids) - sum(n for st, n in statuses.items() if st in FINAL)
        if unfinished:
            raise RuntimeError(f"{unfinished} messages did not reach a final state: {statuses}")
        settled = [float(m["settled_at"]["N"]) for m in mine if "settled_at" in m]
        size = max(item_bytes(m) for m in mine)
        result = RunResult(workers, len(ids), load, final_at, statuses, settled, counts,
                           round_trips, costs.item_write_units(size), stack.stage, provider,
                           events, events_in_records(mine) if provider == AWS_SMS else None,
                           sum(float(m["provider_cost"]["S"]) for m in mine if "provider_cost" in m))
        if with_floor:
            for name in [p for p in stack.running() if p != "emulator"]:
                stack.stop_process(name)
            result.floor = run_floor(stack.endpoint, workers, n_messages, state)
        return result
    finally:
        stack.down()


def run_floor(endpoint: str, workers: int, n_messages: int, state: Path) -> dict[str, Any]:
    """The floor driver against the same emulator, on its own fresh tables."""
    from chalicelib.settings import Settings
    from localstack import provision

    stage = f"floor{workers}"
    settings = replace(Settings.from_env({}), stage=stage, endpoint_url=endpoint)
    provision.provision(settings)
    books = Books(endpoint, stage)
    client_ids = [c for c, _ in books.create_clients(CLIENTS, "floor")]
    env = {**stack_env(endpoint), "AWS_CALLS_DIR": str(state / "floor-calls")}
    floor = [sys.executable, "-m", "bench.floor"]
    base = ["--endpoint", endpoint, "--stage", stage]
    consumers = [subprocess.Popen([*floor, "consume", *base], env=env, cwd=ROOT)
                 for _ in range(workers)]
    try:
        time.sleep(3)  # the pollers are up, as the runners are before the app's workload
        out = state / "floor-produce.json"
        subprocess.run([*floor, "produce", *base, "--clients", ",".join(client_ids),
                        "--per-client", str(n_messages // CLIENTS), "--out", str(out)],
                       env=env, cwd=ROOT, check=True)
        done = books.wait_settled(client_ids, timeout_s=max(300.0, n_messages * 0.5))
        produced = json.loads(out.read_text())
    finally:
        for proc in consumers:
            proc.terminate()
        for proc in consumers:
            proc.wait(timeout=15)
    sent = (n_messages // CLIENTS) * CLIENTS
    counts = costs.read_counts(state / "floor-calls")
    return {"final_per_s": sent / (done - produced["started"]),
            "accepted_per_s": sent / (produced["finished"] - produced["started"]),
            "per_message": {k: v / sent for k, v in sorted(counts.by_operation().items())}}


def stack_env(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    env.pop("AWS_PROFILE", None)
    return env


def requests_per_message(run: RunResult) -> dict[str, Any]:
    """Requests per finished message by ``service.Operation``; an aws-sms run adds the
    events path's (``sns.Publish``, ``sqs.SendMessage (by SNS)``), counted by the emulator."""
    ops = dict(run.counts.by_operation())
    if run.provider == AWS_SMS:
        ops[SNS_PUBLISH] = run.events.sns_requests
        ops[SQS_BY_SNS] = run.events.sqs_requests
    per = {op: round(n / run.messages, 3) for op, n in sorted(ops.items())}
    return {"total": round(sum(ops.values()) / run.messages, 2), **per}


def bill_for(run: RunResult) -> costs.Bill:
    return costs.price(run.counts, run.messages, run.load.api_requests, counted_stage=run.stage,
                       item_wru={resource_names(costs.PRICED_STAGE).messages_table: run.message_wru},
                       events=run.events)


def aws_sms_summary(run: RunResult | None) -> dict[str, Any] | None:
    """The aws-sms run's requests and cost per message, and how its events were counted."""
    if run is None:
        return None
    return {"aws_requests_per_message": requests_per_message(run),
            "usd_per_million": round(bill_for(run).total, 2),
            "events": {"counted_by": "emulator", "published": run.events.publishes,
                       "sqs_deliveries": run.events.sqs_deliveries,
                       "in_records": run.events_from_records},
            "final_per_s": round(run.final_per_s, 1)}


def by_workers(runs: list[RunResult], value: Any) -> dict[str, Any]:
    return {str(r.workers): value(r) for r in runs}


def summary(runs: list[RunResult], cold: float, package_mb: float | None, long_run: bool,
            aws_sms: RunResult | None = None) -> dict[str, Any]:
    ref = runs[-1]
    floors = {r.workers: r.floor["final_per_s"] for r in runs if r.floor}
    return {
        "accepted_per_s": by_workers(runs, lambda r: round(r.accepted_per_s, 1)),
        "api_p50_ms": by_workers(runs, lambda r: round(percentile(r.load.latencies, 0.5) * 1e3, 1)),
        "api_p99_ms": by_workers(runs, lambda r: round(percentile(r.load.latencies, 0.99) * 1e3, 1)),
        "final_per_s": by_workers(runs, lambda r: round(r.final_per_s, 1)),
        "floor_per_s": {str(w): round(f, 1) for w, f in floors.items()} or None,
        "floor_ratio": {str(r.workers): round(r.final_per_s / floors[r.workers], 2)
                        for r in runs if r.workers in floors} or None,
        "decay_ratio": round(d, 2) if long_run and (d := ref.decay()) is not None else None,
        "round_trips_send": ref.round_trips,
        "aws_requests_per_message": requests_per_message(ref),
        "usd_per_million": round(bill_for(ref).total, 2),
        "cold_start_ratio": round(cold, 2),
        "package_mb": round(package_mb, 2) if package_mb is not None else None,
        "aws_sms": aws_sms_summary(aws_sms),
    }


def run_rows(runs: list[RunResult], aws_sms: RunResult | None) -> list[str]:
    """One row per run: throughput, latency, the floor beside it, the statuses reached."""
    lines = ["", "| workers | messages | accepted/s | API p50 ms | API p99 ms | final/s | "
             "floor final/s | floor ratio | statuses |", "|---|---|---|---|---|---|---|---|---|"]
    for r in [*runs, *([aws_sms] if aws_sms else [])]:
        floor = r.floor["final_per_s"] if r.floor else None
        label = f"{r.workers}" if r.provider == "mock" else f"{r.workers}, {r.provider}"
        lines.append(
            f"| {label} | {r.messages} | {r.accepted_per_s:.1f} | "
            f"{percentile(r.load.latencies, 0.5) * 1e3:.0f} | "
            f"{percentile(r.load.latencies, 0.99) * 1e3:.0f} | {r.final_per_s:.1f} | "
            + (f"{floor:.1f} | {r.final_per_s / floor:.2f} | " if floor else "- | - | ")
            + ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items())) + " |")
    return lines


def floor_table(ref: RunResult) -> list[str]:
    lines = ["", f"AWS requests per finished message (workers={ref.workers}; "
             "the floor's replay beside it):", "",
             "| operation | app | floor |", "|---|---|---|"]
    floor_ops = ref.floor["per_message"] if ref.floor else {}
    for op, n in requests_per_message(ref).items():
        lines.append(f"| {op} | {n} | "
                     + (f"{floor_ops[op]:.3f}" if op in floor_ops else
                        f"{sum(floor_ops.values()):.2f}" if op == "total" and floor_ops else "-")
                     + " |")
    return lines


def providers_table(ref: RunResult, aws_sms: RunResult | None) -> list[str]:
    """Requests per finished message, the mock's and aws-sms's from the same workload."""
    if aws_sms is None:
        return []
    mock_ops, aws_ops = requests_per_message(ref), requests_per_message(aws_sms)
    ratio = aws_ops["total"] / mock_ops["total"]
    lines = ["", f"AWS requests per finished message by provider (workers={ref.workers}, the "
             f"same workload; aws-sms/mock {ratio:.2f}):", "",
             "| operation | mock | aws-sms |", "|---|---|---|"]
    ops = ["total", *sorted((set(mock_ops) | set(aws_ops)) - {"total"})]
    for op in ops:
        lines.append(f"| {op} | {mock_ops.get(op, '-')} | {aws_ops.get(op, '-')} |")
    return [*lines, *events_note(aws_sms)]


def events_note(run: RunResult) -> list[str]:
    ev = run.events
    return ["", f"Events (aws-sms): {SNS_PUBLISH} and {SQS_BY_SNS} are counted by the emulator, "
            f"which makes them (GET /_aws/sms-voice/publishes): {ev.publishes} events published, "
            f"{ev.sqs_deliveries} sent into SQS subscriptions, the largest {ev.largest_bytes} B "
            f"({ev.chunks} request each); the messages' records account for "
            f"{run.events_from_records} (progress reports recorded, plus finals that settled "
            "a message)."]


UNIT_OF = {"API Gateway": "api_requests", "Lambda requests": "lambda_invocations",
           "Lambda GB-s": "lambda_gb_s", "DynamoDB writes": "dynamodb_wru",
           "DynamoDB reads": "dynamodb_rru", "SQS": "sqs_requests",
           "SNS publishes (events)": "sns_requests", "SNS deliveries to SQS": "sns_sqs_deliveries",
           "SQS sends by SNS": "sqs_requests_by_sns"}


def cost_table(ref: RunResult, aws_sms: RunResult | None) -> list[str]:
    """Each line's units per message and USD per million, the mock's beside aws-sms's."""
    mock = bill_for(ref)
    aws = bill_for(aws_sms) if aws_sms else None
    lines = ["", "Cost per million messages at us-east-1 list prices (bench/prices.json), "
             "without the SMS itself:", "",
             "| line | mock units per message | mock USD per million | "
             "aws-sms units per message | aws-sms USD per million |", "|---|---|---|---|---|"]
    for line, usd in mock.lines.items():
        unit = UNIT_OF[line]
        theirs = (f"{aws.units[unit]:.4g} | {aws.lines[line]:.2f}" if aws else "- | -")
        lines.append(f"| {line} | {mock.units[unit]:.4g} | {usd:.2f} | {theirs} |")
    lines.append(f"| **total** | | **{mock.total:.2f}** | | "
                 + (f"**{aws.total:.2f}** |" if aws else "- |"))
    if aws_sms is not None:
        lines += ["", "Not in these totals: the SMS. SendTextMessage is no request charge: AWS "
                  "bills each message part at the destination's carrier price, which each "
                  "message's provider_cost records (here the emulator's illustrative prices: "
                  f"{aws_sms.sms_usd / aws_sms.messages * 1e6:,.0f} USD per million messages)."]
    return lines


def table(runs: list[RunResult], result: dict[str, Any], cold: dict[str, float],
          aws_sms: RunResult | None = None) -> str:
    ref = runs[-1]
    lines = [*run_rows(runs, aws_sms), *floor_table(ref), *providers_table(ref, aws_sms),
             *cost_table(ref, aws_sms)]
    if len(ref.settled_times) >= 2 * DECAY_WINDOW:
        rates = " ".join(f"{r:.1f}" for r in ref.window_rates())
        lines += ["", f"Completions per second, by {DECAY_WINDOW:,} finished messages "
                  f"(the API was accepting for the first "
                  f"{ref.load.finished - ref.load.started:.0f} s): {rates}"]
    inv = ", ".join(f"{name} {n} × {s / max(n, 1) * 1e3:.1f} ms"
                    for name, (n, s) in sorted(ref.counts.invocations.items()))
    lines += ["", f"Handler invocations (mean duration): {inv}",
              f"Cold start: `import app` {cold['app_ms']:.0f} ms, `import boto3` "
              f"{cold['boto3_ms']:.0f} ms (medians of {cold['pairs']:.0f} interleaved pairs); "
              f"ratio {cold['ratio']:.2f} (median of the pairwise ratios, interquartile "
              f"range {cold['spread']:.2f})", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the local stack.")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--workers", default=None, help="comma-separated, e.g. 1,2")
    parser.add_argument("--long", action="store_true",
                        help="20,000 messages, workers=2, no floor: the decay ratio")
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--no-package", action="store_true",
                        help="leave package_mb out (null): no `make package` when the zip is missing")
    parser.add_argument("--no-aws-sms", action="store_true",
                        help="skip the PROVIDER=aws-sms run (its key is then null)")
    parser.add_argument("--cold-start-pairs", type=int, default=startup.PAIRS,
                        help="interleaved app/boto3 import pairs (the smoke test takes 3)")
    parser.add_argument("--state", default=str(ROOT / ".local" / "bench"))
    args = parser.parse_args(argv)
    # A TERM (kill, timeout) unwinds like Ctrl-C, so each stack's `finally` stops it:
    # a stray emulator left running would load the next measurement.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    # The bench only ever talks to its own emulators, whatever the shell has.
    os.environ.update({"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    n_messages = args.messages or (20_000 if args.long else 2_000)
    workers = [int(w) for w in (args.workers or ("2" if args.long else "1,2")).split(",")]
    with_floor = not (args.no_floor or args.long)
    started = time.monotonic()
    runs = []
    for w in workers:
        print(f"# run: {n_messages} messages, {CLIENTS} clients, WORKERS={w}", flush=True)
        runs.append(run_app(w, n_messages, Path(args.state) / f"workers-{w}", with_floor))
        r = runs[-1]
        print(f"#   accepted {r.accepted_per_s:.1f}/s, final {r.final_per_s:.1f}/s"
              + (f", floor {r.floor['final_per_s']:.1f}/s" if r.floor else ""), flush=True)
    aws_sms = None
    if not args.no_aws_sms:
        w = runs[-1].workers
        print(f"# run: {n_messages} messages, {CLIENTS} clients, WORKERS={w}, "
              f"PROVIDER={AWS_SMS}", flush=True)
        aws_sms = run_app(w, n_messages, Path(args.state) / AWS_SMS, False, AWS_SMS)
        print(f"#   accepted {aws_sms.accepted_per_s:.1f}/s, final {aws_sms.final_per_s:.1f}/s, "
              f"{aws_sms.events.publishes} events published", flush=True)
    cold = startup.cold_start(args.cold_start_pairs)
    package_mb = None if args.no_package else startup.package_mb()
    result = summary(runs, cold["ratio"], package_mb, args.long, aws_sms)
    print(table(runs, result, cold, aws_sms))
    print(f"# {time.monotonic() - started:.0f} s in all")
    assert tuple(result) == KEYS
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
