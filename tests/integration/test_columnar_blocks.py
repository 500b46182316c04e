"""Issue 17: blocks built column by column store exactly what the row path stores.

The consumer builds a partition's block with the table's ColumnarBuilder (inserted as Arrow) and
falls back to the row path (inserted as Native) for any event the builder does not convert
exactly. Both paths load the same Debezium events, read back from the test stack's topics, into
two copies of the raw layer on the real ClickHouse endpoint; every column of every row must
come back the same. Debezium's events must all take the columnar path, except a block holding an
event only the row path handles (a dead letter or a new column, which other tests write): the
builder must refuse that block, and the two paths are then compared on its other events.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterator

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, Message, TopicPartition

from cdc_consumer.config import ConsumerSettings
from cdc_consumer.envelope import SourceRef, decode, table_of
from cdc_consumer.errors import DecodeError
from cdc_consumer.loader import RawLoader, RawTable

from .cdc_helpers import TABLE_KEYS, kafka_client, pg_sql, wait_for

pytestmark = pytest.mark.integration
DATABASES = {"rows": "raw_check_rows", "columns": "raw_check_columns"}
BLOCK = 5000  # messages per block, as a batch of the consumer would hold
MAX_PER_PARTITION = 30_000


@pytest.fixture
def loaders(ch: Client, stack_env: dict[str, str]) -> Iterator[dict[str, RawLoader]]:
    """A RawLoader per path, each on its own copy of the raw tables, dropped after. The copies are
    plain MergeTree: raw's ReplacingMergeTree collapses a replayed event (one key, version and LSN,
    as Connect may redeliver after a crash) whenever a merge runs, so the comparison would race it."""
    tables = [name for (name,) in ch.query("SELECT name FROM system.tables WHERE database = 'raw' "
                                           "AND engine LIKE '%MergeTree'").result_rows]
    made: dict[str, RawLoader] = {}
    try:
        for path, database in DATABASES.items():
            ch.command(f"DROP DATABASE IF EXISTS {database}")
            ch.command(f"CREATE DATABASE {database}")
            for table in tables:
                ddl = ch.query(f"SHOW CREATE TABLE raw.`{table}`").result_rows[0][0]
                ch.command(plain_copy(ddl, database, table))
            made[path] = RawLoader(ConsumerSettings.from_env({
                **stack_env, "CDC_RAW_DATABASE": database, "CDC_CLICKHOUSE_USER": "default",
                "CLICKHOUSE_LOADER_PASSWORD": stack_env["CLICKHOUSE_PASSWORD"]}))
        yield made
    finally:
        for loader in made.values():
            loader.close()
        for database in DATABASES.values():
            ch.command(f"DROP DATABASE IF EXISTS {database}")


def plain_copy(ddl: str, database: str, table: str) -> str:
    """raw's CREATE TABLE statement for `database`.`table`, with MergeTree for ReplacingMergeTree."""
    ddl, renamed = re.subn(r"^CREATE TABLE \S+", f"CREATE TABLE {database}.`{table}`", ddl.strip(), count=1)
    assert renamed == 1, f"not a CREATE TABLE statement:\n{ddl}"
    return re.sub(r"ENGINE = ReplacingMergeTree(\([^)]*\))?", "ENGINE = MergeTree", ddl, count=1)


@pytest.fixture(scope="module")
def every_operation(pg_admin_dsn: str, ch: Client) -> None:
    """An insert, an update and a delete in the topics, beside the initial snapshot's reads."""
    terminal_id = pg_sql(pg_admin_dsn, """INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country,
                                           currency, description)
                                        VALUES ('POS', 'Columnar Check', '5411', 'Köln', 'DE', 'EUR', 'ü €')
                                        RETURNING terminal_id""")[0][0]
    pg_sql(pg_admin_dsn, "UPDATE bank.terminal SET status = 'closed', closed_at = now() WHERE terminal_id = %s",
           (terminal_id,))
    pg_sql(pg_admin_dsn, "DELETE FROM bank.terminal WHERE terminal_id = %s", (terminal_id,))
    wait_for(lambda: ch.query("SELECT count() FROM raw.terminal WHERE terminal_id = {k:Int64} AND _op = 'd'",
                              parameters={"k": terminal_id}).result_rows[0][0], what="the delete in raw")


