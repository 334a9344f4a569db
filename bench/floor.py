"""The emulator's floor: the gateway's AWS calls per message, replayed with no app code.

A producer process (one thread per client, as the benchmark's clients) makes
what a warm ``POST /v1/messages`` makes: one transaction of the client item's
conditional hold and the message's conditional put, then ``SendMessage``. One consumer process per
worker makes what a runner's sender, DLR and callbacks pollers make:
``ReceiveMessage`` of 10, per record the claim, the provider's put, the DLR
``SendMessage`` and ``SENT`` (or the retry's write and ``ChangeMessageVisibility``,
or a release), ``DeleteMessageBatch``; then per report a read of the message and one
transaction of the settle (by the report's reference, conditional on its provider
id) with the client's counters. Outcomes are drawn at the mock
provider's default rates with the benchmark's retry settings. Plain boto3,
its own fresh tables in the same emulator.

    python -m bench.floor produce|consume ...   (started by bench/run.py)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from chalicelib.resources import resource_names

SUCCESS, TEMP = 0.9, 0.07  # the bench's mock rates (bench/run.py FAST); the rest is permanent
MAX_ATTEMPTS, RETRY_MIN_S, RETRY_MAX_S = 4, 1.0, 2.0
PRICE_CENTS = 5
DLR_DELAY_S = 1  # the mock provider's default
TEXT = "Hello SMS Gateway! This is benchmark message number {:05d}."


def names(stage: str) -> dict[str, str]:
    r = resource_names(stage)
    return {"clients": r.clients_table, "messages": r.messages_table,
            "sends": r.provider_sends_table, "send": r.send_queue, "dlr": r.dlr_queue,
            "callbacks": r.callbacks_queue}


def clients(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, region_name="us-east-1", endpoint_url=endpoint,
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2}))


def n(value: float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def s(value: str) -> dict[str, str]:
    return {"S": value}


class Producer:
    """What the API function calls for one message."""

    def __init__(self, endpoint: str, stage: str) -> None:
        self.t = names(stage)
        self.ddb = clients("dynamodb", endpoint)
        self.sqs = clients("sqs", endpoint)
        self.send_url = self.sqs.get_queue_url(QueueName=self.t["send"])["QueueUrl"]

    def hold_and_put(self, client_id: str, message_id: str, text: str, now: float) -> None:
        """The hold and the message, one transaction (as ``DynamoBooks.hold_and_store``)."""
        item = {"message_id": s(message_id), "client_id": s(client_id), "to": s("+1234567890"),
                "sender": s("BENCH"), "text": s(text), "encoding": s("GSM"), "parts": n(1),
                "cost_cents": n(PRICE_CENTS), "status": s("QUEUED"), "hold_state": s("HELD"),
                "attempts": n(0), "request_id": s(str(uuid.uuid4())), "created_at": n(now),
                "updated_at": n(now), "sweep_shard": n(hash(message_id) % 8),
                "sweep_at": n(now + 300.0)}
        self.ddb.transact_write_items(ClientRequestToken=str(uuid.uuid4()), TransactItems=[
            {"Put": {"TableName": self.t["messages"], "Item": item,
                     "ConditionExpression": "attribute_not_exists(message_id)"}},
            {"Update": {
                "TableName": self.t["clients"], "Key": {"client_id": s(client_id)},
                "UpdateExpression": "SET #a = #a - :c, #h = #h + :c, #t = :t ADD #v :one",
                "ConditionExpression": "#a >= :c AND (attribute_not_exists(#t) OR #t <= :now)",
                "ExpressionAttributeNames": {"#a": "available_cents", "#h": "held_cents",
                                             "#t": "tat", "#v": "books_version"},
                "ExpressionAttributeValues": {":c": n(PRICE_CENTS), ":t": n(now - 1.0),
                                              ":now": n(now), ":one": n(1)}}}])

    def enqueue(self, message_id: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.send_url, MessageBody=json.dumps({"message_id": message_id}),
            MessageAttributes={"request_id": {"DataType": "String",
                                              "StringValue": str(uuid.uuid4())}})

    def one(self, client_id: str, i: int) -> None:
        now = time.time()
        # Leave the bucket idle, as a client under its rate limit does.
        message_id = str(uuid.uuid4())
        self.hold_and_put(client_id, message_id, TEXT.format(i), now)
        self.enqueue(message_id)


class Consumer:
    """What one runner's sender and DLR functions call per record."""

    def __init__(self, endpoint: str, stage: str, seed: int) -> None:
        self.t = names(stage)
        self.endpoint = endpoint
        self.seed = seed
        self.stop = threading.Event()

    def urls(self, sqs: Any) -> dict[str, str]:
        return {q: sqs.get_queue_url(QueueName=self.t[q])["QueueUrl"]
                for q in ("send", "dlr", "callbacks")}

    def poll(self, queue: str, handle: Any) -> None:
        ddb, sqs = clients("dynamodb", self.endpoint), clients("sqs", self.endpoint)
        url = self.urls(sqs)[queue]
        while not self.stop.is_set():
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                      AttributeNames=["All"],
                                      MessageAttributeNames=["All"]).get("Messages", [])
            done = [m for m in got if handle(ddb, sqs, m)]
            if done:
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done)])

    def idle(self, ddb: Any, sqs: Any, record: dict[str, Any]) -> bool:
        return True

    def update(self, ddb: Any, message_id: str, expression: str, condition: str,
               names_: dict[str, str], values: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return dict(ddb.update_item(
                TableName=self.t["messages"], Key={"message_id": s(message_id)},
                UpdateExpression=expression, ConditionExpression=condition,
                ExpressionAttributeNames=names_, ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW")["Attributes"])
        except ddb.exceptions.ConditionalCheckFailedException:
            return None

    def send(self, ddb: Any, sqs: Any, record: dict[str, Any]) -> bool:
        message_id = json.loads(record["Body"])["message_id"]
        now = time.time()
        claimed = self.update(
            ddb, message_id, "SET #s = :sending, #c = :now, #u = :now ADD #a :one",
            "((#s = :queued) OR (#s = :temp AND #r <= :now)) AND #h = :held",
            {"#s": "status", "#c": "claimed_at", "#u": "updated_at", "#a": "attempts",
             "#r": "retry_at", "#h": "hold_state"},
            {":sending": s("SENDING"), ":now": n(now), ":one": n(1), ":queued": s("QUEUED"),
             ":temp": s("FAILED_TEMP"), ":held": s("HELD")})
        if claimed is None:
            return self.early(ddb, sqs, record, message_id, now)
        attempt = int(claimed["attempts"]["N"])
        draw = random.Random(f"{self.seed}:{message_id}:{attempt}").random()
        if draw < SUCCESS:
            self.sent(ddb, sqs, message_id, attempt)
            return True
        if draw < SUCCESS + TEMP and attempt < MAX_ATTEMPTS:
            delay = min(RETRY_MAX_S, RETRY_MIN_S * 2 ** (attempt - 1))
            self.update(ddb, message_id,
                        "SET #s = :temp, #e = :code, #m = :why, #r = :at, #u = :now, #w = :sweep",
                        "#s = :sending AND #a = :attempt",
                        {"#s": "status", "#e": "error_code", "#m": "error", "#r": "retry_at",
                         "#u": "updated_at", "#w": "sweep_at", "#a": "attempts"},
                        {":temp": s("FAILED_TEMP"), ":code": s("ESME_RTHROTTLED"),
                         ":why": s("throttled"), ":at": n(now + delay), ":now": n(time.time()),
                         ":sweep": n(now + delay + 300), ":sending": s("SENDING"),
                         ":attempt": n(attempt)})
            sqs.change_message_visibility(QueueUrl=self.urls_cache(sqs)["send"],
                                          ReceiptHandle=record["ReceiptHandle"],
                                          VisibilityTimeout=int(round(delay)))
            return False
        self.settle(ddb, message_id, "FAILED_PERM", "RELEASED", "available_cents")
        return True

    def urls_cache(self, sqs: Any) -> dict[str, str]:
        if not hasattr(self, "_urls"):
            self._urls = self.urls(sqs)
        return self._urls

    def early(self, ddb: Any, sqs: Any, record: dict[str, Any], message_id: str,
              now: float) -> bool:
        item = ddb.get_item(TableName=self.t["messages"], Key={"message_id": s(message_id)},
                            ConsistentRead=True).get("Item", {})
        retry_at = float(item.get("retry_at", {}).get("N", 0))
        if item.get("status", {}).get("S") == "FAILED_TEMP" and retry_at > now:
            sqs.change_message_visibility(QueueUrl=self.urls_cache(sqs)["send"],
                                          ReceiptHandle=record["ReceiptHandle"],
                                          VisibilityTimeout=int(round(retry_at - now)))
            return False
        return True

    def sent(self, ddb: Any, sqs: Any, message_id: str, attempt: int) -> None:
        provider_id = f"mock-{uuid.uuid4().hex}"
        now = time.time()
        with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
            ddb.put_item(TableName=self.t["sends"], Item={
                "message_id": s(message_id), "provider_message_id": s(provider_id),
                "attempt": n(attempt), "sent_at": n(now)},
                ConditionExpression="attribute_not_exists(message_id)")
        sqs.send_message(QueueUrl=self.urls_cache(sqs)["dlr"], DelaySeconds=DLR_DELAY_S,
                         MessageBody=json.dumps({
            "provider": "mock", "reference": message_id, "provider_message_id": provider_id,
            "status": "DELIVERED", "error_code": None, "occurred_at": now}))
        self.update(ddb, message_id,
                    "SET #s = :sent, #p = :mock, #i = :pid, #t = :now, #u = :now",
                    "#s = :sending AND #a = :attempt",
                    {"#s": "status", "#p": "provider", "#i": "provider_message_id",
                     "#t": "sent_at", "#u": "updated_at", "#a": "attempts"},
                    {":sent": s("SENT"), ":mock": s("mock"), ":pid": s(provider_id),
                     ":now": n(now), ":sending": s("SENDING"), ":attempt": n(attempt)})

    def report(self, ddb: Any, sqs: Any, record: dict[str, Any]) -> bool:
        body = json.loads(record["Body"])
        if self.settle(ddb, body["reference"], "DELIVERED", "CAPTURED", "spent_cents",
                       body["provider_message_id"]):
            return True
        final = ddb.get_item(TableName=self.t["messages"], ConsistentRead=True,
                             Key={"message_id": s(body["reference"])}).get("Item", {})
        if final.get("status", {}).get("S") in ("DELIVERED", "FAILED_PERM", "CANCELLED"):
            return True
        # It overtook the SENT write: back after 1, 2, 4 ... s, as the app does.
        receives = int(record.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        sqs.change_message_visibility(QueueUrl=self.urls_cache(sqs)["dlr"],
                                      ReceiptHandle=record["ReceiptHandle"],
                                      VisibilityTimeout=2 ** (receives - 1))
        return False

    def settle(self, ddb: Any, message_id: str, status: str, hold: str, into: str,
               provider_id: str | None = None) -> bool:
        """Read the message (its client and cost), then its status and the client's
        counters in one transaction (as ``DynamoBooks.settle``)."""
        msg = ddb.get_item(TableName=self.t["messages"], Key={"message_id": s(message_id)},
                           ConsistentRead=True).get("Item")
        if msg is None:
            return False
        now = time.time()
        condition = "#s IN (:sending, :sent, :temp, :queued) AND #h = :held"
        names_ = {"#s": "status", "#h": "hold_state", "#t": "settled_at", "#u": "updated_at",
                  "#w": "sweep_at", "#k": "sweep_shard"}
        values = {":to": s(status), ":hold": s(hold), ":now": n(now), ":sending": s("SENDING"),
                  ":sent": s("SENT"), ":temp": s("FAILED_TEMP"), ":queued": s("QUEUED"),
                  ":held": s("HELD")}
        if provider_id is not None:
            condition += " AND #i = :pid"
            names_["#i"], values[":pid"] = "provider_message_id", s(provider_id)
        try:
            ddb.transact_write_items(ClientRequestToken=str(uuid.uuid4()), TransactItems=[
                {"Update": {"TableName": self.t["messages"], "Key": {"message_id": s(message_id)},
                            "UpdateExpression": "SET #s = :to, #h = :hold, #t = :now, "
                                                "#u = :now REMOVE #w, #k",
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": names_,
                            "ExpressionAttributeValues": values}},
                {"Update": {"TableName": self.t["clients"], "Key": {"client_id": msg["client_id"]},
                            "UpdateExpression": "SET #h = #h - :c, #x = #x + :c ADD #v :one",
                            "ExpressionAttributeNames": {"#h": "held_cents", "#x": into,
                                                         "#v": "books_version"},
                            "ExpressionAttributeValues": {":c": msg["cost_cents"],
                                                          ":one": n(1)}}}])
        except ddb.exceptions.TransactionCanceledException:
            return False
        return True


def produce(args: argparse.Namespace) -> int:
    """One thread per client, each sending its share as fast as the emulator answers."""
    producer = Producer(args.endpoint, args.stage)
    latencies: list[float] = []
    lock = threading.Lock()

    def client(client_id: str) -> None:
        own = []
        for i in range(args.per_client):
            t0 = time.perf_counter()
            producer.one(client_id, i)
            own.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client, args=(c,)) for c in args.clients.split(",")]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(args.out).write_text(json.dumps({"started": started, "finished": time.time(),
                                          "latencies": latencies}))
    return 0


def consume(args: argparse.Namespace) -> int:
    consumer = Consumer(args.endpoint, args.stage, args.seed)
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop.set())
    threads = [threading.Thread(target=consumer.poll, args=(q, h), daemon=True)
               for q, h in (("send", consumer.send), ("dlr", consumer.report),
                            ("callbacks", consumer.idle))]
    for t in threads:
        t.start()
    while not consumer.stop.wait(0.5):
        pass
    for t in threads:
        t.join(timeout=5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["produce", "consume"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--clients", default="")
    parser.add_argument("--per-client", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=os.devnull)
    args = parser.parse_args(argv)
    from bench import awscalls

    awscalls.install(f"floor-{args.role}")
    return produce(args) if args.role == "produce" else consume(args)


if __name__ == "__main__":
    sys.exit(main())
