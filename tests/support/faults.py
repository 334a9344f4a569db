"""A fault injector: an HTTP proxy between the gateway and the AWS emulator that lets a
request reach the emulator (so a write is applied) and then loses its answer.

The answer is lost one of two ways, as on a real network: the connection closes with
no answer (botocore sees ``ConnectionClosedError``), or a 500 ``InternalServerError``
comes back, which DynamoDB documents as "the request may or may not have been
processed". botocore retries both, so the gateway sees the repeat of a write that
already happened: exactly the fault a money write must survive.

    with FaultyProxy(emulator_url, lose=LoseNth("TransactWriteItems", 3)) as proxy:
        settings = replace(settings, endpoint_url=proxy.url)

The proxy also runs alone (``python -m tests.support.faults --target URL --port N
--lose-rate 0.1``) so a whole local stack can sit behind it.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

from tests.support.proxy import Answer, Proxy, Request

DYNAMODB_PREFIX = "DynamoDB_20120810."
# Operations that write: their answers are the ones worth losing.
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems",
                             "BatchWriteItem"})

# Decides, for each DynamoDB operation that reached the emulator, whether its answer is lost.
LosePolicy = Callable[[str], bool]


class LoseNth:
    """Lose the answer of the ``n``-th call of ``operation`` (1-based), and only that one."""

    def __init__(self, operation: str, n: int) -> None:
        self._operation = operation
        self._n = n
        self._seen = 0
        self._lock = threading.Lock()

    def __call__(self, operation: str) -> bool:
        if operation != self._operation:
            return False
        with self._lock:
            self._seen += 1
            return self._seen == self._n


class LoseRate:
    """Lose the answers of a share ``rate`` of DynamoDB writes, drawn from a seeded random."""

    def __init__(self, rate: float, seed: int = 16, writes: frozenset[str] = DYNAMODB_WRITES,
                 ) -> None:
        self._rate = rate
        self._writes = writes
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def __call__(self, operation: str) -> bool:
        if operation not in self._writes:
            return False
        with self._lock:
            return self._random.random() < self._rate


def _never(operation: str) -> bool:
    return False


class FaultyProxy(Proxy):
    """The forwarding proxy (``tests/support/proxy.py``) to ``target``, losing answers of
    DynamoDB operations as ``lose`` decides, after the emulator applied them."""

    def __init__(self, target: str, lose: LosePolicy = _never, port: int = 0,
                 spare_tables: frozenset[str] = frozenset()) -> None:
        super().__init__(listen_port=port)
        self._target_port = urlsplit(target).port or 80
        self.lose = lose
        # Tables whose answers are never lost: the mock provider's own record stands for
        # the provider's systems, which are not between the gateway and its database.
        self.spare_tables = spare_tables
        self.calls: Counter[str] = Counter()  # DynamoDB operations that reached the emulator
        self.lost: Counter[str] = Counter()  # ... and whose answers were lost

    def __enter__(self) -> FaultyProxy:
        self.start(self._target_port)
        return self

    def exchange(self, request: Request) -> Answer | None:
        answer = self.forward(request)
        target = request.headers.get("x-amz-target", "")
        if not target.startswith(DYNAMODB_PREFIX):
            return answer
        operation = target[len(DYNAMODB_PREFIX):]
        lost = not self._spared(request) and self.lose(operation)
        with self._lock:
            self.calls[operation] += 1
            if lost:
                self.lost[operation] += 1
                # Alternate the two ways an answer gets lost.
                if sum(self.lost.values()) % 2:
                    return None  # no answer at all: the connection closes
        return INTERNAL_ERROR if lost else answer


    def _spared(self, request: Request) -> bool:
        if not self.spare_tables:
            return False
        try:
            table = json.loads(request.body or b"{}").get("TableName")
        except ValueError:
            return False
        return table in self.spare_tables


INTERNAL_ERROR = Answer(500, "Internal Server Error", [
    ("Content-Type", "application/x-amz-json-1.0")], json.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "Internal server error (injected)"}).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An HTTP proxy that loses DynamoDB answers.")
    parser.add_argument("--target", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lose-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)
    proxy = FaultyProxy(args.target, LoseRate(args.lose_rate, args.seed), args.port)
    with proxy:
        print(proxy.url, flush=True)
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