def captured_messages(env: dict[str, str]) -> dict[tuple[str, int], list[Message]]:
    """Every partition's messages of the bank's tables, from the start up to what it held when
    asked (other tests' topics of tables raw lacks are the row path's dead letters alone)."""
    reader = Consumer({**kafka_client(env), "group.id": "columnar-check", "enable.auto.commit": False})
    try:
        ends: dict[tuple[str, int], int] = {}
        starts = []
        for name, meta in reader.list_topics(timeout=10).topics.items():
            if name.startswith("bank.bank.") and name.removeprefix("bank.bank.") in TABLE_KEYS:
                for partition in meta.partitions:
                    low, high = reader.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
                    if high > low:
                        ends[(name, partition)] = min(high, low + MAX_PER_PARTITION)
                        starts.append(TopicPartition(name, partition, low))
        reader.assign(starts)
        found: dict[tuple[str, int], list[Message]] = defaultdict(list)
        done: set[tuple[str, int]] = set()
        while len(done) < len(ends):
            batch = reader.consume(5000, timeout=10)
            assert batch, f"Kafka stopped delivering before the watermarks: {sorted(set(ends) - done)}"
            for msg in batch:
                key = (msg.topic(), msg.partition())
                if msg.error() is None and key in ends and msg.offset() < ends[key]:
                    found[key].append(msg)
                    if msg.offset() == ends[key] - 1:
                        done.add(key)
        return found
    finally:
        reader.close()


def loadable(raw: RawTable, block: list[Message]) -> tuple[list[Message], list[list[Any]]]:
    """The block's messages the row path loads into `raw` as it is, and their rows: no tombstone,
    no dead letter, no event with a column raw lacks (the consumer adds it first, or dead-letters
    the event when the name is unsafe)."""
    kept, rows = [], []
    for msg in block:
        try:
            event = decode(msg.value(), SourceRef(msg.topic(), msg.partition(), msg.offset()), "bank")
            if event is not None and all(column in raw.columns for column in event.row):
                rows.append(raw.row(event))
                kept.append(msg)
        except DecodeError:
            continue
    return kept, rows


def stored(ch: Client, database: str, table: str) -> list[tuple[Any, ...]]:
    return ch.query(f"SELECT * EXCEPT _loaded_at FROM {database}.`{table}` "
                    "ORDER BY _topic, _partition, _offset").result_rows


def test_both_paths_store_every_column_of_debeziums_events_alike(
        every_operation: None, loaders: dict[str, RawLoader], stack_env: dict[str, str], ch: Client) -> None:
    loaded: dict[str, int] = defaultdict(int)
    operations: set[str] = set()
    refused_blocks = 0
    for (topic, partition), messages in sorted(captured_messages(stack_env).items()):
        name = table_of(topic, "bank")
        for start in range(0, len(messages), BLOCK):
            block = messages[start:start + BLOCK]
            token = f"{topic}:{partition}:{block[0].offset()}-{block[-1].offset()}"
            raw = loaders["rows"].table_for(name)
            kept, rows = loadable(raw, block)
            columnar = loaders["columns"].table_for(name).columnar
            assert columnar is not None, f"raw.{name} has a column type without a columnar plan"
            if not rows:
                assert columnar.build(topic, partition, block) is None  # only tombstones or dead letters
                continue
            if len(kept) < sum(msg.value() is not None for msg in block):
                assert columnar.build(topic, partition, block) is None, \
                    f"{token}: the block holds an event the row path must handle, yet the builder took it"
                refused_blocks += 1
            built = columnar.build(topic, partition, kept)
            assert built is not None, f"Debezium's events of {token} went to the row path"
            assert len(built.data) == len(rows)
            operations.update(built.data["_op"].to_pylist())
            loaders["rows"].insert_block(raw, rows, token)
            loaders["columns"].insert_block(loaders["columns"].table_for(name), built.data, token)
            loaded[name] += len(rows)
    assert {"customer", "account", "card", "terminal", "transaction"} <= set(loaded), loaded
    assert operations == {"r", "c", "u", "d"}
    print(f"blocks the builder refused, compared without their row-path events: {refused_blocks}")
    for name in loaded:
        by_rows, by_columns = (stored(ch, DATABASES[path], name) for path in ("rows", "columns"))
        assert len(by_rows) == loaded[name]
        assert by_columns == by_rows, f"raw.{name}: the Arrow block stored other values than the Native rows"
