"""`filler status`: row counts per table, scenario counts, last batch."""

from __future__ import annotations

from filler.config import DbSettings
from filler.db import Database

TABLES = ("customer", "account", "card", "terminal", "transaction")


def collect(settings: DbSettings) -> dict:
    db = Database(settings, max_wait=5.0)
    db.connect()
    try:
        with db.conn.cursor() as cur:
            rows = {}
            for table in TABLES:
                cur.execute(f'SELECT count(*) FROM bank."{table}"')
                rows[table] = cur.fetchone()[0]
            cur.execute("""SELECT 'closed_' || t, n FROM (
                             SELECT 'customer' t, count(*) n FROM bank.customer WHERE status = 'closed'
                             UNION ALL SELECT 'account', count(*) FROM bank.account WHERE status = 'closed'
                             UNION ALL SELECT 'card', count(*) FROM bank.card WHERE status = 'closed'
                             UNION ALL SELECT 'terminal', count(*) FROM bank.terminal WHERE status = 'closed') x""")
            closed = dict(cur.fetchall())
            cur.execute('SELECT status::text, count(*) FROM bank."transaction" GROUP BY 1 ORDER BY 1')
            by_status = dict(cur.fetchall())
            cur.execute("""SELECT k.kind, count(DISTINCT s.scenario_id), count(st.transaction_id)
                           FROM unnest(ARRAY['rapid_withdrawals','closed_card_attempts','amount_probing']) k(kind)
                           LEFT JOIN fraud_truth.scenario s ON s.kind = k.kind
                           LEFT JOIN fraud_truth.scenario_transaction st ON st.scenario_id = s.scenario_id
                           GROUP BY k.kind ORDER BY k.kind""")
            scenarios = {kind: {"scenarios": n, "transactions": t} for kind, n, t in cur.fetchall()}
            cur.execute("""SELECT count(*), max(committed_at)::text FROM fraud_truth.filler_batch""")
            batches, last = cur.fetchone()
        db.conn.rollback()
    finally:
        db.close()
    return {"rows": rows, "closed": closed, "transactions_by_status": by_status, "scenarios": scenarios,
            "batches": batches, "last_batch_at": last}


def render(info: dict) -> str:
    lines = ["rows:"]
    for table, n in info["rows"].items():
        closed = info["closed"].get(f"closed_{table}")
        suffix = f"  ({closed:,} closed)" if closed is not None else ""
        lines.append(f"  {table:<12} {n:>12,}{suffix}")
    lines.append("transactions by status:")
    for status, n in info["transactions_by_status"].items():
        lines.append(f"  {status:<12} {n:>12,}")
    lines.append("fraud scenarios (ground truth):")
    for kind, v in info["scenarios"].items():
        lines.append(f"  {kind:<22} {v['scenarios']:>8,} scenarios {v['transactions']:>10,} transactions")
    lines.append(f"filler batches: {info['batches']:,} (last committed {info['last_batch_at'] or 'never'})")
    return "\n".join(lines)
