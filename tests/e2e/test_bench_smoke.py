"""`make bench`, small: 20 messages, one worker, no floor, then the same 20 through
``PROVIDER=aws-sms``. Checks the shape, not the speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e

KEYS = ["accepted_per_s", "api_p50_ms", "api_p99_ms", "final_per_s", "floor_per_s",
        "floor_ratio", "decay_ratio", "round_trips_send", "aws_requests_per_message",
        "usd_per_million", "cold_start_ratio", "package_mb", "aws_sms"]


def statuses_of(lines: list[str], prefix: str) -> dict[str, int]:
    """The statuses column of the run table's row that starts with ``prefix``."""
    row = next(line for line in lines if line.startswith(prefix))
    return {k: int(n) for k, n in (part.rsplit(" ", 1)
                                   for part in row.split("|")[-2].strip().split(", "))}


def test_bench_prints_its_json_line_and_every_message_ends_final(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--messages", "20", "--workers", "1",
         "--no-floor", "--no-package", "--cold-start-pairs", "2", "--state", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MOCK_DLR_DELAY": "0s"},  # reports at once: a shape check
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert list(result) == KEYS
    # Every message reached a final status (the table's status column counts them).
    statuses = statuses_of(lines, "| 1 | 20 |")
    assert set(statuses) <= {"DELIVERED", "FAILED_PERM", "CANCELLED"}
    assert sum(statuses.values()) == 20
    assert result["round_trips_send"] >= 1
    assert result["aws_requests_per_message"]["total"] > 0
    assert result["usd_per_million"] > 0
    # The aws-sms run: every message final too, its events counted by the emulator and priced.
    statuses = statuses_of(lines, "| 1, aws-sms | 20 |")
    assert set(statuses) <= {"DELIVERED", "FAILED_PERM", "CANCELLED"}
    assert sum(statuses.values()) == 20
    aws_sms = result["aws_sms"]
    per_message = aws_sms["aws_requests_per_message"]
    assert per_message["sms-voice.SendTextMessage"] >= 1  # every message tried at least once
    events = aws_sms["events"]
    assert events["counted_by"] == "emulator"
    # Two events (progress, final) for each message AWS accepted, none for those it
    # refused; SNS sends each into the one subscribed queue.
    assert events["published"] % 2 == 0
    assert 2 * statuses.get("DELIVERED", 0) <= events["published"] <= 2 * 20
    assert events["sqs_deliveries"] == events["published"]
    assert per_message["sns.Publish"] == per_message["sqs.SendMessage (by SNS)"] > 0
    assert aws_sms["usd_per_million"] > 0
