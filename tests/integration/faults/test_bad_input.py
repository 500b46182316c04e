"""Issue 7, bad input: every kind is tried on the real pipeline and named in the test's name.

Each bad message is produced into a real topic (or written in PostgreSQL) between two good
changes. It must end as one dead-letter row at its exact topic/partition/offset, payload kept as
sent and an error naming the column or problem (or be refused clearly at the source); the good
change committed after it must still arrive, and the good changes around it must all be there.
"""

from __future__ import annotations

import hashlib
import random
import signal
import string
import subprocess
import sys

import psycopg2
import pytest
import requests
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition

from ..cdc_helpers import (assert_raw_equals_pg, connect_auth, insert_customer_moved, kafka_client, pg_sql,
                           wait_for)
from .bad_input_helpers import (TERMINAL_TOPIC, TRANSACTION_TOPIC, Delivered,
                                dead_letter, debezium_key, encode, new_terminal, new_transaction,
                                next_transaction_id, not_loaded, produce, raw_changes, terminal_event,
                                transaction_event)

pytestmark = pytest.mark.integration
TERMINAL_ID_NOT_IN_POSTGRES = 8_000_000_000_000  # bad events name ids PostgreSQL never had


@pytest.fixture(scope="module")
def bootstrap(stack_env: dict[str, str]) -> dict[str, str]:
    """How the tests reach the broker (as admin: only it may write a bank topic besides Connect)."""
    return kafka_client(stack_env)


def bad_between_good_terminals(pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str], value: bytes | None,
                               label: str) -> tuple[Delivered, bytes, str]:
    """good change A -> the bad message -> good change B, all on bank.bank.terminal (one partition).

    Returns where the bad message went and its dead letter's payload and error, after checking
    that A precedes it, B follows it, both are loaded, and the bad message itself is not.
    """
    before = new_terminal(pg_admin_dsn, f"before {label}")
    [(_, part_a, offset_a)] = raw_changes(ch, "terminal", before)
    bad = produce(bootstrap, TERMINAL_TOPIC, value)
    after = new_terminal(pg_admin_dsn, f"after {label}")
    _, payload, error = dead_letter(ch, bad)
    [(_, part_b, offset_b)] = raw_changes(ch, "terminal", after)
    assert part_a == bad.partition == part_b and offset_a < bad.offset < offset_b
    assert not_loaded(ch, "terminal", bad)
    return bad, payload, error


TRUNCATED = encode(terminal_event(TERMINAL_ID_NOT_IN_POSTGRES))[:-25]
NO_OP = encode({k: v for k, v in terminal_event(TERMINAL_ID_NOT_IN_POSTGRES).items() if k != "op"})
NO_SOURCE = encode({k: v for k, v in terminal_event(TERMINAL_ID_NOT_IN_POSTGRES).items() if k != "source"})
AFTER_LIST = encode({**terminal_event(TERMINAL_ID_NOT_IN_POSTGRES), "after": [1, "POS"]})
LSN_TEXT = encode({**terminal_event(TERMINAL_ID_NOT_IN_POSTGRES), "source": {"lsn": "0/16B3748", "ts_ms": 1}})
MISSING_COLUMN = encode(terminal_event(TERMINAL_ID_NOT_IN_POSTGRES) | {
    "after": {k: v for k, v in terminal_event(TERMINAL_ID_NOT_IN_POSTGRES)["after"].items() if k != "mcc"}})


@pytest.mark.parametrize("value, expected", [
    pytest.param(TRUNCATED, "not JSON", id="truncated_json"),
    pytest.param(b"[1, 2, 3]", "not a JSON object", id="json_array_not_an_event"),
    pytest.param(b"", "not JSON", id="empty_value"),
    pytest.param(NO_OP, "missing op", id="missing_op"),
    pytest.param(NO_SOURCE, "missing source", id="missing_source"),
    pytest.param(AFTER_LIST, "without its after image", id="after_not_an_object"),
    pytest.param(LSN_TEXT, "lsn", id="lsn_not_a_number"),
    pytest.param(MISSING_COLUMN, "non-nullable column mcc", id="required_column_missing"),
])
def test_malformed_event_is_dead_lettered_and_the_stream_goes_on(
        value: bytes, expected: str, pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str]) -> None:
    _, payload, error = bad_between_good_terminals(pg_admin_dsn, ch, bootstrap, value, expected)
    assert payload == value, "the dead letter keeps the message byte for byte"
    assert expected in error, error


