"""filler.simulation without a database: determinism, consistency, and clean normal traffic."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict

import pytest

from filler import scenarios as sc
from filler.backfill import chunks
from filler.batch import Batch
from filler.config import SimSettings
from filler.generators import EntityFactory
from filler.simulation import Simulation

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Ids:
    def __init__(self) -> None:
        self.next: dict[str, int] = defaultdict(int)

    def take(self, name: str) -> int:
        self.next[name] += 1
        return self.next[name]


def simulate(seed: int, settings: SimSettings, days: int = 2, per_day: int = 20000, customers: int = 300,
             inline: bool = True) -> list[Batch]:
    rng = random.Random(seed)
    end = START + days * 86400
    sim = Simulation(settings, rng, EntityFactory(rng, seed), compressed=not inline, inline_status=inline,
                     horizon_end=end if inline else None, settle_chunks=1 if inline else 0)
    ids = Ids()
    batch = Batch("backfill", uuid.UUID(int=0), 0)
    sim.bootstrap(customers, 60, START - 86400 * 30, START - 86400, ids, batch)
    batches = [batch]
    for t0, t1, n in chunks(START, end, per_day):
        batch = Batch("backfill", uuid.UUID(int=0), len(batches))
        sim.generate(sim.prepare(t0, t1, n), ids, batch)
        batches.append(batch)
    final = Batch("backfill", uuid.UUID(int=0), len(batches))
    sim.generate(sim.prepare(end, end, 0, final=True), ids, final)
    return batches + [final]


def test_chunks_follow_the_day_curve_and_sum_exactly() -> None:
    parts = list(chunks(START, START + 3 * 86400, 100_000))
    assert sum(n for _, _, n in parts) in range(299_998, 300_001)
    by_hour = defaultdict(int)
    for t0, _, n in parts:
        by_hour[int(t0 // 3600) % 24] += n
    assert by_hour[18] > 10 * by_hour[3]
    assert all(t0 < t1 for t0, t1, _ in parts)


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    settings = SimSettings(fraud_share=0.05)
    a = simulate(1, settings, days=1, per_day=5000)
    b = simulate(1, settings, days=1, per_day=5000)
    c = simulate(2, settings, days=1, per_day=5000)
    assert [x.transactions for x in a] == [x.transactions for x in b]
    assert [x.customers for x in a] == [x.customers for x in b]
    assert [[(s.kind, s.card_id, s.transaction_ids) for s in x.scenarios] for x in a] == \
           [[(s.kind, s.card_id, s.transaction_ids) for s in x.scenarios] for x in b]
    assert [x.transactions for x in a] != [x.transactions for x in c]


def _by_card(batches: list[Batch]):
    cards = defaultdict(list)
    for batch in batches:
        for r in batch.transactions:
            cards[r[1]].append(r)
    return cards


def test_normal_traffic_never_matches_a_rule_even_on_a_crowded_card_pool() -> None:
    """No fraud injected, few cards, many transactions: the guard must still keep every card clean."""
    batches = simulate(4, SimSettings(fraud_share=0.0, card_close_rate=50), days=2, per_day=40000, customers=150)
    terminal_type = {}
    for batch in batches:
        for row in batch.terminals:
            terminal_type[row[0]] = row[1]
    closed = {card: at for batch in batches for card, at in batch.closes["card"]}
    matches = 0
    for card, rows in _by_card(batches).items():
        txns = [sc.Txn(r[10], r[3], terminal_type[r[2]], r[5]) for r in rows]
        matches += len(sc.rapid_withdrawal_windows(txns)) + len(sc.probing_windows(txns))
        matches += len(sc.closed_card_attempt_times(txns, closed.get(card)))
    assert sum(len(b.transactions) for b in batches) > 75000
    assert matches == 0


def _continuous(seed: int, settings: SimSettings, seconds: int, rate: int, customers: int) -> list[Batch]:
    rng = random.Random(seed)
    sim = Simulation(settings, rng, EntityFactory(rng, seed), compressed=True, inline_status=False)
    ids = Ids()
    batches = [Batch("continuous", uuid.UUID(int=0), 0)]
    sim.bootstrap(customers, 60, START - 3600, START - 1, ids, batches[0])
    for tick in range(seconds * 4):
        batch = Batch("continuous", uuid.UUID(int=0), len(batches))
        t0 = START + tick / 4
        sim.generate(sim.prepare(t0, t0 + 0.25, rate // 4), ids, batch)
        batches.append(batch)
    return batches


@pytest.mark.parametrize("mode", ["backfill", "continuous"])
def test_every_rule_match_is_an_injected_scenario_of_that_rule(mode: str) -> None:
    """Heavy fraud on few cards, many of them closed: a rule may only fire where the filler
    recorded a scenario of that kind, or the fraud marts' precision cannot be measured."""
    settings = SimSettings(fraud_share=0.25, card_close_rate=400)
    batches = (simulate(7, settings, days=1, per_day=30000, customers=120) if mode == "backfill"
               else _continuous(7, settings, seconds=900, rate=40, customers=120))
    terminal_type = {row[0]: row[1] for batch in batches for row in batch.terminals}
    truth = defaultdict(list)
    for batch in batches:
        for s in batch.scenarios:
            truth[(s.kind, s.card_id)].append((s.window_start, s.window_end))
    closed_attempts = sum(1 for kind, _ in truth if kind == sc.CLOSED_CARD_ATTEMPTS)
    assert closed_attempts and len(truth) > 100, "too few scenarios for the check to mean anything"
    unrecorded = []
    for card, rows in _by_card(batches).items():
        txns = [sc.Txn(r[10], r[3], terminal_type[r[2]], r[5]) for r in rows]
        for kind, windows in ((sc.RAPID_WITHDRAWALS, sc.rapid_withdrawal_windows(txns)),
                              (sc.AMOUNT_PROBING, sc.probing_windows(txns))):
            for start, end in windows:
                if not any(s <= end and start <= e for s, e in truth[(kind, card)]):
                    unrecorded.append((kind, card, start, end))
    assert unrecorded == []


