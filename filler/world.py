"""Loads what the database already holds into a Simulation (so runs continue earlier ones)."""

from __future__ import annotations

from filler import scenarios as sc
from filler.simulation import Simulation

RECENT_CLOSED_CARDS = 5000
PENDING_RESUME_LIMIT = 20000


def load(conn, sim: Simulation, now: float | None, resume_pending: bool) -> dict[str, int]:
    """Fill `sim` from the database, in id order (deterministic). Returns what was loaded.

    `now` (continuous mode): also warm the normal-traffic guard with the last rule window of
    transactions and keep recent scenario cards busy, so a restart never creates a match.
    """
    loaded = {}
    with conn.cursor() as cur:
        cur.execute("SELECT customer_id FROM bank.customer WHERE status <> 'closed' ORDER BY customer_id")
        for (cid,) in cur:
            sim.add_customer(cid)
        loaded["customers"] = cur.rowcount
        cur.execute("SELECT account_id, customer_id, status FROM bank.account a "
                    "WHERE status <> 'closed' ORDER BY account_id")
        for aid, cid, status in cur:
            sim.add_account(aid, cid, active=status == "active")
        loaded["accounts"] = cur.rowcount
        cur.execute("SELECT card_id, account_id, status FROM bank.card WHERE status <> 'closed' ORDER BY card_id")
        for card_id, aid, status in cur:
            sim.add_card(card_id, aid, status)
        loaded["cards"] = cur.rowcount
        cur.execute("SELECT card_id, extract(epoch FROM closed_at)::float8 FROM bank.card "
                    "WHERE status = 'closed' ORDER BY closed_at DESC, card_id DESC LIMIT %s", (RECENT_CLOSED_CARDS,))
        for card_id, closed_at in reversed(cur.fetchall()):
            sim.add_closed_card(card_id, closed_at)
        cur.execute("SELECT terminal_id, terminal_type, mcc, currency, status FROM bank.terminal "
                    "WHERE status <> 'closed' ORDER BY terminal_id")
        for row in cur:
            sim.add_terminal(*row)
        loaded["terminals"] = cur.rowcount
        if now is not None:
            horizon = sc.COOLDOWN_S
            cur.execute("""
                SELECT card_id, extract(epoch FROM created_at)::float8, txn_type::text, (amount * 100)::bigint
                FROM bank."transaction"
                WHERE created_at > to_timestamp(%s) - make_interval(secs => %s)
                  AND (txn_type = 'withdrawal' OR (txn_type = 'purchase' AND amount < 5))
                ORDER BY created_at, transaction_id""", (now, horizon))
            for card_id, at, txn_type, cents in cur:
                if txn_type == "withdrawal":
                    sim.guard.note_withdrawal(card_id, at)
                else:
                    sim.guard.cap_purchase(card_id, at, cents)
            cur.execute("""
                SELECT card_id, max(extract(epoch FROM window_end)::float8) FROM fraud_truth.scenario
                WHERE window_end > to_timestamp(%s) - make_interval(secs => %s)
                GROUP BY card_id ORDER BY card_id""", (now, horizon))
            for card_id, end in cur:
                sim.busy[card_id] = end + sc.COOLDOWN_S
        if resume_pending and now is not None:
            cur.execute("""SELECT transaction_id FROM bank."transaction" WHERE status = 'pending'
                           ORDER BY transaction_id LIMIT %s""", (PENDING_RESUME_LIMIT,))
            rows = cur.fetchall()
            for i, (txn_id,) in enumerate(rows):
                sim.add_pending(txn_id, now + 1.0 + 19.0 * i / max(len(rows), 1))
            loaded["pending"] = len(rows)
    conn.rollback()
    return loaded
