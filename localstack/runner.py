"""Local event-source runner: what Lambda's SQS pollers and EventBridge do on AWS.

It long-polls each queue that ``app.py`` registers with ``on_sqs_message``,
calls the handler in-process with a Lambda-shaped SQS event (up to its batch
size), deletes the records the handler did not report in
``batchItemFailures``, and leaves the others to come back after their
visibility timeout. With ``--schedules`` it also runs the ``schedule``
handlers at their rate. Start several (``WORKERS=N``) to scale out as Lambda
does.

    python -m localstack.runner [--worker-id 1] [--schedules]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.resources import ResourceNames, resource_names

ROOT = Path(__file__).resolve().parent.parent

MAX_BACKOFF_S = 5.0


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"
        )
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Turn ReceiveMessage results into the event Lambda passes to an SQS handler."""
    records = []
    for m in messages:
        attributes = {
            name: {"stringValue": a.get("StringValue"), "dataType": a.get("DataType", "String"),
                   "stringListValues": [], "binaryListValues": []}
            for name, a in m.get("MessageAttributes", {}).items()
        }
        records.append({
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        })
    return {"Records": records}


class Runner:
    def __init__(self, app: Any, sqs: Any, names: ResourceNames, region: str) -> None:
        self.app = app
        self.sqs = sqs
        self.names = names
        self.region = region
        self.stop = threading.Event()

    def poll_queue(self, queue: str, batch_size: int, name: str) -> None:
        """Long-poll ``queue`` and feed ``name``'s handler until stopped."""
        handler = self.app.handler_map[name]
        url, arn, backoff = None, "", 0.5
        while not self.stop.is_set():
            try:
                if url is None:
                    url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
                    arn = self.sqs.get_queue_attributes(
                        QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                got = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=1,
                    AttributeNames=["All"], MessageAttributeNames=["All"],
                ).get("Messages", [])
                if got:
                    self._invoke(handler, name, url, arn, got)
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - the emulator may be down; back off
                print(json.dumps({"level": "WARNING", "message": "runner poll failed",
                                  "queue": queue, "error": repr(exc)[:300]}), flush=True)
                url = None
                self.stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _invoke(self, handler: Any, name: str, url: str, arn: str,
                messages: list[dict[str, Any]]) -> None:
        context = LambdaContext(self.names.function(name), str(uuid.uuid4()))
        try:
            response = handler(sqs_event(messages, arn, self.region), context) or {}
        except Exception as exc:  # noqa: BLE001 - as Lambda: the whole batch comes back
            print(json.dumps({"level": "ERROR", "message": "handler raised; batch returns",
                              "function": name, "error": repr(exc)[:300]}), flush=True)
            return
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ])

    def run_schedule(self, name: str, period_s: float) -> None:
        """Invoke a scheduled handler every ``period_s`` seconds until stopped."""
        handler = self.app.handler_map[name]
        while not self.stop.wait(period_s):
            event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                     "source": "aws.events", "account": "000000000000",
                     "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "region": self.region, "resources": [], "detail": {}}
            try:
                handler(event, LambdaContext(self.names.function(name), str(uuid.uuid4())))
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                print(json.dumps({"level": "ERROR", "message": "schedule failed",
                                  "function": name, "error": repr(exc)[:300]}), flush=True)


def schedule_period(expression: Any) -> float | None:
    """Seconds between runs of a Chalice ``Rate``; None for cron expressions."""
    value, unit = getattr(expression, "value", None), getattr(expression, "unit", None)
    if value is None or unit is None:
        return None
    return float(value) * {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}[unit]


def apply_stage_defaults(stage: str, environ: MutableMapping[str, str]) -> None:
    """Fill in from ``.chalice/config.json`` what ``environ`` leaves unset.

    An explicit variable wins over the stage's value, as in the API
    (``localstack/local_api.py``) and the admin CLI.
    """
    from chalicelib.settings import stage_environment

    for name, value in stage_environment(stage, str(ROOT)).items():
        environ.setdefault(name, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Feed the app's SQS and schedule handlers.")
    parser.add_argument("--worker-id", default="1")
    parser.add_argument("--schedules", action="store_true",
                        help="also run @app.schedule handlers (one runner should)")
    args = parser.parse_args(argv)
    stage = os.environ.get("STAGE", "local")
    apply_stage_defaults(stage, os.environ)

    from localstack import loggroups

    loggroups.install(f"worker-{args.worker_id}")  # before the app builds its logger
    import boto3
    from chalice.app import SQSEventConfig

    from app import app

    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.session.Session().client("sqs", region_name=region)
    runner = Runner(app, sqs, resource_names(stage), region)
    threads = []
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig) and source.queue:
            threads.append(threading.Thread(
                target=runner.poll_queue, args=(source.queue, source.batch_size, source.name),
                name=source.name, daemon=True))
        period = schedule_period(getattr(source, "schedule_expression", None))
        if args.schedules and period:
            override = os.environ.get("LOCAL_SCHEDULE_PERIOD")
            if override:
                from chalicelib.settings import parse_duration
                period = parse_duration(override)
            threads.append(threading.Thread(
                target=runner.run_schedule, args=(source.name, period),
                name=source.name, daemon=True))

    def _stop(signum: int, frame: Any) -> None:
        runner.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for t in threads:
        t.start()
    print(json.dumps({"level": "INFO", "message": "runner started", "worker": args.worker_id,
                      "functions": [t.name for t in threads]}), flush=True)
    while not runner.stop.is_set():
        runner.stop.wait(0.5)
    for t in threads:
        t.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
