"""A raw table's insert plan: the columns a block carries and Debezium's epoch milliseconds as the
ticks of each DateTime64 metadata column (clickhouse-connect writes ints as they are)."""

from __future__ import annotations

import datetime as dt

import pytest

from cdc_consumer.errors import ConfigError
from cdc_consumer.loader import RawTable, _ticks

COLUMNS = {"card_id": "Int64", "closed_at": "Nullable(DateTime64(6, 'UTC'))", "_source_ts": "DateTime64(3, 'UTC')",
           "_emitted_ts": "DateTime64(6, 'UTC')", "_loaded_at": "DateTime64(6, 'UTC')"}


def test_the_plan_leaves_the_load_time_to_the_server_and_knows_the_nullable_columns() -> None:
    table = RawTable("card", dict(COLUMNS), ["card_id"])
    table.refresh_converters()
    assert table.insert_columns == ["card_id", "closed_at", "_source_ts", "_emitted_ts"]
    assert table.nullable == {"closed_at"}


@pytest.mark.parametrize("ch_type, ticks_per_second", [("DateTime64(3, 'UTC')", 1000), ("DateTime64(6, 'UTC')", 10**6),
                                                       ("DateTime64(0, 'UTC')", 1)])
def test_milliseconds_become_the_columns_ticks(ch_type: str, ticks_per_second: int) -> None:
    table = RawTable("card", {**COLUMNS, "_source_ts": ch_type}, ["card_id"])
    table.refresh_converters()
    moment = dt.datetime(1969, 12, 31, 23, 59, 58, 999000, tzinfo=dt.timezone.utc)  # before the epoch: floor
    ms = round(moment.timestamp() * 1000)
    expected = (ms * ticks_per_second) // 1000
    assert _ticks(ms, table.ms_to_ticks["_source_ts"]) == expected


def test_a_metadata_time_column_that_is_not_datetime64_is_a_config_error() -> None:
    table = RawTable("card", {**COLUMNS, "_source_ts": "String"}, ["card_id"])
    with pytest.raises(ConfigError, match=r"raw\.card\._source_ts is String"):
        table.refresh_converters()
