"""Issue 4: schema.sql applies twice cleanly and enforces what the pipeline relies on."""

from __future__ import annotations

import psycopg2
import pytest

from .conftest import apply_schema

pytestmark = pytest.mark.integration
TABLES = ("customer", "account", "card", "terminal", "transaction")


@pytest.fixture(scope="module")
def db(make_filler_db):
    return make_filler_db("schema")


def test_schema_applies_twice_cleanly(db) -> None:
    again = apply_schema(db.admin_dsn, db.name)
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == "", again.stderr


def test_replica_identity_full_and_publications(db) -> None:
    idents = dict(db.query("SELECT relname, relreplident FROM pg_class WHERE relnamespace = 'bank'::regnamespace "
                           "AND relkind = 'r'"))
    assert {t: idents[t] for t in TABLES} == {t: "f" for t in TABLES}
    pubs = db.query("SELECT pubname, schemaname || '.' || tablename FROM pg_publication_tables "
                    "WHERE pubname LIKE 'dbz_bank_%' ORDER BY 1, 2")
    assert pubs == [("dbz_bank_dims", "bank.account"), ("dbz_bank_dims", "bank.card"),
                    ("dbz_bank_dims", "bank.customer"), ("dbz_bank_dims", "bank.terminal"),
                    ("dbz_bank_dims", "cdc.heartbeat"),
                    ("dbz_bank_txn", "bank.transaction"), ("dbz_bank_txn", "cdc.heartbeat")]
    assert db.scalar("SELECT count(*) FROM pg_publication_tables WHERE schemaname = 'fraud_truth'") == 0
    assert db.scalar("SELECT count(*) FROM pg_type WHERE typname IN ('txn_type', 'txn_status') "
                     "AND typnamespace = 'bank'::regnamespace") == 2


def test_roles_have_least_privilege(db) -> None:
    roles = dict(db.query("""SELECT rolname, (rolcanlogin, rolreplication, rolsuper, rolcreatedb, rolcreaterole)::text
                             FROM pg_roles WHERE rolname IN ('bank_filler', 'debezium', 'bank_reader')"""))
    assert roles == {"bank_filler": "(t,f,f,f,f)", "debezium": "(t,t,f,f,f)", "bank_reader": "(t,f,f,f,f)"}

    def can(role: str, obj: str, priv: str) -> bool:
        return db.scalar("SELECT has_table_privilege(%s, %s, %s)", (role, obj, priv))

    assert can("bank_filler", 'bank."transaction"', "INSERT") and can("bank_filler", "fraud_truth.scenario", "INSERT")
    assert not can("bank_filler", "fraud_truth.scenario", "DELETE")  # ground truth is append-only
    assert not can("bank_filler", 'bank."transaction"', "TRUNCATE")
    assert not can("bank_filler", "bank.card", "TRIGGER")
    assert not db.scalar("SELECT has_schema_privilege('bank_filler', 'bank', 'CREATE')")
    assert db.scalar("SELECT has_sequence_privilege('bank_filler', pg_get_serial_sequence('bank.card', 'card_id'), 'USAGE')")
    assert can("debezium", "bank.customer", "SELECT") and not can("debezium", "bank.customer", "INSERT")
    assert not db.scalar("SELECT has_schema_privilege('debezium', 'fraud_truth', 'USAGE')")
    assert can("bank_reader", "fraud_truth.scenario", "SELECT") and not can("bank_reader", "bank.card", "UPDATE")
    # default privileges: a table created later follows the same rules
    conn = db.admin()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE bank.later_table (id int PRIMARY KEY)")
    conn.close()
    assert can("bank_filler", "bank.later_table", "INSERT") and can("bank_reader", "bank.later_table", "SELECT")
    assert can("debezium", "bank.later_table", "SELECT") and not can("debezium", "bank.later_table", "INSERT")
    conn = db.admin()
    with conn.cursor() as cur:
        cur.execute("DROP TABLE bank.later_table")
    conn.close()


def _fixture_rows(cur) -> tuple[int, int]:
    cur.execute("""INSERT INTO bank.customer (full_name, email, phone, national_id, date_of_birth, address, city, country)
                   VALUES ('Ada Test', 'ada@test.test', '+49 1', 'DE123456', '1980-01-01', 'Street 1', 'Berlin', 'DE')
                   RETURNING customer_id""")
    customer = cur.fetchone()[0]
    cur.execute("INSERT INTO bank.account (customer_id, iban, currency, account_type) "
                "VALUES (%s, 'DE89370400440532013000', 'EUR', 'checking') RETURNING account_id", (customer,))
    account = cur.fetchone()[0]
    cur.execute("INSERT INTO bank.card (account_id, pan, pan_last4, expires_on, card_type, status) "
                "VALUES (%s, '4532015112830366', '0366', '2030-01-01', 'debit', 'active') RETURNING card_id", (account,))
    card = cur.fetchone()[0]
    cur.execute("INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country, currency, status) "
                "VALUES ('POS', 'Shop', '5411', 'Berlin', 'DE', 'EUR', 'active') RETURNING terminal_id")
    return card, cur.fetchone()[0]


