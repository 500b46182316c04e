"""Issue 4: backfill writes correct, reproducible history with fraud ground truth."""

from __future__ import annotations

import datetime as dt

import pytest

from . import checks

pytestmark = pytest.mark.integration

END = "2026-01-10T00:00:00+00:00"
END_TS = dt.datetime.fromisoformat(END).timestamp()
DAYS, PER_DAY = 3, 4000
ARGS = ("backfill", "--backfill-days", str(DAYS), "--txns-per-day", str(PER_DAY), "--seed", "7",
        "--backfill-end", END, "--fraud-share", "0.05", "--card-close-rate", "30", "--account-close-rate", "15",
        "--customer-close-rate", "10", "--terminal-close-rate", "10", "--delete-rate", "20")
TABLES = {"customer": "customer_id", "account": "account_id", "card": "card_id", "terminal": "terminal_id",
          '"transaction"': "transaction_id"}


@pytest.fixture(scope="module")
def backfilled(make_filler_db):
    db = make_filler_db("backfill")
    result = db.filler(*ARGS)
    assert result.returncode == 0, result.stderr
    return db, result


def test_backfill_volume_and_historical_timestamps(backfilled) -> None:
    db, result = backfilled
    n, lo, hi = db.query("""SELECT count(*), extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at))
                            FROM bank."transaction" """)[0]
    assert abs(n - DAYS * PER_DAY) <= 0.03 * DAYS * PER_DAY, n
    assert END_TS - DAYS * 86400 <= float(lo) and float(hi) <= END_TS
    # nothing happens after the end of the history, and children never predate their parents
    assert db.scalar("""SELECT count(*) FROM bank."transaction"
                        WHERE greatest(approved_at, declined_at, reversed_at, updated_at) > to_timestamp(%s)""",
                     (END_TS,)) == 0
    assert db.scalar("""SELECT count(*) FROM bank."transaction" t JOIN bank.card c USING (card_id)
                        JOIN bank.terminal x USING (terminal_id)
                        WHERE t.created_at < c.created_at OR t.created_at < x.created_at""") == 0
    assert db.scalar("SELECT count(*) FROM bank.card c JOIN bank.account a USING (account_id) "
                     "WHERE c.created_at < a.created_at") == 0
    # time of day: the evening peak is far busier than the night
    night, evening = db.query("""SELECT count(*) FILTER (WHERE extract(hour FROM created_at AT TIME ZONE 'UTC') BETWEEN 1 AND 4),
                                        count(*) FILTER (WHERE extract(hour FROM created_at AT TIME ZONE 'UTC') BETWEEN 16 AND 19)
                                 FROM bank."transaction" """)[0]
    assert evening > 8 * night
    assert "tx/s" in result.stderr


def test_backfill_distributions_look_like_a_bank(backfilled) -> None:
    db, _ = backfilled
    by_status = dict(db.query('SELECT status::text, count(*) FROM bank."transaction" GROUP BY 1'))
    total = sum(by_status.values())
    assert {"approved", "declined", "reversed"} <= set(by_status)
    assert 0.005 < by_status["declined"] / total < 0.10
    assert by_status["approved"] / total > 0.8
    # history is final except the last half hour, whose authorisations may still be pending
    assert db.scalar("""SELECT count(*) FROM bank."transaction" WHERE status = 'pending'
                        AND created_at < to_timestamp(%s) - interval '31 minutes'""", (END_TS,)) == 0
    # amounts depend on type and merchant category
    medians = dict(db.query("""SELECT x.mcc, percentile_cont(0.5) WITHIN GROUP (ORDER BY t.amount)
                               FROM bank."transaction" t JOIN bank.terminal x USING (terminal_id)
                               WHERE t.txn_type = 'purchase' GROUP BY x.mcc HAVING count(*) > 30"""))
    assert medians["4111"] < 10 < medians["5411"] < medians["4511"]
    assert db.scalar("""SELECT bool_and(amount % 10 = 0) FROM bank."transaction"
                        WHERE txn_type = 'withdrawal'""")
    present = dict(db.query("""SELECT x.terminal_type, bool_and(t.card_present = (x.terminal_type <> 'ONLINE'))
                               FROM bank."transaction" t JOIN bank.terminal x USING (terminal_id) GROUP BY 1"""))
    assert present == {"ATM": True, "POS": True, "ONLINE": True}


