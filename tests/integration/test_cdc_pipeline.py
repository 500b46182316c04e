"""Issue 5: PostgreSQL -> Debezium -> Kafka -> consumer -> ClickHouse raw, exact and replay-safe."""

from __future__ import annotations

import datetime as dt
import random
import string
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer

from .cdc_helpers import TABLE_KEYS, assert_raw_equals_pg, insert_customer_moved, kafka_client, pg_sql, wait_for

pytestmark = pytest.mark.integration
UTC = dt.timezone.utc


def _raw(ch: Client, table: str, key: int) -> list[tuple]:
    key_col = TABLE_KEYS[table]
    return ch.query(f"SELECT _op, _version, status, closed_at, _is_deleted FROM raw.`{table}` "
                    f"WHERE {key_col} = {{k:Int64}} ORDER BY _version, _lsn", parameters={"k": key}).result_rows


def _at_least(rows: list[tuple], count: int) -> list[tuple] | None:
    return rows if len(rows) >= count else None


def assert_duplicates_collapse(ch: Client) -> None:
    """After a merge, raw holds no event twice. Unmerged copies are expected: Debezium re-delivers
    after a crash (the fault suite runs before this module), and raw's ReplacingMergeTree collapses them."""
    for table, key in TABLE_KEYS.items():
        ch.command(f"OPTIMIZE TABLE raw.`{table}` FINAL")
        dupes = ch.query(f"SELECT count() FROM (SELECT {key}, _version, _lsn FROM raw.`{table}` "
                         f"GROUP BY ALL HAVING count() > 1)").result_rows[0][0]
        assert dupes == 0, f"raw.{table} holds {dupes} events twice"


def test_snapshot_of_existing_rows_arrives(seeded_history: dict[str, int], pg_admin_dsn: str, ch: Client) -> None:
    """The session seeded history before Debezium started: it arrives as snapshot reads (version 0)."""
    assert seeded_history["count"] > 1000
    snapshot = "SELECT uniqExact(transaction_id) FROM raw.`transaction` WHERE _op = 'r' AND transaction_id <= {m:Int64}"
    wait_for(lambda: ch.query(snapshot, parameters={"m": seeded_history["max_id"]}).result_rows[0][0]
             >= seeded_history["count"], timeout=120, what="snapshot rows")
    last = ch.query("SELECT _op, _version FROM raw.`transaction` WHERE transaction_id = {k:Int64}",
                    parameters={"k": seeded_history["max_id"]}).result_rows
    assert ("r", 0) in last
    assert_raw_equals_pg(pg_admin_dsn, ch)


def test_inserts_updates_closes_and_deletes_arrive_exactly(pg_admin_dsn: str, ch: Client) -> None:
    created = dt.datetime(2026, 11, 23, 9, 36, 2, 123456, tzinfo=UTC)
    row = pg_sql(pg_admin_dsn, """
        WITH cu AS (INSERT INTO bank.customer (full_name, email, phone, national_id, date_of_birth, address, city, country)
                    VALUES ('Ada Test', 'ada@example.org', '+44 20 7946 0000', 'AB123456C', '1990-02-03',
                            '1 Test Street', 'London', 'GB') RETURNING customer_id),
             ac AS (INSERT INTO bank.account (customer_id, iban, currency, account_type)
                    SELECT customer_id, 'GB29NWBK60161331926819', 'GBP', 'checking' FROM cu RETURNING account_id),
             te AS (INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country, currency, status)
                    VALUES ('POS', 'Exact Values Ltd', '5411', 'London', 'GB', 'GBP', 'active') RETURNING terminal_id)
        SELECT (SELECT customer_id FROM cu), (SELECT account_id FROM ac), (SELECT terminal_id FROM te)""")[0]
    customer_id, account_id, terminal_id = row
    card_id = pg_sql(pg_admin_dsn, """INSERT INTO bank.card (account_id, pan, pan_last4, expires_on, card_type, status)
                                    VALUES (%s, '4000123412341234', '1234', '2030-01-31', 'debit', 'active')
                                    RETURNING card_id""", (account_id,))[0][0]
    spare_card = pg_sql(pg_admin_dsn, """INSERT INTO bank.card (account_id, pan, pan_last4, expires_on, card_type)
                                       VALUES (%s, '4000123412349999', '9999', '2030-01-31', 'debit')
                                       RETURNING card_id""", (account_id,))[0][0]
    txn_id = pg_sql(pg_admin_dsn, """INSERT INTO bank."transaction" (card_id, terminal_id, txn_type, amount, currency,
                                       card_present, entry_mode, created_at, updated_at)
                                   VALUES (%s, %s, 'purchase', 1234567.89, 'GBP', true, 'chip', %s, %s)
                                   RETURNING transaction_id""", (card_id, terminal_id, created, created))[0][0]
    pg_sql(pg_admin_dsn, "UPDATE bank.\"transaction\" SET status = 'approved' WHERE transaction_id = %s", (txn_id,))
    pg_sql(pg_admin_dsn, "UPDATE bank.card SET status = 'closed', closed_at = now() WHERE card_id = %s", (card_id,))
    pg_sql(pg_admin_dsn, "DELETE FROM bank.card WHERE card_id = %s", (spare_card,))

    txn = wait_for(lambda: _at_least(ch.query(
        "SELECT _op, amount, created_at, status, approved_at FROM raw.`transaction` "
        "WHERE transaction_id = {k:Int64} ORDER BY _version", parameters={"k": txn_id}).result_rows, 2),
        what="transaction changes")
    assert [t[0] for t in txn] == ["c", "u"]
    assert txn[0][1] == Decimal("1234567.89") and isinstance(txn[0][1], Decimal)
    assert txn[0][2].replace(tzinfo=UTC) == created, "timestamp kept to the microsecond"
    assert txn[1][3] == "approved" and txn[1][4] is not None

    card = wait_for(lambda: _at_least(_raw(ch, "card", card_id), 2), what="card close")
    assert [c[0] for c in card] == ["c", "u"] and card[-1][2] == "closed" and card[-1][3] is not None
    deleted = wait_for(lambda: _at_least(_raw(ch, "card", spare_card), 2), what="card delete")
    assert [d[0] for d in deleted] == ["c", "d"] and deleted[-1][4] == 1
    token = pg_sql(pg_admin_dsn, "SELECT national_id_token FROM bank.customer WHERE customer_id = %s",
                   (customer_id,))[0][0]
    assert ch.query("SELECT customer_id, full_name_masked, email_masked, phone_masked, national_id_masked, "
                    "national_id_token FROM raw.customer WHERE customer_id = {k:Int64}",
                    parameters={"k": customer_id}).result_rows == [
        (customer_id, "A*** T***", "a***@example.org", "**************00", "*******6C", token)]


