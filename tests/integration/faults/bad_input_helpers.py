"""Bad Kafka messages and good PostgreSQL changes around them, for tests/integration/faults/test_bad_input.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer

from ..cdc_helpers import TABLE_KEYS, pg_sql, wait_for

TERMINAL_TOPIC = "bank.bank.terminal"
TRANSACTION_TOPIC = "bank.bank.transaction"


@dataclass(frozen=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def produce(kafka: dict[str, str], topic: str, value: bytes | None, key: bytes = b'{"bad":"input"}',
            partition: int | None = None) -> Delivered:
    """One message, as Kafka Connect would partition it (murmur2 of the key), acknowledged by the broker.
    `kafka`: the client's librdkafka settings (address and credentials)."""
    producer = Producer({**kafka, "partitioner": "murmur2_random",
                         "message.max.bytes": 8 * 1024**2})
    result: list = []
    kwargs: dict[str, Any] = {} if partition is None else {"partition": partition}
    producer.produce(topic, key=key, value=value, **kwargs,
                     on_delivery=lambda err, msg: result.append((err, msg.partition(), msg.offset())))
    producer.flush(30)
    assert result and result[0][0] is None, f"produce to {topic} failed: {result}"
    return Delivered(topic, result[0][1], result[0][2])


def dead_letter(ch: Client, where: Delivered, timeout: float = 60) -> tuple[bytes, bytes, str]:
    """(key, payload, error) of the dead letter at exactly this topic/partition/offset (bytes as stored)."""
    rows = wait_for(lambda: ch.query(
        "SELECT key, payload, error FROM raw._dead_letter WHERE topic = {t:String} AND partition = {p:Int32} "
        "AND offset = {o:Int64}", parameters={"t": where.topic, "p": where.partition, "o": where.offset},
        column_formats={"key": "bytes", "payload": "bytes"}).result_rows,
        timeout=timeout, what=f"dead letter {where}")
    assert len(rows) == 1, rows
    return rows[0]


def not_loaded(ch: Client, table: str, where: Delivered) -> bool:
    return ch.query(f"SELECT count() FROM raw.`{table}` WHERE _topic = {{t:String}} AND _partition = {{p:Int32}} "
                    "AND _offset = {o:Int64}", parameters={"t": where.topic, "p": where.partition,
                                                           "o": where.offset}).result_rows[0][0] == 0


def raw_changes(ch: Client, table: str, key: int, timeout: float = 60, count: int = 1) -> list[tuple]:
    """(_op, _partition, _offset) of a source row's changes in raw, once `count` have arrived."""
    key_col = TABLE_KEYS[table]
    return wait_for(lambda: (lambda rows: rows if len(rows) >= count else None)(ch.query(
        f"SELECT _op, _partition, _offset FROM raw.`{table}` WHERE `{key_col}` = {{k:Int64}} "
        "ORDER BY _version, _lsn", parameters={"k": key}).result_rows),
        timeout=timeout, what=f"raw.{table} {key_col}={key} ({count} changes)")


def new_terminal(pg_dsn: str, merchant: str) -> int:
    return pg_sql(pg_dsn, """INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country, currency)
                          VALUES ('ONLINE', %s, '5999', 'Oslo', 'NO', 'NOK') RETURNING terminal_id""", (merchant,))[0][0]


def next_transaction_id(pg_dsn: str) -> int:
    return pg_sql(pg_dsn, "SELECT nextval(pg_get_serial_sequence('bank.\"transaction\"', 'transaction_id'))")[0][0]


def new_transaction(pg_dsn: str, transaction_id: int, amount: str = "12.34") -> int:
    """A transaction with this id on an existing card and terminal."""
    card_id, terminal_id = pg_sql(pg_dsn, "SELECT (SELECT min(card_id) FROM bank.card), "
                                       "(SELECT min(terminal_id) FROM bank.terminal)")[0]
    pg_sql(pg_dsn, """INSERT INTO bank."transaction" (transaction_id, card_id, terminal_id, txn_type, amount, currency,
                                                  card_present, entry_mode)
                   VALUES (%s, %s, %s, 'purchase', %s, 'EUR', true, 'chip')""",
        (transaction_id, card_id, terminal_id, amount))
    return transaction_id


def terminal_event(terminal_id: int, /, **after: Any) -> dict[str, Any]:
    """A well-formed Debezium insert event of bank.terminal (JSON converter, no schema)."""
    row = {"terminal_id": terminal_id, "terminal_type": "POS", "merchant_name": "Bad Input Test", "mcc": "5411",
           "city": "Oslo", "country": "NO", "currency": "NOK", "description": None, "status": "active",
           "closed_at": None, "created_at": "2026-11-23T09:00:00.000000Z", "updated_at": "2026-11-23T09:00:00.000000Z"}
    row.update(after)
    return {"before": None, "after": row, "op": "c", "ts_ms": 1795424400000,
            "source": {"connector": "postgresql", "db": "bank", "schema": "bank", "table": "terminal",
                       "lsn": 123456, "ts_ms": 1795424400000}}


def transaction_event(transaction_id: int, /, **after: Any) -> dict[str, Any]:
    row = {"transaction_id": transaction_id, "card_id": 1, "terminal_id": 1, "txn_type": "purchase",
           "status": "pending", "amount": "10.00", "currency": "EUR", "card_present": True, "entry_mode": "chip",
           "decline_reason": None, "created_at": "2026-11-23T09:00:00.000000Z", "approved_at": None,
           "declined_at": None, "reversed_at": None, "updated_at": "2026-11-23T09:00:00.000000Z"}
    row.update(after)
    return {"before": None, "after": row, "op": "c", "ts_ms": 1795424400000,
            "source": {"connector": "postgresql", "db": "bank", "schema": "bank", "table": "transaction",
                       "lsn": 123456, "ts_ms": 1795424400000}}


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def debezium_key(table: str, key: int) -> bytes:
    """The key Debezium's JsonConverter (schemas off) writes: the same bytes put a message on the same partition."""
    return json.dumps({TABLE_KEYS[table]: key}, separators=(",", ":")).encode()
