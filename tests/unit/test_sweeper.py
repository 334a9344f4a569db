"""The sweeper's guarantees on in-memory fakes: what it recovers, and when, whatever
waits in the send queue. No emulator, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest

from chalicelib.domain.errors import BackendUnavailableError
from chalicelib.domain.provider_errors import Outcome
from chalicelib.domain.status import HoldState, Status, SweepLane
from chalicelib.domain.work import DONE
from chalicelib.services.sweeper import Sweeper
from tests.fakes.messages import FakeMessages
from tests.fakes.world import SEED_BODY, World

pytestmark = pytest.mark.unit
STUCK, SEND_TIMEOUT, DLR_TIMEOUT, PERIOD = 300.0, 60.0, 72 * 3600.0, 60.0


def _queued(world: World) -> str:
    return world.accept.accept(world.client(), dict(SEED_BODY)).message.message_id


def _lost(world: World) -> str:
    """Accepted (202), but its enqueue was lost."""
    world.send_queue.down = True
    message_id = _queued(world)
    world.send_queue.down = False
    return message_id


def _backlog(world: World, n: int = 3) -> list[str]:
    """Messages whose records wait in the send queue, never received."""
    world.send_queue.visible += n
    return [_queued(world) for _ in range(n)]


def _records_for(world: World, message_id: str) -> int:
    return sum(1 for body in world.send_queue.sent if body["message_id"] == message_id)


def _status(world: World, message_id: str) -> Status:
    msg = world.messages.get(message_id)
    assert msg is not None
    return msg.status


def _sweeper(world: World, messages: FakeMessages | None = None, pass_limit: int = 1000,
             pass_time_s: float = 8.0, monotonic: Callable[[], float] | None = None) -> Sweeper:
    return Sweeper(STUCK, DLR_TIMEOUT, messages or world.messages, world.ledger,
                   world.send_queue, world.telemetry, world.clock, send_timeout_s=SEND_TIMEOUT,
                   pass_limit=pass_limit, pass_time_s=pass_time_s,
                   monotonic=monotonic or world.clock)


def test_a_lost_enqueue_is_re_sent_at_its_first_turn_behind_a_backlog() -> None:
    world = World()
    waiting = _backlog(world)
    lost = _lost(world)

    world.clock.advance(STUCK - 1)
    assert world.sweeper.sweep().reenqueued == []  # not its turn yet
    world.clock.advance(PERIOD)  # the first pass after created + STUCK_AFTER
    report = world.sweeper.sweep()

    assert lost in report.reenqueued
    assert set(report.reenqueued) == {lost, *waiting}  # a duplicate each: harmless
    assert world.sender.handle(lost) is DONE and _status(world, lost) is Status.SENT
    assert world.sweeper.sweep().reenqueued == []  # one turn each


def test_an_abandoned_claim_is_recovered_once_it_can_be_taken_over() -> None:
    world = World()
    _backlog(world)
    early, late = _queued(world), _queued(world)
    assert world.messages.claim(early, world.clock(), world.clock() - SEND_TIMEOUT)
    world.clock.advance(STUCK - 10)
    claimed_late = world.clock()
    assert world.messages.claim(late, claimed_late, claimed_late - SEND_TIMEOUT)
    # Both workers die, and their records are lost.

    world.clock.advance(11)  # a pass just after their turn
    report = world.sweeper.sweep()
    assert early in report.reenqueued  # its claim is older than SEND_TIMEOUT
    assert late not in report.reenqueued  # a record now would be refused by the claim
    world.clock.now = claimed_late + SEND_TIMEOUT + 1 + PERIOD
    assert late in world.sweeper.sweep().reenqueued

    for message_id in (early, late):
        assert world.sender.handle(message_id) is DONE
        assert _status(world, message_id) is Status.SENT
    assert world.telemetry.counts["SendClaimTakenOver"] == 2


def test_a_failed_temp_whose_record_was_lost_is_re_enqueued_after_its_retry_time() -> None:
    world = World(script=[Outcome.TEMPORARY, Outcome.ACCEPTED])
    _backlog(world)
    message_id = _queued(world)
    world.sender.handle(message_id)  # FAILED_TEMP; its delayed record is then lost
    msg = world.messages.get(message_id)
    assert msg is not None and msg.status is Status.FAILED_TEMP and msg.retry_at is not None

    world.clock.now = msg.retry_at + STUCK - 1
    assert message_id not in world.sweeper.sweep().reenqueued
    world.clock.now = msg.retry_at + STUCK + PERIOD
    assert message_id in world.sweeper.sweep().reenqueued
    assert world.sender.handle(message_id) is DONE and _status(world, message_id) is Status.SENT


def test_a_sent_message_without_report_expires_at_dlr_timeout_behind_a_backlog() -> None:
    world = World()
    client = world.client()
    met = world.accept.accept(client, dict(SEED_BODY)).message.message_id
    world.sender.handle(met)
    world.clock.advance(STUCK + PERIOD)
    assert world.sweeper.sweep().expired == []  # met: moved to the timed lane
    # Sent since: its turn in the queued lane has not come yet.
    never_met = world.accept.accept(client, dict(SEED_BODY)).message.message_id
    world.sender.handle(never_met)
    _backlog(world, 5)

    world.clock.advance(DLR_TIMEOUT)
    report = world.sweeper.sweep()

    assert sorted(report.expired) == sorted([never_met, met])
    for message_id in (never_met, met):
        msg = world.messages.get(message_id)
        assert msg is not None and (msg.status, msg.error_code, msg.hold_state) == (
            Status.FAILED_PERM, "DLR_TIMEOUT", HoldState.RELEASED)
    balance = world.accounts.balance(client.client_id)
    assert (balance.available, balance.held, balance.spent) == (1000, 0, 0)


def test_under_a_long_backlog_a_waiting_message_gets_a_logarithmic_number_of_duplicates() -> None:
    world = World()
    waiting = _backlog(world, 1)[0]  # its record waits, hour after hour
    start = world.clock()

    while world.clock() < start + 6 * 3600:
        world.clock.advance(PERIOD)
        world.sweeper.sweep()

    # Turns at 5, 10, 20, 40, 80 min (the wait doubles), then hourly: 140, 200,
    # 260, 320 min. Re-enqueued every STUCK_AFTER, it would have 72 duplicates.
    assert _records_for(world, waiting) == 1 + 9
    assert world.sender.handle(waiting) is DONE
    assert [world.sender.handle(waiting) for _ in range(9)] == [DONE] * 9
    assert len(world.provider.submissions) == 1


def test_neither_lane_waits_behind_the_other_and_each_goes_oldest_first() -> None:
    world = World()
    client = world.client()
    sent = []
    for _ in range(2):
        message_id = world.accept.accept(client, dict(SEED_BODY)).message.message_id
        world.sender.handle(message_id)
        sent.append(message_id)
    world.clock.advance(STUCK + PERIOD)
    world.sweeper.sweep()  # both SENT move to the timed lane
    queued = []
    for _ in range(10):  # a long queued lane, all of it due before the timed lane
        queued.append(_queued(world))
        world.clock.advance(1.0)
    world.clock.advance(DLR_TIMEOUT)
    sweeper = _sweeper(world, pass_limit=4)

    first = sweeper.sweep()
    assert first.cut_short and first.examined == 4
    assert sorted(first.expired) == sorted(sent)  # half the budget went to the timed lane
    assert first.reenqueued == queued[:2]  # the oldest of the queued lane
    assert world.telemetry.counts["SweepCutShort"] == 1
    second = sweeper.sweep()
    assert second.reenqueued == queued[2:6]  # what was left, oldest first


def test_a_pass_stops_at_its_time_budget_and_the_next_goes_on() -> None:
    world = World()
    queued = [_queued(world) for _ in range(5)]
    world.clock.advance(STUCK + PERIOD)
    ticks = iter(range(1000))
    sweeper = _sweeper(world, pass_time_s=3.0, monotonic=lambda: float(next(ticks)))

    # A second passes each time it looks at the clock: two messages fit in a pass.
    passes = [sweeper.sweep() for _ in range(3)]

    assert [p.cut_short for p in passes] == [True, True, False]
    assert [p.reenqueued for p in passes] == [queued[:2], queued[2:4], queued[4:]]


class _RacedMessages(FakeMessages):
    """Another sweeper takes every turn between this one's index read and its actions."""

    def __init__(self, base: FakeMessages, rival: Sweeper) -> None:
        super().__init__(base.stuck_after_s)
        self.rows = base.rows
        self.rival: Sweeper | None = rival
        self.listed: dict[SweepLane, list[tuple[str, float]]] = {}

    def due_for_sweep(self, lane: SweepLane, now: float) -> list[tuple[str, float]]:
        if self.rival is not None:
            self.listed = {each: FakeMessages.due_for_sweep(self, each, now) for each in SweepLane}
            rival, self.rival = self.rival, None
            rival.sweep(now)
        return self.listed.pop(lane)


