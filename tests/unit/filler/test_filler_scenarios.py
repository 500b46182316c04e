"""filler.scenarios: the rules, the injection plans, and the normal-traffic guard."""

from __future__ import annotations

import random

import pytest

from filler import scenarios as sc
from filler.scenarios import Txn


def atm(at: float) -> Txn:
    return Txn(at, "withdrawal", "ATM", 10000)


def buy(at: float, cents: int) -> Txn:
    return Txn(at, "purchase", "ONLINE", cents)


def test_rapid_withdrawal_rule() -> None:
    assert sc.rapid_withdrawal_windows([atm(t) for t in (0, 100, 200, 600)]) == [(0, 600)]
    assert sc.rapid_withdrawal_windows([atm(t) for t in (0, 100, 200, 601)]) == []  # 601 s apart
    assert sc.rapid_withdrawal_windows([atm(t) for t in (0, 10, 20)]) == []  # only three
    # POS purchases or non-ATM withdrawals don't count
    assert sc.rapid_withdrawal_windows([atm(0), atm(1), atm(2), Txn(3, "purchase", "ATM", 100)]) == []
    assert sc.rapid_withdrawal_windows([atm(t) for t in (0, 1, 2, 3, 4, 5)]) == [(0, 5)]


def test_probing_rule() -> None:
    ladder = [buy(0, 100), buy(30, 250), buy(60, 499), buy(120, 50000)]
    assert sc.probing_windows(ladder) == [(0, 120)]
    assert sc.probing_windows(ladder[:2] + ladder[3:]) == []  # two small ones only
    assert sc.probing_windows([buy(0, 100), buy(30, 250), buy(60, 500), buy(120, 50000)]) == []  # 5.00 isn't small
    assert sc.probing_windows([buy(0, 100), buy(30, 250), buy(60, 499), buy(120, 49999)]) == []  # 499.99 isn't large
    assert sc.probing_windows([buy(0, 100), buy(30, 250), buy(60, 499), buy(901, 50000)]) == []  # 901 s window
    assert sc.probing_windows([buy(0, 50000), buy(30, 250), buy(60, 499), buy(90, 100)]) == []  # large first


def test_closed_card_rule() -> None:
    txns = [buy(10, 100), buy(20, 100), buy(30, 100)]
    assert sc.closed_card_attempt_times(txns, None) == []
    assert sc.closed_card_attempt_times(txns, 15.0) == [20, 30]


@pytest.mark.parametrize("compressed", [False, True])
def test_plans_satisfy_their_rules(compressed: bool) -> None:
    rng = random.Random(3)
    for _ in range(300):
        start = rng.uniform(0, 1e6)
        rapid = sc.plan_rapid_withdrawals(rng, 1, start, compressed)
        txns = [Txn(s.at, s.txn_type, s.terminal_type, s.amount_cents) for s in rapid.steps]
        assert sc.rapid_withdrawal_windows(txns) == [(txns[0].created_at, txns[-1].created_at)]
        assert txns[-1].created_at - start <= sc.MAX_SPAN_S[sc.RAPID_WITHDRAWALS]

        probe = sc.plan_amount_probing(rng, 1, start, compressed)
        txns = [Txn(s.at, s.txn_type, s.terminal_type, s.amount_cents) for s in probe.steps]
        assert sc.probing_windows(txns)
        assert txns[-1].created_at - start <= sc.MAX_SPAN_S[sc.AMOUNT_PROBING]

        closed = sc.plan_closed_card_attempts(rng, 1, start, compressed, close_card=True, closed_at=None)
        assert closed.steps[0].action == "close"
        attempts = [s for s in closed.steps if s.action == "txn"]
        assert attempts and all(s.at > closed.steps[0].at and s.status == "declined" for s in attempts)
        assert all(s.decline_reason == sc.CLOSED_DECLINE_REASON for s in attempts)
        if compressed:
            assert closed.steps[-1].at - start < 30


def test_guard_caps_normal_traffic_below_every_rule() -> None:
    guard = sc.NormalGuard()
    allowed = 0
    for t in range(0, 600, 10):  # one withdrawal try every 10 s on the same card
        if guard.allow_withdrawal(7, float(t)):
            guard.note_withdrawal(7, float(t))
            allowed += 1
    assert allowed == sc.NORMAL_MAX_WITHDRAWALS < sc.RAPID_MIN_COUNT
    assert guard.cap_purchase(7, 0.0, 300) == 300  # a small purchase
    assert guard.cap_purchase(7, 100.0, 90000) == sc.PROBING_LARGE_GE_CENTS - 1  # large one capped
    assert guard.cap_purchase(7, 901.0, 90000) == 90000  # outside the window: allowed
    assert not guard.is_clean(7, 700.0) and guard.is_clean(8, 700.0)
    guard.prune(5000.0)
    assert guard.is_clean(7, 5000.0)