def test_rows_are_internally_consistent() -> None:
    batches = simulate(5, SimSettings(fraud_share=0.05), days=1, per_day=20000)
    end = START + 86400
    statuses = defaultdict(int)
    for batch in batches:
        for r in batch.transactions:
            statuses[r[4]] += 1
            created, app, dec, rev, upd = r[10], r[11], r[12], r[13], r[14]
            assert r[5] > 0 and START - 1 <= created <= end
            assert upd >= created and upd <= end
            assert (r[4] == "declined") == (r[9] is not None) == (dec is not None)
            if r[4] == "approved":
                assert app is not None and app >= created and rev is None
            if r[4] == "reversed":
                assert rev >= (app or created)
            if r[4] == "pending":
                assert end - created < 1800 + 2
            assert r[7] == (r[8] != "ecommerce")
    assert set(statuses) >= {"approved", "declined", "reversed"}
    kinds = {s.kind for b in batches for s in b.scenarios}
    assert kinds == set(sc.KINDS)


def test_continuous_mode_changes_status_later_and_flushes_scenarios_on_stop() -> None:
    rng = random.Random(6)
    sim = Simulation(SimSettings(fraud_share=0.1), rng, EntityFactory(rng, 6), compressed=True, inline_status=False)
    ids = Ids()
    boot = Batch("continuous", uuid.UUID(int=0), 0)
    sim.bootstrap(400, 60, START - 10, START - 1, ids, boot)
    t, updates, created = START, [], {}
    for _ in range(120):  # 30 s of ticks at 2000 tx/s
        batch = Batch("continuous", uuid.UUID(int=0), 1)
        sim.generate(sim.prepare(t, t + 0.25, 500), ids, batch)
        created.update({r[0]: r[10] for r in batch.transactions})
        updates += batch.txn_updates
        t += 0.25
    assert updates and all(at >= created[txn] for txn, _, _, at in updates)
    assert sim.open, "some scenarios are still in flight"
    last = Batch("continuous", uuid.UUID(int=0), 2)
    sim.generate(sim.prepare(t, t + 0.01, 0, final=True), ids, last)
    assert not sim.open and last.scenarios
    for s in last.scenarios:
        assert s.window_end <= t + 0.01 + 1e-6 and s.transaction_ids