def test_unknown_tables_topic_is_dead_lettered_naming_the_table(
        stack_env: dict[str, str], pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str]) -> None:
    """A topic matching the consumer's pattern with no raw table behind it: dead letters, never a stall."""
    topic = "bank.bank.no_such_table"
    events = [encode({**terminal_event(n), "source": {"table": "no_such_table", "lsn": n, "ts_ms": 1795424400000}})
              for n in (1, 2)]
    first = produce(bootstrap, topic, events[0], partition=0)
    later = new_terminal(pg_admin_dsn, "after unknown table")
    second = produce(bootstrap, topic, events[1], partition=0)
    for where, event in ((first, events[0]), (second, events[1])):
        _, payload, error = dead_letter(ch, where, timeout=90)  # the consumer discovers the new topic first
        assert payload == event
        assert "no raw table raw.no_such_table" in error and "clickhouse_init" in error, error
    raw_changes(ch, "terminal", later)
    # the consumer group moved past both: nothing waits behind them
    reader = Consumer({**bootstrap, "group.id": stack_env.get("CDC_GROUP_ID") or "bankcdc-raw-loader"})
    try:
        committed = wait_for(lambda: (lambda tps: tps if tps[0].offset == second.offset + 1 else None)(
            reader.committed([TopicPartition(topic, 0)], timeout=10)), timeout=30, what="committed offset")
    finally:
        reader.close()
    assert committed[0].offset == second.offset + 1


@pytest.mark.parametrize("column, value, expected", [
    pytest.param("terminal_id", 2**63, "out of range", id="int64_id_overflow"),
    pytest.param("terminal_id", -(2**63) - 1, "out of range", id="int64_id_underflow"),
    pytest.param("terminal_id", 12.5, "expected an integer", id="id_as_float"),
    pytest.param("created_at", "9999-12-31T23:59:59.000000Z", "outside DateTime64's range", id="timestamp_after_2299"),
    pytest.param("created_at", "1800-01-01T00:00:00.000000Z", "outside DateTime64's range", id="timestamp_before_1900"),
])
def test_value_too_big_for_its_column_type_is_dead_lettered(
        column: str, value: object, expected: str, pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str]) -> None:
    event = terminal_event(TERMINAL_ID_NOT_IN_POSTGRES, **{column: value})
    _, payload, error = bad_between_good_terminals(pg_admin_dsn, ch, bootstrap, encode(event), column)
    assert payload == encode(event)
    assert f"column {column}:" in error and expected in error, error


def test_lsn_over_64_bits_is_dead_lettered(pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str]) -> None:
    event = terminal_event(TERMINAL_ID_NOT_IN_POSTGRES)
    event["source"]["lsn"] = 2**64
    _, _, error = bad_between_good_terminals(pg_admin_dsn, ch, bootstrap, encode(event), "lsn")
    assert "source.lsn 18446744073709551616 is not a PostgreSQL LSN" in error, error


