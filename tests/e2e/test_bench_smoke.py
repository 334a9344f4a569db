"""`make bench`, small: 50 messages, one worker, no floor. Checks the shape, not the speed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.e2e

KEYS = ["accepted_per_s", "api_p50_ms", "api_p99_ms", "final_per_s", "floor_per_s",
        "floor_ratio", "decay_ratio", "round_trips_send", "aws_requests_per_message",
        "usd_per_million", "cold_start_ratio", "package_mb"]


def test_bench_prints_its_json_line_and_every_message_ends_final(tmp_path: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--messages", "50", "--workers", "1",
         "--no-floor", "--cold-start-pairs", "3", "--state", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert list(result) == KEYS
    # Every message reached a final status (the table's status column counts them).
    row = next(line for line in lines if line.startswith("| 1 | 50 |"))
    statuses = dict(part.rsplit(" ", 1) for part in row.split("|")[-2].strip().split(", "))
    assert set(statuses) <= {"DELIVERED", "FAILED_PERM", "CANCELLED"}
    assert sum(int(n) for n in statuses.values()) == 50
    assert result["round_trips_send"] >= 1
    assert result["aws_requests_per_message"]["total"] > 0
    assert result["usd_per_million"] > 0
