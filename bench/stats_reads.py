"""What ``GET /v1/stats`` reads from DynamoDB, for 2,000 and for 20,000 messages.

For each count, on a fresh moto (in-process) with the stage's tables: one client's
messages, spread evenly over the last 24 h, each accepted through the books' real hold
transaction (the message item, the hold and the stats items of its acceptance), then
counted as delivered a few seconds later with the same stats writes the settle
transaction makes (``stats_updates`` of ``stats.settled``). Then ``GET /v1/stats`` in
5-minute buckets and in days, over the 24 h the messages were spread over, through
Chalice's test client, with a botocore hook on every session that counts each DynamoDB
read request and the items it read (``ScannedCount`` of a Query or Scan, the items a
GetItem or BatchGetItem returned).

    python -m bench.stats_reads [--messages 2000,20000]

Prints one JSON line: ``{"<count>": {"5m": {"requests": {...}, "items": N}, "1d": ...}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections import Counter
from typing import Any

READS = {"GetItem", "BatchGetItem", "Query", "Scan"}
KEY = "bench-stats-key"


class ReadCounter:
    """Every DynamoDB read this process makes while ``counting``."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.items = 0
        self.counting = False

    def after_call(self, http_response: Any, parsed: dict[str, Any], model: Any,
                   **_: Any) -> None:
        if not self.counting or model.service_model.service_name != "dynamodb":
            return
        name = model.name
        if name not in READS:
            return
        self.requests[name] += 1
        if name in ("Query", "Scan"):
            self.items += int(parsed.get("ScannedCount", 0))
        elif name == "GetItem":
            self.items += 1 if parsed.get("Item") else 0
        else:
            self.items += sum(len(v) for v in parsed.get("Responses", {}).values())


def _hook_sessions(counter: ReadCounter) -> None:
    """Put ``counter`` on every botocore session made from now on (boto3's, PynamoDB's)."""
    import botocore.session

    original = botocore.session.Session.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register("after-call.dynamodb", counter.after_call)

    botocore.session.Session.__init__ = init


def _fresh_stage() -> Any:
    from chalicelib.settings import Settings
    from localstack import provision

    return provision.in_process(Settings.from_env({"STAGE": "local"}))


def _load(container: Any, count: int, now: float) -> None:
    from chalicelib.container import hash_api_key
    from chalicelib.domain import stats
    from chalicelib.domain.books import Settlement
    from chalicelib.domain.message import Message
    from chalicelib.domain.ratelimit import RateLimit
    from chalicelib.domain.status import HoldState, Status

    client_id = "bench-stats"
    container.accounts.upsert(client_id, "bench", hash_api_key(KEY), count * 10)
    limit = RateLimit(1e9, 10**9)
    for i in range(count):
        created = now - 86_400 + 86_400 * (i + 0.5) / count
        msg = Message(message_id=str(uuid.uuid4()), client_id=client_id, to="+14155550111",
                      sender="BENCH", text="Hello", encoding="GSM-7", parts=1, cost_cents=5,
                      status=Status.QUEUED, hold_state=HoldState.HELD, created_at=created,
                      updated_at=created)
        container.books.hold_and_store(msg, limit, 0)
        done = Settlement(Status.DELIVERED, HoldState.CAPTURED, at=created + 3)
        container.stats_store.add(client_id, stats.settled(msg, done), done.at)


def measure(count: int, counter: ReadCounter) -> dict[str, Any]:
    from chalice.test import Client

    from app import app
    from chalicelib.domain.message import rfc3339

    found: dict[str, Any] = {}
    with _fresh_stage() as container:
        now = time.time()
        _load(container, count, now)
        with Client(app, stage_name="local") as client:
            for bucket in ("5m", "1d"):
                client.http.get("/v1/me", headers={"X-API-Key": KEY})  # the key, cached
                counter.requests.clear()
                counter.items = 0
                counter.counting = True
                # the 24 h the messages were spread over (the load takes minutes)
                window = f"since={rfc3339(now - 86_400)}&until={rfc3339(now + 60)}"
                response = client.http.get(f"/v1/stats?bucket={bucket}&{window}",
                                           headers={"X-API-Key": KEY})
                counter.counting = False
                body = json.loads(response.body)
                assert response.status_code == 200, body
                assert body["totals"]["accepted"] == count, (
                    bucket, body["since"], body["until"], body["totals"],
                    [(r["start"], r["accepted"]) for r in body["series"][:3]],
                    [(r["start"], r["accepted"]) for r in body["series"][-3:]])
                found[bucket] = {"requests": dict(counter.requests), "items": counter.items,
                                 "buckets_answered": len(body["series"])}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", default="2000,20000")
    args = parser.parse_args(argv)
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[name] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    counter = ReadCounter()
    _hook_sessions(counter)
    result = {}
    for count in (int(c) for c in args.messages.split(",")):
        started = time.monotonic()
        result[str(count)] = measure(count, counter)
        result[str(count)]["load_s"] = round(time.monotonic() - started, 1)
    print(json.dumps({"stats_reads": result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