@pytest.mark.parametrize("amount, expected", [
    pytest.param("10000000000000000.00", "does not fit Decimal(18, 2)", id="amount_over_decimal_18_2"),
    pytest.param("12.345", "more than 2 decimal places", id="amount_with_three_decimals"),
    pytest.param(12.5, "decimal arrived as a float", id="amount_as_float"),
    pytest.param("NaN", "does not fit", id="amount_nan"),
])
def test_out_of_range_amount_is_dead_lettered_and_the_partition_goes_on(
        amount: object, expected: str, pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str]) -> None:
    """On bank.bank.transaction (three partitions): the bad event carries the key of the good
    transaction written next, so Kafka puts both on the same partition, in that order."""
    before = new_transaction(pg_admin_dsn, next_transaction_id(pg_admin_dsn))
    good_id = next_transaction_id(pg_admin_dsn)
    bad_event = encode(transaction_event(good_id, amount=amount))
    bad = produce(bootstrap, TRANSACTION_TOPIC, bad_event, key=debezium_key("transaction", good_id))
    new_transaction(pg_admin_dsn, good_id, amount="99.99")
    _, payload, error = dead_letter(ch, bad)
    assert payload == bad_event and "column amount:" in error and expected in error, error
    [(_, partition, offset)] = raw_changes(ch, "transaction", good_id)
    assert (partition, offset) > (bad.partition, bad.offset) and partition == bad.partition
    raw_changes(ch, "transaction", before)
    loaded = ch.query("SELECT amount FROM raw.`transaction` WHERE transaction_id = {k:Int64}",
                      parameters={"k": good_id}).result_rows
    assert [str(a) for (a,) in loaded] == ["99.99"], "the good event, not the bad one with the same key"


@pytest.mark.parametrize("value", [
    pytest.param(encode(terminal_event(TERMINAL_ID_NOT_IN_POSTGRES)).replace(b"Bad Input Test", b"Bad \xff\xfe Test"),
                 id="raw_invalid_utf8_bytes"),
    pytest.param(encode(terminal_event(TERMINAL_ID_NOT_IN_POSTGRES)).replace(b"Bad Input Test", b"Bad \\udc80 Test"),
                 id="json_escaped_lone_surrogate"),
])
def test_invalid_utf8_in_a_value_is_dead_lettered_byte_exact(
        value: bytes, pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str]) -> None:
    _, payload, error = bad_between_good_terminals(pg_admin_dsn, ch, bootstrap, value, "utf8")
    assert payload == value, "invalid bytes are kept as sent, not replaced"
    assert "utf-8" in error.lower(), error


def test_postgres_refuses_invalid_utf8_at_the_source(pg_admin_dsn: str) -> None:
    """The real source can never emit invalid UTF-8: PostgreSQL refuses it, naming the byte."""
    with pytest.raises(psycopg2.Error, match=r'invalid byte sequence for encoding "UTF8": 0xff'):
        pg_sql(pg_admin_dsn, """INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country, currency)
                             VALUES ('ONLINE', convert_from('\\xff41'::bytea, 'UTF8'), '5999', 'Oslo', 'NO', 'NOK')""")


def _raw_terminal_columns(ch: Client) -> list[str]:
    return [c for (c,) in ch.query("SELECT name FROM system.columns WHERE database = 'raw' AND table = 'terminal' "
                                   "ORDER BY position").result_rows]


@pytest.mark.parametrize("column, expected", [
    pytest.param("_op", "collides with the raw layer's CDC metadata column", id="metadata_column_name"),
    pytest.param("_loaded_at", "collides with the raw layer's CDC metadata column", id="load_time_column_name"),
    pytest.param("x` String, `y", "is not a plain identifier", id="backtick_in_column_name"),
    pytest.param("a" * 64, "is not a plain identifier", id="column_name_over_63_chars"),
])
def test_unsafe_column_name_is_dead_lettered_without_ddl(
        column: str, expected: str, pg_admin_dsn: str, ch: Client, bootstrap: dict[str, str]) -> None:
    columns_before = _raw_terminal_columns(ch)
    event = terminal_event(TERMINAL_ID_NOT_IN_POSTGRES, **{column: "v"})
    _, payload, error = bad_between_good_terminals(pg_admin_dsn, ch, bootstrap, encode(event), "column name")
    assert payload == encode(event) and expected in error, error
    assert _raw_terminal_columns(ch) == columns_before, "no column was added for a refused name"


