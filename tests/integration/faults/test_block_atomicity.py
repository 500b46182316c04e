"""Issue 18: the consumer's resume point cannot skip rows, because one block is one part.

The consumer resumes after the highest offset a raw table holds. That is a complete prefix only
if every block (one Kafka partition's consecutive offsets) lands whole or not at all. Monthly
partitions split a block whose commit times straddle a month boundary into two parts, and a
crash between them left a gap behind the resume point. Raw tables have no partitioning now, and
the loader squashes a block into one part: synthetic Debezium events on a test topic, their
commit times crafted across a month boundary, land in one part per block, and with the ClickHouse
endpoint killed mid-stream every offset still arrives, none twice.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any, Iterator

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from bankcdc_stack import faults
from bankcdc_stack.stack import Stack
from cdc_consumer.config import ConsumerSettings
from cdc_consumer.loader import TABLES_REREAD_SECONDS, RawLoader

from ..cdc_helpers import kafka_client, wait_for

pytestmark = pytest.mark.integration
TABLE = "crash_probe"
TOPIC = f"bank.probe.{TABLE}"
MONTH_END = dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
METADATA = """_op LowCardinality(String), _lsn UInt64, _version UInt64, _source_ts DateTime64(3, 'UTC'),
    _emitted_ts DateTime64(3, 'UTC'), _topic LowCardinality(String), _partition Int32, _offset Int64,
    _loaded_at DateTime64(6, 'UTC') DEFAULT now64(6), _is_deleted UInt8"""


@pytest.fixture
def probe_table(ch: Client, stack_env: dict[str, str]) -> Iterator[str]:
    """A raw table shaped as clickhouse_init's (no PARTITION BY), and its topic, removed after."""
    ch.command(f"DROP TABLE IF EXISTS raw.{TABLE}")
    ch.command(f"CREATE TABLE raw.{TABLE} (probe_id Int64, note String, {METADATA}) ENGINE = ReplacingMergeTree "
               "ORDER BY (probe_id, _version, _lsn) SETTINGS non_replicated_deduplication_window = 1000")
    try:
        yield TABLE
    finally:
        ch.command(f"DROP TABLE IF EXISTS raw.{TABLE}")
        AdminClient(kafka_client(stack_env)).delete_topics([TOPIC])


def _event(i: int) -> bytes:
    """A Debezium insert; even ids commit on the last second of January, odd ones on 1 February."""
    commit = MONTH_END + dt.timedelta(seconds=i % 2)
    ms = int(commit.timestamp() * 1000)
    return json.dumps({"before": None, "after": {"probe_id": i, "note": f"probe {i}"}, "op": "c", "ts_ms": ms,
                       "source": {"lsn": 10**9 + i, "ts_ms": ms, "table": TABLE, "schema": "probe"}}).encode()


def test_every_raw_table_is_unpartitioned(ch: Client) -> None:
    rows = ch.query("SELECT name, partition_key FROM system.tables WHERE database = 'raw' "
                    "AND engine LIKE '%MergeTree'").result_rows
    assert rows and all(key == "" for _, key in rows), rows


class _Message:
    """What ColumnarBuilder reads of a confluent-kafka Message."""

    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def offset(self) -> int:
        return self._offset


@pytest.mark.parametrize("form", ["rows", "arrow"])
def test_a_block_straddling_two_months_is_one_part(form: str, probe_table: str, stack_env: dict[str, str],
                                                   ch: Client) -> None:
    """Both forms the loader inserts: Native rows (the row path) and an Arrow table (ColumnarBuilder)."""
    settings = ConsumerSettings.from_env({**stack_env, "CDC_CLICKHOUSE_USER": "loader"})
    loader = RawLoader(settings)
    count = 200_000
    try:
        table = loader.table_for(probe_table)
        if form == "arrow":
            assert table.columnar is not None
            built = table.columnar.build("direct", 0, [_Message(_event(i), i) for i in range(count)])
            assert built is not None
            block: Any = built.data
        else:
            block = []
            for i in range(count):
                values = {"probe_id": i, "note": f"probe {i}", "_op": "c", "_lsn": i, "_version": i,
                          "_source_ts": MONTH_END + dt.timedelta(seconds=i % 2), "_emitted_ts": MONTH_END,
                          "_topic": "direct", "_partition": 0, "_offset": i, "_is_deleted": 0}
                block.append([values[c] for c in table.insert_columns])
        loader.insert_block(table, block, f"direct:0:0-{count - 1}")
    finally:
        loader.close()
    parts = ch.query(f"SELECT _part, count(), uniqExact(toYYYYMM(_source_ts)) FROM raw.{probe_table} "
                     "GROUP BY _part").result_rows
    assert len(parts) == 1 and parts[0][1] == count and parts[0][2] == 2, \
        f"{count:,} rows over two months in one part: {parts}"


def test_killing_the_endpoint_mid_stream_leaves_no_gap_and_no_double(
        probe_table: str, stack: Stack, stack_env: dict[str, str], ch: Client) -> None:
    count = 60_000
    time.sleep(TABLES_REREAD_SECONDS + 1)  # the running consumer learns of a new raw table this often
    producer = Producer({**kafka_client(stack_env), "linger.ms": 20})
    for i in range(count // 2):
        producer.produce(TOPIC, key=json.dumps({"probe_id": i}).encode(), value=_event(i))
    producer.flush(60)
    wait_for(lambda: ch.query(f"SELECT count() FROM raw.{probe_table}").result_rows[0][0] > 0, timeout=120,
             interval=0.5, what="the consumer to pick the test topic up and load from it")
    for i in range(count // 2, count):
        producer.produce(TOPIC, key=json.dumps({"probe_id": i}).encode(), value=_event(i))
        if i == count // 2 + 2000:
            producer.flush(60)
            killed = faults.crash(stack, "clickhouse")
            assert killed, "the endpoint was running"
    producer.flush(60)
    time.sleep(2)
    faults.recover(stack, "clickhouse")

    def loaded() -> tuple[int, int, int]:
        return tuple(ch.query(f"SELECT count(), uniqExact(_offset), max(_offset) FROM raw.{probe_table} FINAL "
                              f"WHERE _topic = '{TOPIC}'").result_rows[0])

    wait_for(lambda: loaded()[1] == count, timeout=300, interval=2, what=f"all {count} offsets in raw")
    rows, offsets, highest = loaded()
    assert (rows, offsets, highest) == (count, count, count - 1), "every offset once, none missing"
    months = ch.query(f"SELECT uniqExact(toYYYYMM(_source_ts)) FROM raw.{probe_table}").result_rows[0][0]
    assert months == 2, "the blocks straddled the month boundary"


def test_the_resume_point_reads_the_progress_projection_not_the_table(ch: Client) -> None:
    """loaded_offset costs one row per part, the same at 1 M rows as at 100 M."""
    plan = "\n".join(row[0] for row in ch.query(
        "EXPLAIN SELECT max(_offset) FROM raw.`transaction` WHERE _topic = 'bank.bank.transaction' "
        "AND _partition = 0 GROUP BY _topic, _partition").result_rows)
    assert "ReadFromMergeTree (stream_progress)" in plan, plan