def test_unchanged_large_value_is_never_replaced_by_a_placeholder(pg_admin_dsn: str, ch: Client) -> None:
    notes = "".join(random.choices(string.ascii_letters + string.digits, k=40_000))  # incompressible: TOASTed
    customer_id = insert_customer_moved(pg_admin_dsn, "Toast Test", notes, city="Paris", moved_to="Lyon")
    rows = wait_for(lambda: _at_least(ch.query(
        "SELECT _op, city, kyc_notes FROM raw.customer WHERE customer_id = {k:Int64} ORDER BY _version",
        parameters={"k": customer_id}).result_rows, 2), what="TOAST update")
    assert [(op, city) for op, city, _ in rows] == [("c", "Paris"), ("u", "Lyon")]
    assert rows[1][2] == notes, "the unchanged TOASTed value must arrive as itself"


def test_poison_message_goes_to_dead_letter_while_good_events_flow(
        stack_env: dict[str, str], pg_admin_dsn: str, ch: Client) -> None:
    producer = Producer(kafka_client(stack_env))
    poison = b'{"op": "c", "after": {"terminal_id": "not-a-number"'
    delivered: list = []
    producer.produce("bank.bank.terminal", key=b'{"terminal_id": -1}', value=poison,
                     on_delivery=lambda err, msg: delivered.append((err, msg.partition(), msg.offset())))
    producer.flush(30)
    assert delivered and delivered[0][0] is None
    _, partition, offset = delivered[0]
    terminal_id = pg_sql(pg_admin_dsn, """INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country,
                                           currency) VALUES ('ONLINE', 'After Poison', '5999', 'Berlin', 'DE', 'EUR')
                                        RETURNING terminal_id""")[0][0]
    letter = wait_for(lambda: ch.query(
        "SELECT payload, error FROM raw._dead_letter WHERE topic = 'bank.bank.terminal' "
        "AND partition = {p:Int32} AND offset = {o:Int64}", parameters={"p": partition, "o": offset}).result_rows,
        what="dead letter")
    assert letter[0][0] == poison.decode() and "not JSON" in letter[0][1]
    wait_for(lambda: _raw(ch, "terminal", terminal_id), what="good event after the poison one")


def test_new_nullable_source_column_flows_through(pg_admin_dsn: str, ch: Client) -> None:
    pg_sql(pg_admin_dsn, "ALTER TABLE bank.terminal ADD COLUMN IF NOT EXISTS acquirer_ref text")
    try:
        terminal_id = pg_sql(pg_admin_dsn, """INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country,
                                               currency, acquirer_ref)
                                            VALUES ('POS', 'New Column', '5411', 'Rome', 'IT', 'EUR', 'ACQ-42')
                                            RETURNING terminal_id""")[0][0]
        value = wait_for(lambda: ch.query(
            "SELECT acquirer_ref FROM raw.terminal WHERE terminal_id = {k:Int64}", parameters={"k": terminal_id}
        ).result_rows if "acquirer_ref" in {c for (c,) in ch.query(
            "SELECT name FROM system.columns WHERE database = 'raw' AND table = 'terminal'").result_rows} else None,
            what="new column in raw.terminal")
        assert value == [("ACQ-42",)]
    finally:
        pg_sql(pg_admin_dsn, "ALTER TABLE bank.terminal DROP COLUMN IF EXISTS acquirer_ref")


def test_replayed_events_change_nothing(stack_env: dict[str, str], pg_admin_dsn: str, ch: Client) -> None:
    """Debezium re-delivers after a crash (same events, new offsets): current state stays equal, and
    the replayed copies collapse into the originals."""
    from confluent_kafka import Consumer, TopicPartition

    reader = Consumer({**kafka_client(stack_env), "group.id": "replay-test",
                       "enable.auto.commit": False})
    reader.assign([TopicPartition("bank.bank.card", 0, 0)])
    originals = []
    while len(originals) < 500:
        msg = reader.poll(5.0)
        if msg is None:
            break
        if msg.error() is None and msg.value() is not None:
            originals.append((msg.key(), msg.value()))
    reader.close()
    assert len(originals) >= 100
    high_before = ch.query("SELECT max(_offset) FROM raw.card").result_rows[0][0]
    producer = Producer(kafka_client(stack_env))
    for key, value in originals:
        producer.produce("bank.bank.card", key=key, value=value, partition=0)
    assert producer.flush(30) == 0
    wait_for(lambda: ch.query("SELECT max(_offset) FROM raw.card").result_rows[0][0] >= high_before + len(originals),
             what="replayed events loaded")
    assert_raw_equals_pg(pg_admin_dsn, ch, timeout=30)
    assert_duplicates_collapse(ch)
