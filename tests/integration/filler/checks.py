"""Assertions over a filled database, shared by the backfill and continuous tests.

The fraud rules come from filler.scenarios (the single definition the marts also follow).
"""

from __future__ import annotations

from collections import defaultdict

from filler import scenarios as sc


def load(db) -> dict:
    rows = db.query("""
        SELECT t.transaction_id, t.card_id, extract(epoch FROM t.created_at)::float8, t.txn_type::text,
               x.terminal_type, (t.amount * 100)::bigint, t.status::text
        FROM bank."transaction" t JOIN bank.terminal x USING (terminal_id)""")
    by_card: dict[int, list[tuple[int, sc.Txn, str]]] = defaultdict(list)
    for txn_id, card, at, txn_type, ttype, cents, status in rows:
        by_card[card].append((txn_id, sc.Txn(at, txn_type, ttype, cents), status))
    closed = dict(db.query("SELECT card_id, extract(epoch FROM closed_at)::float8 FROM bank.card "
                           "WHERE status = 'closed'"))
    scenarios = {}
    for sid, kind, card, ws, we, params in db.query("""
            SELECT scenario_id, kind, card_id, extract(epoch FROM window_start)::float8,
                   extract(epoch FROM window_end)::float8, params FROM fraud_truth.scenario"""):
        scenarios[sid] = {"kind": kind, "card": card, "start": ws, "end": we, "params": params, "txns": []}
    for sid, txn_id in db.query("SELECT scenario_id, transaction_id FROM fraud_truth.scenario_transaction"):
        scenarios[sid]["txns"].append(txn_id)
    return {"by_card": by_card, "closed": closed, "scenarios": scenarios}


def check_scenarios_match_truth(data: dict) -> dict[str, int]:
    """Every truth scenario: its transactions exist, are on its card, fill its window, obey its rule."""
    counts: dict[str, int] = defaultdict(int)
    for sid, s in data["scenarios"].items():
        assert s["txns"], f"scenario {sid} has no transactions"
        card_txns = {tid: (t, status) for tid, t, status in data["by_card"][s["card"]]}
        missing = [t for t in s["txns"] if t not in card_txns]
        assert not missing, f"scenario {sid} ({s['kind']}): transactions {missing} not on card {s['card']}"
        txns = [card_txns[t][0] for t in s["txns"]]
        times = [t.created_at for t in txns]
        assert abs(min(times) - s["start"]) < 1e-3 and abs(max(times) - s["end"]) < 1e-3, f"scenario {sid} window"
        if s["kind"] == sc.RAPID_WITHDRAWALS:
            assert all(t.txn_type == "withdrawal" and t.terminal_type == "ATM" for t in txns), sid
            assert len(txns) >= sc.RAPID_MIN_COUNT and s["end"] - s["start"] <= sc.RAPID_WINDOW_S, sid
            assert sc.rapid_withdrawal_windows(txns), f"rapid withdrawals {sid} do not match the rule"
        elif s["kind"] == sc.CLOSED_CARD_ATTEMPTS:
            closed_at = data["closed"].get(s["card"])
            assert closed_at is not None, f"scenario {sid}: card {s['card']} is not closed"
            assert all(t.created_at > closed_at for t in txns), f"scenario {sid}: attempt before closed_at"
            assert all(card_txns[t][1] == "declined" for t in s["txns"]), f"scenario {sid}: attempt not declined"
        else:
            small = [t for t in txns if t.amount_cents < sc.PROBING_SMALL_LT_CENTS]
            large = [t for t in txns if t.amount_cents >= sc.PROBING_LARGE_GE_CENTS]
            assert len(small) >= sc.PROBING_MIN_SMALL and large, f"probing {sid}: no ladder"
            assert max(t.created_at for t in small) < min(t.created_at for t in large), f"probing {sid}: order"
            assert sc.probing_windows(txns), f"amount probing {sid} does not match the rule"
        counts[s["kind"]] += 1
    return dict(counts)


def check_no_accidental_matches(data: dict) -> None:
    """Every rule match over ALL transactions overlaps a truth scenario of that kind on that card."""
    truth = defaultdict(list)
    for s in data["scenarios"].values():
        truth[(s["kind"], s["card"])].append((s["start"], s["end"]))

    def covered(kind, card, lo, hi):
        return any(a <= hi + 1e-6 and lo <= b + 1e-6 for a, b in truth[(kind, card)])

    unexplained = []
    for card, items in data["by_card"].items():
        txns = [t for _, t, _ in items]
        for lo, hi in sc.rapid_withdrawal_windows(txns):
            if not covered(sc.RAPID_WITHDRAWALS, card, lo, hi):
                unexplained.append((sc.RAPID_WITHDRAWALS, card, lo, hi))
        for lo, hi in sc.probing_windows(txns):
            if not covered(sc.AMOUNT_PROBING, card, lo, hi):
                unexplained.append((sc.AMOUNT_PROBING, card, lo, hi))
        for at in sc.closed_card_attempt_times(txns, data["closed"].get(card)):
            if not covered(sc.CLOSED_CARD_ATTEMPTS, card, at, at):
                unexplained.append((sc.CLOSED_CARD_ATTEMPTS, card, at, at))
    assert not unexplained, f"{len(unexplained)} rule matches without ground truth, e.g. {unexplained[:5]}"


def check_batches_complete(db) -> dict:
    """The batch markers account for every row: no batch was half-written."""
    sums = db.query("""
        SELECT coalesce(sum(customers), 0), coalesce(sum(accounts), 0),
               coalesce(sum(cards) - sum(deleted_cards), 0), coalesce(sum(terminals) - sum(deleted_terminals), 0),
               coalesce(sum(transactions) - sum(deleted_transactions), 0), coalesce(sum(scenarios), 0),
               count(*) FROM fraud_truth.filler_batch""")[0]
    actual = db.query("""
        SELECT (SELECT count(*) FROM bank.customer), (SELECT count(*) FROM bank.account),
               (SELECT count(*) FROM bank.card), (SELECT count(*) FROM bank.terminal),
               (SELECT count(*) FROM bank."transaction"), (SELECT count(*) FROM fraud_truth.scenario)""")[0]
    assert tuple(sums[:6]) == tuple(actual), f"batch markers {sums[:6]} != rows {actual}"
    return {"batches": sums[6], "transactions": actual[4]}