def test_backfill_closes_deletes_and_toast(backfilled) -> None:
    db, _ = backfilled
    for table in ("customer", "account", "card", "terminal"):
        closed = db.scalar(f"SELECT count(*) FROM bank.{table} WHERE status = 'closed' "
                           f"AND closed_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)",
                           (END_TS - DAYS * 86400, END_TS))
        assert closed > 0, f"no {table} closed during the history"
    # a closed customer's accounts and cards are closed with it
    assert db.scalar("""SELECT count(*) FROM bank.customer c JOIN bank.account a USING (customer_id)
                        WHERE c.status = 'closed' AND a.status <> 'closed'
                          AND a.created_at < c.closed_at""") == 0
    deleted = db.scalar("SELECT sum(deleted_cards + deleted_terminals + deleted_transactions) "
                        "FROM fraud_truth.filler_batch")
    assert deleted > 0
    # some KYC notes are stored out of line (TOAST), for the CDC tests
    assert db.scalar("""SELECT count(*) FROM bank.customer WHERE length(kyc_notes) > 8000""") > 0
    assert db.scalar("SELECT reltoastrelid::regclass IS NOT NULL FROM pg_class WHERE oid = 'bank.customer'::regclass")
    # compressed and still above the ~2 kB TOAST target: stored out of line
    assert db.scalar("""SELECT count(*) FROM bank.customer WHERE length(kyc_notes) > 8000
                          AND pg_column_size(kyc_notes) BETWEEN 2100 AND length(kyc_notes) - 1""") > 0


def test_backfill_scenarios_match_rules_and_truth(backfilled) -> None:
    db, _ = backfilled
    data = checks.load(db)
    counts = checks.check_scenarios_match_truth(data)
    assert set(counts) == {"rapid_withdrawals", "closed_card_attempts", "amount_probing"}, counts
    checks.check_no_accidental_matches(data)
    # fraud share: about 5 % of the transactions belong to scenarios
    share = db.scalar("""SELECT (SELECT count(*) FROM fraud_truth.scenario_transaction)::float
                                / (SELECT count(*) FROM bank."transaction")""")
    assert 0.02 < share < 0.09, share
    # realistic (not compressed) timing in history
    assert db.scalar("SELECT max(window_end - window_start) > interval '2 minutes' FROM fraud_truth.scenario "
                     "WHERE kind = 'rapid_withdrawals'")


def test_backfill_batches_are_complete(backfilled) -> None:
    db, _ = backfilled
    info = checks.check_batches_complete(db)
    assert info["batches"] > 3


def test_if_empty_skips_a_filled_database(backfilled) -> None:
    db, _ = backfilled
    before = db.scalar('SELECT count(*) FROM bank."transaction"')
    result = db.filler("backfill", "--backfill-days", "1", "--txns-per-day", "100", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert "skipping the backfill" in result.stderr
    assert db.scalar('SELECT count(*) FROM bank."transaction"') == before


def _dump(db) -> dict:
    out = {}
    for table, key in TABLES.items():
        out[table] = db.query(f"SELECT * FROM bank.{table} ORDER BY {key}")
    out["scenario"] = db.query("SELECT scenario_id, kind, card_id, window_start, window_end, params "
                               "FROM fraud_truth.scenario ORDER BY scenario_id")
    out["scenario_transaction"] = db.query("SELECT * FROM fraud_truth.scenario_transaction ORDER BY 1, 2")
    return out


def test_seeded_backfill_is_reproducible(backfilled, make_filler_db) -> None:
    first, _ = backfilled
    second = make_filler_db("backfill_again")
    result = second.filler(*ARGS)
    assert result.returncode == 0, result.stderr
    a, b = _dump(first), _dump(second)
    for table in a:
        assert len(a[table]) == len(b[table]), table
        assert a[table] == b[table], f"{table} differs between two runs with the same seed"
    third = make_filler_db("backfill_other_seed")
    other = third.filler(*[("8" if arg == "7" else arg) for arg in ARGS])
    assert other.returncode == 0, other.stderr
    assert _dump(third)['"transaction"'] != a['"transaction"']


def test_a_refusal_that_a_retry_would_repeat_stops_the_backfill_naming_it(make_filler_db) -> None:
    """With no token key, PostgreSQL refuses every card and customer (SQLSTATE 55000, an
    OperationalError to psycopg2): the backfill stops with its message and hint instead of
    reconnecting and retrying the same batch forever."""
    db = make_filler_db("no_key")
    conn = db.admin()
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM bank_vault.token_key")
    conn.close()
    result = db.filler("backfill", "--backfill-days", "1", "--txns-per-day", "100", timeout=60)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "PostgreSQL refused the write (55000): no token key installed" in result.stderr
    assert "hint: set BANK_TOKEN_KEY" in result.stderr
    assert "reconnecting" not in result.stderr
    assert db.scalar('SELECT count(*) FROM bank.customer') == 0