def test_two_sweepers_act_once_per_turn() -> None:
    world = World()
    lost, waiting = _lost(world), _queued(world)
    world.sender.handle(sent := _queued(world))
    world.clock.advance(DLR_TIMEOUT + STUCK)
    late = _sweeper(world, _RacedMessages(world.messages, rival=world.sweeper))

    report = late.sweep()

    assert report.examined == 3 and (report.reenqueued, report.expired) == ([], [])
    assert (_records_for(world, lost), _records_for(world, waiting)) == (1, 2)
    assert _status(world, sent) is Status.FAILED_PERM
    assert world.accounts.balance(world.messages.rows[sent].message.client_id).held == 0


class _UnreadableLane(FakeMessages):
    def __init__(self, base: FakeMessages, lane: SweepLane) -> None:
        super().__init__(base.stuck_after_s)
        self.rows, self.lane = base.rows, lane

    def due_for_sweep(self, lane: SweepLane, now: float) -> Iterator[tuple[str, float]]:
        entries: Iterable[tuple[str, float]] = super().due_for_sweep(lane, now)
        if lane is self.lane:
            raise BackendUnavailableError("sweep index query failed")
        yield from entries


def test_a_lane_that_cannot_be_read_does_not_stop_the_other() -> None:
    world = World()
    lost = _lost(world)
    world.sender.handle(sent := _queued(world))
    world.clock.advance(STUCK + PERIOD)
    world.sweeper.sweep()  # the SENT message moves to the timed lane
    world.clock.advance(DLR_TIMEOUT)

    report = _sweeper(world, _UnreadableLane(world.messages, SweepLane.QUEUED)).sweep()
    assert report.expired == [sent]
    assert lost in _sweeper(world, _UnreadableLane(world.messages, SweepLane.TIMED)).sweep(
        ).reenqueued
