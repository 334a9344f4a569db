"""What idempotent money costs: a hold and a settlement as DynamoDB transactions (the
gateway's way) beside the ordered single-item writes they replaced, on the emulator.

Per message, each way, against the same emulator and tables of the gateway's shape:

- single: hold = UpdateItem (client) + PutItem (message); settle = UpdateItem
  (message) + UpdateItem (client);
- transactions: hold = TransactWriteItems [Put message, Update client]; settle =
  GetItem (message: its client and cost) + TransactWriteItems [Update message,
  Update client].

The two ways alternate in rounds of 50 messages as the table grows, so a noisy
machine slows both alike; the ratio is what to read. ``--unpatched`` also runs an
emulator without ``patch_moto_transactions`` (moto's own transactions, which copy
whole tables) to show how that decays with the table's size.

    python -m bench.money [--messages 2000] [--unpatched]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

ROUND = 50


def n(value: float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def s(value: str) -> dict[str, str]:
    return {"S": value}


def start_emulator(port: int, patched: bool) -> subprocess.Popen[bytes]:
    code = ("import sys; from localstack import emulator; "
            + ("" if patched else "emulator.patch_moto_transactions = lambda: None; ")
            + f"sys.exit(emulator.main(['--port', '{port}']))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc


def client(port: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}",
                        region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}))


def wait_up(ddb: Any) -> None:
    for _ in range(100):
        try:
            ddb.list_tables()
            return
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.1)
    raise SystemExit("emulator did not start")


def tables(ddb: Any) -> None:
    ddb.create_table(TableName="clients", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "client_id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "client_id", "AttributeType": "S"}])
    ddb.create_table(
        TableName="messages", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "message_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in (
            ("message_id", "S"), ("client_id", "S"), ("created_at", "N"))],
        GlobalSecondaryIndexes=[{"IndexName": "client-index", "KeySchema": [
            {"AttributeName": "client_id", "KeyType": "HASH"},
            {"AttributeName": "created_at", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}])
    ddb.put_item(TableName="clients", Item={
        "client_id": s("c"), "available_cents": n(10**9), "held_cents": n(0),
        "spent_cents": n(0)})


def message(message_id: str, now: float) -> dict[str, Any]:
    return {"message_id": s(message_id), "client_id": s("c"), "to": s("+14155550123"),
            "sender": s("BENCH"), "text": s("Hello SMS Gateway! A benchmark message."),
            "encoding": s("GSM"), "parts": n(1), "cost_cents": n(5), "status": s("QUEUED"),
            "hold_state": s("HELD"), "attempts": n(0), "request_id": s(str(uuid.uuid4())),
            "created_at": n(now), "updated_at": n(now)}


HOLD = {"UpdateExpression": "SET available_cents = available_cents - :c, "
                            "held_cents = held_cents + :c",
        "ConditionExpression": "available_cents >= :c",
        "ExpressionAttributeValues": {":c": n(5)}}
CAPTURE = {"UpdateExpression": "SET held_cents = held_cents - :c, "
                               "spent_cents = spent_cents + :c",
           "ExpressionAttributeValues": {":c": n(5)}}
SETTLE = {"UpdateExpression": "SET #s = :d, hold_state = :cap",
          "ConditionExpression": "#s = :q AND hold_state = :held",
          "ExpressionAttributeNames": {"#s": "status"},
          "ExpressionAttributeValues": {":d": s("DELIVERED"), ":cap": s("CAPTURED"),
                                        ":q": s("QUEUED"), ":held": s("HELD")}}


def single(ddb: Any, message_id: str) -> None:
    ddb.update_item(TableName="clients", Key={"client_id": s("c")}, **HOLD)
    ddb.put_item(TableName="messages", Item=message(message_id, time.time()),
                 ConditionExpression="attribute_not_exists(message_id)")
    ddb.update_item(TableName="messages", Key={"message_id": s(message_id)}, **SETTLE)
    ddb.update_item(TableName="clients", Key={"client_id": s("c")}, **CAPTURE)


def transactions(ddb: Any, message_id: str) -> None:
    ddb.transact_write_items(ClientRequestToken=str(uuid.uuid4()), TransactItems=[
        {"Put": {"TableName": "messages", "Item": message(message_id, time.time()),
                 "ConditionExpression": "attribute_not_exists(message_id)"}},
        {"Update": {"TableName": "clients", "Key": {"client_id": s("c")}, **HOLD}}])
    ddb.get_item(TableName="messages", Key={"message_id": s(message_id)}, ConsistentRead=True)
    ddb.transact_write_items(ClientRequestToken=str(uuid.uuid4()), TransactItems=[
        {"Update": {"TableName": "messages", "Key": {"message_id": s(message_id)}, **SETTLE}},
        {"Update": {"TableName": "clients", "Key": {"client_id": s("c")}, **CAPTURE}}])


def measure(port: int, messages: int, patched: bool) -> dict[str, Any]:
    proc = start_emulator(port, patched)
    try:
        ddb = client(port)
        wait_up(ddb)
        tables(ddb)
        rounds: list[dict[str, float]] = []
        done = 0
        while done < messages:
            row = {"items_before": float(done)}
            for name, way in (("single", single), ("transactions", transactions)):
                started = time.perf_counter()
                for _ in range(ROUND // 2):
                    way(ddb, str(uuid.uuid4()))
                row[name] = (time.perf_counter() - started) / (ROUND // 2) * 1000
            done += ROUND
            rounds.append(row)
        return {"patched": patched, "rounds": rounds}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def summary(result: dict[str, Any]) -> dict[str, float]:
    rounds = result["rounds"]
    first, last = rounds[: max(1, len(rounds) // 5)], rounds[-max(1, len(rounds) // 5):]

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    return {"single_ms": round(mean(rounds, "single"), 2),
            "transactions_ms": round(mean(rounds, "transactions"), 2),
            "ratio": round(mean(rounds, "transactions") / mean(rounds, "single"), 2),
            "transactions_first_ms": round(mean(first, "transactions"), 2),
            "transactions_last_ms": round(mean(last, "transactions"), 2),
            "decay": round(mean(last, "transactions") / mean(first, "transactions"), 2),
            "items": int(rounds[-1]["items_before"] + ROUND)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--port", type=int, default=int(os.environ.get("MONEY_PORT", "4599")))
    parser.add_argument("--unpatched", action="store_true")
    args = parser.parse_args(argv)
    out = {"patched": summary(measure(args.port, args.messages, True))}
    if args.unpatched:
        out["unpatched"] = summary(measure(args.port, args.messages, False))
    for name, row in out.items():
        print(f"{name:>9}: single {row['single_ms']} ms, transactions "
              f"{row['transactions_ms']} ms per message (x{row['ratio']}); transactions "
              f"{row['transactions_first_ms']} -> {row['transactions_last_ms']} ms from the "
              f"first to the last fifth of {row['items']} messages (x{row['decay']})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