def _connector_states(stack_env: dict[str, str]) -> dict[str, list[str]]:
    url, auth = stack_env["CONNECT_URL"], connect_auth(stack_env)
    states = {}
    for name in requests.get(f"{url}/connectors", auth=auth, timeout=10).json():
        status = requests.get(f"{url}/connectors/{name}/status", auth=auth, timeout=10).json()
        states[name] = [status["connector"]["state"]] + [t["state"] for t in status["tasks"]]
    return states


def test_multi_megabyte_value_in_postgres_flows_end_to_end(
        stack_env: dict[str, str], pg_admin_dsn: str, ch: Client) -> None:
    """A 5 MB customer.kyc_notes: its insert (5 MB) and update (10 MB: before and after image) are far
    over Kafka's 1 MB default, which would fail the Debezium task and stop the pipeline."""
    notes = "".join(random.choices(string.ascii_letters + string.digits, k=5 * 1024**2))
    customer_id = insert_customer_moved(pg_admin_dsn, "Big Notes", notes, city="Oslo", moved_to="Bergen")
    after = new_terminal(pg_admin_dsn, "after big value")
    changes = raw_changes(ch, "customer", customer_id, timeout=120, count=2)
    assert [op for op, _, _ in changes] == ["c", "u"]
    digest = hashlib.md5(notes.encode()).hexdigest()
    loaded = ch.query("SELECT city, length(kyc_notes), lower(hex(MD5(kyc_notes))) FROM raw.customer "
                      "WHERE customer_id = {k:Int64} ORDER BY _version", parameters={"k": customer_id}).result_rows
    assert loaded == [("Oslo", len(notes), digest), ("Bergen", len(notes), digest)]
    raw_changes(ch, "terminal", after)
    states = _connector_states(stack_env)
    assert states and all(set(s) == {"RUNNING"} for s in states.values()), states


def test_date_beyond_clickhouse_range_from_postgres_is_dead_lettered_then_healed(
        pg_admin_dsn: str, ch: Client) -> None:
    """PostgreSQL holds dates to 5874897 AD, ClickHouse's Date32 to 2299: a real change out of that
    range is dead-lettered naming the column and the range; the next change of the row heals it."""
    card_id, expires = pg_sql(pg_admin_dsn, "SELECT card_id, expires_on FROM bank.card WHERE status <> 'closed' "
                                         "ORDER BY card_id DESC LIMIT 1")[0]
    known = len(raw_changes(ch, "card", card_id))
    pg_sql(pg_admin_dsn, "UPDATE bank.card SET expires_on = '5000-01-31', updated_at = now() WHERE card_id = %s",
        (card_id,))
    letter = wait_for(lambda: ch.query(
        "SELECT error FROM raw._dead_letter WHERE topic = 'bank.bank.card' AND position(payload, {p:String}) > 0 "
        "AND position(payload, '\"op\":\"u\"') > 0", parameters={"p": f'"card_id":{card_id},'}).result_rows,
        what="dead letter of the out-of-range card change")
    assert "column expires_on: 5000-01-31 is outside Date32's range 1900-01-01 .. 2299-12-31" in letter[0][0]
    assert len(raw_changes(ch, "card", card_id)) == known, "the out-of-range change is not loaded"
    pg_sql(pg_admin_dsn, "UPDATE bank.card SET expires_on = %s, updated_at = now() WHERE card_id = %s",
        (expires, card_id))
    raw_changes(ch, "card", card_id, count=known + 1)
    assert_raw_equals_pg(pg_admin_dsn, ch, tables=("card",))


