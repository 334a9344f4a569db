"""The books' rules (drift and its fix) and the audit with its repair, on fakes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.books import DriftKind, judge
from chalicelib.domain.message import Balance
from chalicelib.services.reconcile import reconcile
from tests.fakes.books import strand
from tests.fakes.world import SEED_BODY, World

pytestmark = pytest.mark.unit


def balance(available: int, held: int = 0, spent: int = 0, initial: int = 100,
            topups: int = 0) -> Balance:
    return Balance(available, held, spent, initial, topups)


def test_books_that_match_their_records_are_clean() -> None:
    judgement = judge(balance(80, held=15, spent=5), 15, 5, 0)
    assert judgement.clean and judgement.fixed is None


def test_a_stranded_hold_is_given_back() -> None:
    # 7 held that no message holds (a crash of old, a bug, a hand edit)
    judgement = judge(balance(73, held=22, spent=5), 15, 5, 0)
    assert [d.kind for d in judgement.drifts] == [DriftKind.HELD]
    assert judgement.fixed == balance(80, held=15, spent=5)


def test_a_top_up_the_balance_missed_is_added() -> None:
    judgement = judge(balance(100), 0, 0, 50)
    assert [d.kind for d in judgement.drifts] == [DriftKind.TOPUPS]
    assert judgement.fixed == balance(150, topups=50)


def test_credit_the_records_cannot_account_for_is_not_repaired() -> None:
    # Spent 120 of 100: the records leave -20 available. A person must look.
    judgement = judge(balance(0, spent=100), 0, 120, 0)
    assert judgement.fixed is None and judgement.unsafe is not None
    assert "-20" in judgement.unsafe


@given(available=st.integers(0, 10_000), held=st.integers(0, 10_000),
       spent=st.integers(0, 10_000), initial=st.integers(0, 10_000),
       topups=st.integers(0, 10_000), records=st.tuples(
           st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000)))
def test_a_fix_always_balances_and_matches_the_records(
        available: int, held: int, spent: int, initial: int, topups: int,
        records: tuple[int, int, int]) -> None:
    held_by_messages, spent_by_messages, ledger = records
    judgement = judge(Balance(available, held, spent, initial, topups), held_by_messages,
                      spent_by_messages, ledger)
    if judgement.fixed is not None:
        fixed = judgement.fixed
        assert fixed.drift == 0 and fixed.available >= 0
        assert (fixed.held, fixed.spent, fixed.topups) == (held_by_messages, spent_by_messages,
                                                           ledger)
        assert judge(fixed, held_by_messages, spent_by_messages, ledger).clean


def test_reconcile_repairs_a_stranded_hold_with_a_ledger_entry() -> None:
    # GIVEN a client with one message held, and 7 cents more held than it holds
    world = World()
    client = world.client(credit_cents=100)
    world.accept.accept(client, SEED_BODY)
    strand(world.accounts, client.client_id, held=5 + 7, available=100 - 5 - 7)
    assert not reconcile(world.accounts, world.messages).ok

    # WHEN the audit repairs
    report = reconcile(world.accounts, world.messages, world.books, repair=True)

    # THEN the hold of the message stays, the 7 cents are available, one entry says why
    assert len(report.repaired) == 1 and report.outstanding == 0
    b = world.accounts.balance(client.client_id)
    assert (b.available, b.held) == (95, 5)
    assert list(world.accounts.accounts[client.client_id].adjustments.values()) == [
        "reconcile repair: held"]
    assert reconcile(world.accounts, world.messages).ok


def test_an_adjustment_applies_only_to_the_books_it_judged() -> None:
    world = World()
    client = world.client(credit_cents=100)
    seen = world.accounts.balance(client.client_id)
    world.ledger.top_up(client.client_id, 10)  # money moved after the judgement
    assert not world.books.adjust(client.client_id, "e-1", seen, seen, "stale")
    assert world.accounts.balance(client.client_id).available == 110


def test_a_top_up_run_twice_with_its_reference_credits_once() -> None:
    world = World()
    client = world.client(credit_cents=100)
    first = world.ledger.top_up(client.client_id, 50, "invoice", reference="inv-42")
    second = world.ledger.top_up(client.client_id, 50, "invoice", reference="inv-42")
    assert first == second == "ref-inv-42"
    assert world.accounts.balance(client.client_id).available == 150
    with pytest.raises(ValueError, match="reference"):
        world.ledger.top_up(client.client_id, 50, reference="no spaces please")
