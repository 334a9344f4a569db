"""Privacy masking of log records, and the metric summary behind `make stats` (no I/O)."""

from __future__ import annotations

import json
import logging

import pytest

from chalicelib.observability import PrivateFormatter, mask_phone, scrub
from localstack.observe import metric_values, percentile, stats_table

pytestmark = pytest.mark.unit

MESSAGE_ID = "12345678-1234-4234-8234-123456789012"  # a uuid with long digit runs


def test_a_phone_number_keeps_only_its_last_four_digits() -> None:
    assert mask_phone("+14155550123") == "+*******0123"
    assert mask_phone("4155550123") == "******0123"


def test_scrub_masks_numbers_drops_text_and_keeps_ids() -> None:
    record = {"message": "send to +14155550123 failed", "to": "+14155550123",
              "text": "secret words", "message_id": MESSAGE_ID, "request_id": "1234567890123",
              "nested": {"msisdn": "4155550123", "text": "more secret", "cost_cents": 5},
              "when": "2026-11-28 15:42:10,989+0000"}
    out = scrub(record)
    assert out["message"] == "send to +*******0123 failed" and out["to"] == "+*******0123"
    assert "text" not in out and "text" not in out["nested"]
    assert out["nested"] == {"msisdn": "******0123", "cost_cents": 5}
    assert (out["message_id"], out["request_id"], out["when"]) == (
        MESSAGE_ID, "1234567890123", record["when"])


def test_scrub_masks_the_two_way_fields_and_drops_inbound_text() -> None:
    """An inbound message's parties, however a provider names them, and never its text."""
    record = {"from": "4155550111", "number": "14155550111", "originationNumber": "+14155550111",
              "To": "4155550000", "Body": "STOP", "messageBody": "HELP", "body": "my code"}
    out = scrub(record)
    assert out == {"from": "******0111", "number": "*******0111",
                   "originationNumber": "+*******0111", "To": "******0000"}


@pytest.mark.parametrize("privacy", [True, False])
def test_the_formatter_scrubs_unless_privacy_is_off(privacy: bool) -> None:
    formatter = PrivateFormatter()
    formatter.privacy = privacy
    record = logging.LogRecord("chalicelib.x", logging.INFO, __file__, 1, "to +14155550123", None, None)
    record.text = "secret words"
    line = json.loads(formatter.format(record))
    assert (line["message"] == "to +14155550123") is not privacy
    assert ("text" in line) is not privacy


def test_stats_sum_counters_and_take_percentiles_of_durations() -> None:
    blobs = [
        {"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Metrics": [
            {"Name": "MessagesSent", "Unit": "Count"},
            {"Name": "ProviderLatency", "Unit": "Milliseconds"}]}]},
         "MessagesSent": [1.0, 1.0], "ProviderLatency": [10.0, 30.0]},
        {"_aws": {"Timestamp": 60_000, "CloudWatchMetrics": [{"Metrics": [
            {"Name": "MessagesFailed", "Unit": "Count"}]}]},
         "MessagesFailed": 1.0, "reason": "MAX_ATTEMPTS"},
    ]
    summaries, span = metric_values(blobs)
    assert span == 60.0
    assert sum(summaries["MessagesSent"].values) == 2
    assert summaries["MessagesFailed (MAX_ATTEMPTS)"].values == [1.0]
    assert percentile(sorted(summaries["ProviderLatency"].values), 50) == 10.0
    assert percentile([float(v) for v in range(1, 101)], 99) == 99.0
    table = stats_table(summaries, span)
    (sent,) = [row.split() for row in table.splitlines() if row.startswith("MessagesSent")]
    assert sent[1:3] == ["2", "2.0"]  # two sent, two a minute