def _filler(filler_env: dict[str, str], seconds: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "filler", "run", "--rate", "150", "--duration", str(seconds),
                             "--new-customer-rate", "300", "--card-close-rate", "50"],
                            env=filler_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_schema_change_mid_stream_keeps_current_state_equal_to_postgres(
        filler_env: dict[str, str], pg_admin_dsn: str, ch: Client) -> None:
    """While the filler writes: add columns (nullable, and NOT NULL with a default), write through them,
    drop them again and keep writing. No event is lost or dead-lettered and raw's current state equals
    PostgreSQL; the added columns reach raw as Nullable(String) with the text Debezium sent."""
    dead_before = ch.query("SELECT count() FROM raw._dead_letter WHERE topic IN "
                           "('bank.bank.transaction', 'bank.bank.terminal')").result_rows[0][0]
    filler = _filler(filler_env, 60)
    try:
        wait_for(lambda: ch.query("SELECT count() FROM raw.`transaction` WHERE _loaded_at > now64() - 3"
                                  ).result_rows[0][0] > 0, timeout=60, what="changes streaming")
        pg_sql(pg_admin_dsn, 'ALTER TABLE bank."transaction" ADD COLUMN bad_input_risk numeric(5, 2)')
        pg_sql(pg_admin_dsn, "ALTER TABLE bank.terminal ADD COLUMN bad_input_channel text NOT NULL DEFAULT 'web'")
        scored = new_transaction(pg_admin_dsn, next_transaction_id(pg_admin_dsn))
        pg_sql(pg_admin_dsn, 'UPDATE bank."transaction" SET bad_input_risk = 0.75 WHERE transaction_id = %s', (scored,))
        terminal = pg_sql(pg_admin_dsn, """INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country,
                                           currency, bad_input_channel)
                                        VALUES ('ONLINE', 'Mid Stream', '5999', 'Oslo', 'NO', 'NOK', 'app')
                                        RETURNING terminal_id""")[0][0]
        risk = wait_for(lambda: ch.query(
            "SELECT bad_input_risk FROM raw.`transaction` WHERE transaction_id = {k:Int64} AND _op = 'u'",
            parameters={"k": scored}).result_rows if "bad_input_risk" in _raw_columns(ch, "transaction") else None,
            what="the added transaction column in raw")
        assert risk == [("0.75",)]
        channel = wait_for(lambda: ch.query(
            "SELECT bad_input_channel FROM raw.terminal WHERE terminal_id = {k:Int64}",
            parameters={"k": terminal}).result_rows if "bad_input_channel" in _raw_columns(ch, "terminal") else None,
            what="the added terminal column in raw")
        assert channel == [("app",)]
        pg_sql(pg_admin_dsn, 'ALTER TABLE bank."transaction" DROP COLUMN bad_input_risk')
        pg_sql(pg_admin_dsn, "ALTER TABLE bank.terminal DROP COLUMN bad_input_channel")
        after_drop = new_terminal(pg_admin_dsn, "after drop")
        output, _ = filler.communicate(timeout=120)
        assert filler.returncode == 0, output[-2000:]
    finally:
        if filler.poll() is None:
            filler.send_signal(signal.SIGTERM)
            filler.communicate(timeout=60)
        pg_sql(pg_admin_dsn, 'ALTER TABLE bank."transaction" DROP COLUMN IF EXISTS bad_input_risk')
        pg_sql(pg_admin_dsn, "ALTER TABLE bank.terminal DROP COLUMN IF EXISTS bad_input_channel")
    raw_changes(ch, "terminal", after_drop)
    assert ch.query("SELECT bad_input_channel FROM raw.terminal WHERE terminal_id = {k:Int64}",
                    parameters={"k": after_drop}).result_rows == [(None,)], "a dropped column arrives as NULL"
    assert_raw_equals_pg(pg_admin_dsn, ch)
    dead_after = ch.query("SELECT count() FROM raw._dead_letter WHERE topic IN "
                          "('bank.bank.transaction', 'bank.bank.terminal')").result_rows[0][0]
    assert dead_after == dead_before, "a schema change must not dead-letter good events"


def _raw_columns(ch: Client, table: str) -> set[str]:
    return {c for (c,) in ch.query("SELECT name FROM system.columns WHERE database = 'raw' AND table = {t:String}",
                                   parameters={"t": table}).result_rows}
