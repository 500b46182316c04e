"""Loads what the database already holds into a Simulation (so runs continue earlier ones)."""

from __future__ import annotations

from filler import scenarios as sc
from filler.config import Shard
from filler.simulation import Simulation

RECENT_CLOSED_CARDS = 5000
PENDING_RESUME_LIMIT = 20000


WHOLE_BANK = Shard()


def load(conn, sim: Simulation, now: float | None, resume_pending: bool, shard: Shard = WHOLE_BANK,
         created_before: float | None = None) -> dict[str, int]:
    """Fill `sim` from the database, in id order (deterministic). Returns what was loaded.

    Only `shard`'s customers, with their accounts and cards, are loaded (terminals are shared);
    with `created_before` (backfill: the history's start) only what existed by then, so no
    change is ever dated before its entity's creation.

    `now` (continuous mode): also warm the normal-traffic guard with the last rule window of
    transactions and keep recent scenario cards busy, so a restart never creates a match.
    """
    loaded = {}
    owned = ("customer_id %% %(n)s = %(k)s AND created_at < coalesce(to_timestamp(%(before)s), 'infinity')")
    args = {"n": shard.count, "k": shard.index, "before": created_before}
    of_owned_customer = f"customer_id IN (SELECT customer_id FROM bank.customer WHERE {owned})"
    of_owned_account = f"account_id IN (SELECT account_id FROM bank.account WHERE {of_owned_customer})"
    existed = "created_at < coalesce(to_timestamp(%(before)s), 'infinity')"
    with conn.cursor() as cur:
        cur.execute(f"SELECT customer_id FROM bank.customer WHERE status <> 'closed' AND {owned} "
                    "ORDER BY customer_id", args)
        for (cid,) in cur:
            sim.add_customer(cid)
        loaded["customers"] = cur.rowcount
        cur.execute(f"SELECT account_id, customer_id, status FROM bank.account a "
                    f"WHERE status <> 'closed' AND {existed} AND {of_owned_customer} ORDER BY account_id", args)
        for aid, cid, status in cur:
            sim.add_account(aid, cid, active=status == "active")
        loaded["accounts"] = cur.rowcount
        cur.execute(f"SELECT card_id, account_id, status FROM bank.card WHERE status <> 'closed' AND {existed} "
                    f"AND {of_owned_account} ORDER BY card_id", args)
        for card_id, aid, status in cur:
            sim.add_card(card_id, aid, status)
        loaded["cards"] = cur.rowcount
        cur.execute(f"SELECT card_id, extract(epoch FROM closed_at)::float8 FROM bank.card "
                    f"WHERE status = 'closed' AND {existed} AND {of_owned_account} "
                    "ORDER BY closed_at DESC, card_id DESC LIMIT %(limit)s", {**args, "limit": RECENT_CLOSED_CARDS})
        for card_id, closed_at in reversed(cur.fetchall()):
            sim.add_closed_card(card_id, closed_at)
        cur.execute(f"SELECT terminal_id, terminal_type, mcc, currency, status FROM bank.terminal "
                    f"WHERE status <> 'closed' AND {existed} ORDER BY terminal_id", args)
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
            cur.execute(f"""SELECT transaction_id FROM bank."transaction" WHERE status = 'pending'
                            AND card_id IN (SELECT card_id FROM bank.card WHERE {of_owned_account})
                            ORDER BY transaction_id LIMIT %(limit)s""", {**args, "limit": PENDING_RESUME_LIMIT})
            rows = cur.fetchall()
            for i, (txn_id,) in enumerate(rows):
                sim.add_pending(txn_id, now + 1.0 + 19.0 * i / max(len(rows), 1))
            loaded["pending"] = len(rows)
    conn.rollback()
    return loaded