@pytest.mark.parametrize("statement, message", [
    ("INSERT INTO bank.\"transaction\" (card_id, terminal_id, txn_type, amount, currency, card_present, entry_mode) "
     "VALUES ({card}, {terminal}, 'purchase', -5, 'EUR', true, 'chip')", "amount_check"),
    ("INSERT INTO bank.\"transaction\" (card_id, terminal_id, txn_type, amount, currency, card_present, entry_mode) "
     "VALUES ({card}, {terminal}, 'purchase', 5, 'eur', true, 'chip')", "currency_check"),
    ("INSERT INTO bank.\"transaction\" (card_id, terminal_id, txn_type, status, amount, currency, card_present, entry_mode) "
     "VALUES ({card}, {terminal}, 'purchase', 'approved', 5, 'EUR', true, 'chip')", "transaction_status_timestamps"),
    ("INSERT INTO bank.\"transaction\" (card_id, terminal_id, txn_type, amount, currency, card_present, entry_mode) "
     "VALUES ({card}, 999999, 'purchase', 5, 'EUR', true, 'chip')", "transaction_terminal_id_fkey"),
    ("UPDATE bank.card SET status = 'closed' WHERE card_id = {card}", "card_closed_at_iff_closed"),
    ("UPDATE bank.card SET closed_at = now() WHERE card_id = {card}", "card_closed_at_iff_closed"),
    ("UPDATE bank.account SET currency = 'EU1'", "currency_check"),
    ("UPDATE bank.card SET pan_last4 = '1111' WHERE card_id = {card}", "card_last4_matches_pan"),
])
def test_constraints_reject_bad_rows(db, statement, message) -> None:
    conn = db.admin()
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            card, terminal = _fixture_rows(cur)
            with pytest.raises(psycopg2.IntegrityError) as err:
                cur.execute(statement.format(card=card, terminal=terminal))
            assert message in str(err.value)
    finally:
        conn.rollback()
        conn.close()


def test_status_transitions_are_enforced_and_stamped(db) -> None:
    conn = db.admin()
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            card, terminal = _fixture_rows(cur)
            cur.execute("""INSERT INTO bank."transaction" (card_id, terminal_id, txn_type, amount, currency,
                               card_present, entry_mode, created_at, updated_at)
                           VALUES (%s, %s, 'purchase', 12.50, 'EUR', true, 'chip', now() - interval '5 s',
                                   now() - interval '5 s') RETURNING transaction_id""", (card, terminal))
            txn = cur.fetchone()[0]
            cur.execute('UPDATE bank."transaction" SET status = \'approved\' WHERE transaction_id = %s', (txn,))
            cur.execute('SELECT approved_at = now(), updated_at = now() FROM bank."transaction" WHERE transaction_id = %s',
                        (txn,))
            assert cur.fetchone() == (True, True)
            cur.execute("SAVEPOINT s")
            for bad in ("pending", "declined"):
                with pytest.raises(psycopg2.IntegrityError, match="invalid status transition"):
                    cur.execute(f"UPDATE bank.\"transaction\" SET status = '{bad}', decline_reason = 'x' "
                                "WHERE transaction_id = %s", (txn,))
                cur.execute("ROLLBACK TO SAVEPOINT s")
            with pytest.raises(psycopg2.IntegrityError, match="only the status"):
                cur.execute('UPDATE bank."transaction" SET amount = 1 WHERE transaction_id = %s', (txn,))
            cur.execute("ROLLBACK TO SAVEPOINT s")
            cur.execute('UPDATE bank."transaction" SET status = \'reversed\' WHERE transaction_id = %s', (txn,))
            cur.execute('SELECT approved_at IS NOT NULL, reversed_at IS NOT NULL FROM bank."transaction" '
                        'WHERE transaction_id = %s', (txn,))
            assert cur.fetchone() == (True, True)
            # logical close, then no reopening
            cur.execute("UPDATE bank.card SET status = 'closed', closed_at = now() WHERE card_id = %s", (card,))
            cur.execute("SAVEPOINT c")
            with pytest.raises(psycopg2.IntegrityError, match="cannot be reopened"):
                cur.execute("UPDATE bank.card SET status = 'active', closed_at = NULL WHERE card_id = %s", (card,))
            cur.execute("ROLLBACK TO SAVEPOINT c")
            # hard delete of a card with transactions is refused by the FK; an unused terminal can go
            with pytest.raises(psycopg2.IntegrityError):
                cur.execute("DELETE FROM bank.card WHERE card_id = %s", (card,))
            cur.execute("ROLLBACK TO SAVEPOINT c")
            cur.execute("INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country, currency) "
                        "VALUES ('ATM', 'Bank ATM', '6011', 'Berlin', 'DE', 'EUR') RETURNING terminal_id")
            unused = cur.fetchone()[0]
            cur.execute("DELETE FROM bank.terminal WHERE terminal_id = %s", (unused,))
            assert cur.rowcount == 1
    finally:
        conn.rollback()
        conn.close()
