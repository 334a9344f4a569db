"""Delivery statistics (domain/stats.py): latency bins, percentiles, what a status change
counts, the query's limits and the zero-filled series; and a message's timeline."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import stats
from chalicelib.domain.books import Settlement
from chalicelib.domain.message import Message, ProviderEvent, StatusChange, timeline
from chalicelib.domain.status import HoldState, Status

pytestmark = pytest.mark.unit

NOW = 1_764_763_200.0  # 2025-12-03T12:00:00Z, a day edge plus 12 h
DAY = stats.ONE_DAY


def message(**changes: object) -> Message:
    base: dict[str, object] = dict(
        message_id="m-1", client_id="acme", to="+14155550111", sender="ACME", text="hi",
        encoding="GSM-7", parts=2, cost_cents=10, status=Status.SENT,
        hold_state=HoldState.HELD, created_at=NOW - 10, updated_at=NOW - 10)
    base.update(changes)
    return Message(**base)  # type: ignore[arg-type]


# -- latency bins and percentiles ------------------------------------------------------
@pytest.mark.parametrize(("ms", "index"), [(0, 0), (49.9, 0), (50, 1), (70.6, 1), (70.8, 2),
                                           (100, 3), (1e12, stats.LATENCY_BINS - 1)])
def test_a_time_falls_in_its_log_spaced_bin(ms: float, index: int) -> None:
    assert stats.latency_bin(ms) == index


@given(st.floats(min_value=50, max_value=stats.EDGES_MS[-1] * 0.999))
def test_a_bin_reports_a_time_within_nineteen_percent(ms: float) -> None:
    reported = stats.bin_value_ms(stats.latency_bin(ms))
    assert abs(reported - ms) / ms <= math.sqrt(math.sqrt(2)) - 1 + 1e-9  # ≈ 18.9 %


def test_percentiles_come_from_the_merged_bins() -> None:
    # 90 deliveries in about 1 s, 9 in about 10 s, 1 in about 100 s
    histogram = {stats.latency_bin(1000): 90, stats.latency_bin(10_000): 9,
                 stats.latency_bin(100_000): 1}
    found = stats.percentiles(histogram)
    assert found is not None
    assert 800 < found["p50"] < 1200
    assert 8000 < found["p95"] < 12_000
    assert 8000 < found["p99"] < 12_000  # the 99th of 100 is the last of the 10 s ones
    assert stats.percentiles({}) is None


# -- what a status change counts ---------------------------------------------------------
def test_an_accepted_message_counts_itself_and_its_parts() -> None:
    assert stats.accepted(message(parts=3)).counts == {"accepted": 1, "parts": 3}


def test_a_delivery_counts_its_spend_and_its_time_from_the_send_time() -> None:
    msg = message(send_at=NOW - 4)  # scheduled: its time counts from its send time
    delta = stats.settled(msg, Settlement(Status.DELIVERED, HoldState.CAPTURED, at=NOW))
    assert delta.counts == {"delivered": 1, "spent_cents": 10}
    assert delta.latency_bin == stats.latency_bin(4000)


def test_a_permanent_failure_releases_so_nothing_is_spent() -> None:
    delta = stats.settled(message(), Settlement(Status.FAILED_PERM, HoldState.RELEASED, at=NOW,
                                                code="UNDELIVERABLE"))
    assert delta.counts == {"failed_perm": 1} and delta.latency_bin is None


def test_an_expired_message_counts_as_failed_and_expired() -> None:
    delta = stats.settled(message(), Settlement(Status.FAILED_PERM, HoldState.RELEASED, at=NOW,
                                                code=stats.EXPIRED_CODE))
    assert delta.counts == {"failed_perm": 1, "expired": 1}


def test_a_cancellation_counts_once_and_a_failed_attempt_on_its_own() -> None:
    delta = stats.settled(message(), Settlement(Status.CANCELLED, HoldState.RELEASED, at=NOW))
    assert delta.counts == {"cancelled": 1}
    assert stats.failed_temporarily().counts == {"failed_temp": 1}
    assert not stats.Delta({})


# -- the query ---------------------------------------------------------------------------
def test_the_default_query_is_the_last_day_in_five_minute_buckets() -> None:
    query = stats.stats_query(None, None, None, now=NOW + 1)
    assert (query.bucket, query.width, query.grain) == ("5m", 300, "5m")
    assert query.until == NOW + 300 and query.since == NOW + 300 - DAY - 300
    assert (query.until - query.since) // query.width == 289  # widened to whole buckets


def test_hourly_buckets_are_summed_from_the_five_minute_items() -> None:
    query = stats.stats_query("1h", NOW - 3600, NOW, now=NOW)
    assert (query.width, query.grain, query.since, query.until) == (3600, "5m", NOW - 3600, NOW)


@pytest.mark.parametrize(("bucket", "since", "until", "says"), [
    ("2m", None, None, "bucket must be one of 5m, 1h, 1d"),
    ("5m", NOW, NOW - 1, "since must be before until"),
    ("5m", NOW - 3 * DAY, NOW, "5m buckets cover at most 48 hours"),
    ("1h", NOW - 3 * DAY, NOW, "1h buckets cover at most 48 hours"),
    ("1d", NOW - 401 * DAY, NOW, "1d buckets cover at most 9600 hours"),
])
def test_a_query_that_would_read_too_much_or_makes_no_sense_is_refused(
        bucket: str, since: float | None, until: float | None, says: str) -> None:
    with pytest.raises(stats.StatsQueryError, match=says):
        stats.stats_query(bucket, since, until, now=NOW)


def test_the_widest_ranges_read_a_few_hundred_items_at_most() -> None:
    for bucket in stats.BUCKETS:
        width, grain, widest = stats.BUCKETS[bucket]
        assert widest // stats.STORED[grain] <= 600


# -- the series --------------------------------------------------------------------------
def test_a_series_is_zero_filled_summed_and_totalled() -> None:
    query = stats.stats_query("1h", NOW - 2 * 3600, NOW, now=NOW)
    delivered = stats.latency_bin(2000)
    stored = [
        stats.Bucket(int(NOW - 7200), {"accepted": 3, "delivered": 2, "failed_perm": 1,
                                       "spent_cents": 20}, {delivered: 2}),
        stats.Bucket(int(NOW - 7200 + 300), {"accepted": 1, "delivered": 1}, {delivered: 1}),
        stats.Bucket(int(NOW + 300), {"accepted": 99}),  # outside the range: not counted
    ]
    body = stats.series(query, stored)
    rows = body["series"]
    assert isinstance(rows, list) and len(rows) == 2
    first, second = rows
    assert first["accepted"] == 4 and first["delivered"] == 3 and first["spent_cents"] == 20
    assert first["delivery_rate"] == 0.75
    assert first["time_to_deliver_ms"]["p50"] == round(stats.bin_value_ms(delivered))
    assert second["accepted"] == 0 and second["delivery_rate"] is None
    assert second["time_to_deliver_ms"] is None
    assert body["totals"]["accepted"] == 4  # type: ignore[index]
    assert list(first) == ["start", *stats.COUNTERS, "delivery_rate", "time_to_deliver_ms"]
    assert body["since"] == "2025-12-03T10:00:00.000Z" and body["until"] == "2025-12-03T12:00:00.000Z"


def test_a_day_label_and_start_are_utc() -> None:
    assert stats.utc_day_start(NOW) == NOW - 12 * 3600
    assert stats.day_label(NOW) == "2025-12-03"


# -- the timeline ------------------------------------------------------------------------
def test_a_stored_status_change_reads_back_as_it_was_written() -> None:
    change = StatusChange(NOW, "FAILED_TEMP", 2, "twilio", "provider error 30003")
    assert StatusChange.parse(change.key()) == StatusChange(NOW, "FAILED_TEMP", 2, "twilio",
                                                            "provider_error_30003")
    assert StatusChange.parse(StatusChange(NOW, "QUEUED").key()) == StatusChange(NOW, "QUEUED")


def test_the_timeline_numbers_attempts_and_a_claim_handed_back_does_not_count() -> None:
    history = (StatusChange(NOW, "QUEUED"), StatusChange(NOW + 1, "SENDING"),
               StatusChange(NOW + 2, "QUEUED", code="UNCLAIMED"),
               StatusChange(NOW + 3, "SENDING"),
               StatusChange(NOW + 4, "FAILED_TEMP", 1, "mock", "MOCK_TEMP"),
               StatusChange(NOW + 6, "SENDING"),
               StatusChange(NOW + 7, "SENT", 2, "mock"),
               StatusChange(NOW + 9, "DELIVERED", 2, "mock"))
    events = (ProviderEvent(NOW + 8, "accepted"),)
    rows = timeline(history, events)
    assert [(r["status"], r["attempt"]) for r in rows] == [
        ("QUEUED", None), ("SENDING", 1), ("QUEUED", None), ("SENDING", 1),
        ("FAILED_TEMP", 1), ("SENDING", 2), ("SENT", 2), ("accepted", None), ("DELIVERED", 2)]
    assert rows[4]["error_code"] == "MOCK_TEMP" and rows[4]["provider"] == "mock"
    assert rows[7]["source"] == "provider" and rows[0]["source"] == "gateway"
    assert rows[0]["at"] == "2025-12-03T12:00:00.000Z"
