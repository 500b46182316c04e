"""clickhouse-connect against the endpoint: the calls the consumer, dbt and Airflow make."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from .conftest import Endpoint

pytestmark = pytest.mark.integration

TXN_DDL = """
CREATE TABLE {db}.txn (
    id UInt64, card_id UInt64, amount Decimal(18, 2), currency LowCardinality(String),
    created_at DateTime64(6, 'UTC'), merchant Nullable(String)
) ENGINE = MergeTree ORDER BY id
"""


def _rows(n: int, start: int = 0) -> list[tuple]:
    base = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    return [
        (i, i % 97, decimal.Decimal(i) / 4, "EUR" if i % 3 else "USD", base + dt.timedelta(microseconds=i), None if i % 5 else f"m{i}")
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("compress", [True, False], ids=["default-compression", "uncompressed"])
def test_insert_and_read_back(ch_endpoint: Endpoint, database: str, compress: bool) -> None:
    client = ch_endpoint.client(compress=compress)
    client.command(TXN_DDL.format(db=database))
    summary = client.insert(f"{database}.txn", _rows(5000), column_names=["id", "card_id", "amount", "currency", "created_at", "merchant"])
    assert summary.written_rows == 5000
    count, total, nulls = client.query(f"SELECT count(), sum(amount), countIf(merchant IS NULL) FROM {database}.txn").result_rows[0]
    assert (count, total, nulls) == (5000, sum(r[2] for r in _rows(5000)), 4000)
    got = client.query(f"SELECT * FROM {database}.txn ORDER BY id LIMIT 2").result_rows[1]
    want = _rows(2)[1]
    assert got[:4] == want[:4] and got[5] == want[5]
    assert got[4].replace(tzinfo=dt.timezone.utc) == want[4]


def test_query_df_arrow_and_command(ch_endpoint: Endpoint, database: str) -> None:
    client = ch_endpoint.client()
    assert client.command(f"CREATE TABLE {database}.t (a UInt32, b String) ENGINE = MergeTree ORDER BY a") is not None
    client.command(f"INSERT INTO {database}.t SELECT number, toString(number) FROM numbers(10)")
    assert client.command(f"SELECT count() FROM {database}.t") == 10
    df = client.query_df(f"SELECT a, b FROM {database}.t ORDER BY a")
    assert list(df["a"]) == list(range(10)) and df["b"][3] == "3"
    table = client.query_arrow(f"SELECT a * 2 AS x FROM {database}.t ORDER BY a")
    assert table.column("x").to_pylist() == [i * 2 for i in range(10)]


def test_streaming_blocks(ch_endpoint: Endpoint) -> None:
    client = ch_endpoint.client()
    total, blocks = 0, 0
    with client.query_row_block_stream("SELECT number FROM numbers(500000)") as stream:
        for block in stream:
            blocks += 1
            total += sum(row[0] for row in block)
    assert total == sum(range(500000)) and blocks > 1


def test_parameters_and_settings(ch_endpoint: Endpoint) -> None:
    client = ch_endpoint.client()
    assert client.query("SELECT {a:UInt32} + 1, {s:String}", parameters={"a": 41, "s": "it's"}).result_rows == [(42, "it's")]
    assert client.query("SELECT %(x)s", parameters={"x": "o'k"}).result_rows == [("o'k",)]
    one = client.query("SELECT getSetting('max_threads')", settings={"max_threads": 1}).result_rows[0][0]
    after = client.query("SELECT getSetting('max_threads')").result_rows[0][0]
    assert one == 1 and after != 1  # a per-query setting does not stick to the session


def test_session_keeps_temporary_tables_and_set(ch_endpoint: Endpoint) -> None:
    client = ch_endpoint.client()
    client.command("CREATE TEMPORARY TABLE tmp_ids (id UInt64)")
    client.command("INSERT INTO tmp_ids VALUES (1), (2), (3)")
    client.command("SET max_block_size = 1234")
    assert client.query("SELECT sum(id) FROM tmp_ids").result_rows == [(6,)]
    assert client.query("SELECT getSetting('max_block_size')").result_rows == [(1234,)]
    other = ch_endpoint.client()  # a different session sees neither
    with pytest.raises(DatabaseError) as err:
        other.query("SELECT * FROM tmp_ids")
    assert err.value.code == 60
    assert other.query("SELECT getSetting('max_block_size')").result_rows != [(1234,)]


def test_session_check_and_lock(ch_endpoint: Endpoint) -> None:
    import requests

    auth = ("default", ch_endpoint.passwords["default"])
    missing = requests.post(ch_endpoint.url, params={"session_id": uuid.uuid4().hex, "session_check": "1"}, data="SELECT 1", auth=auth)
    assert missing.status_code == 500 and missing.text.startswith("Code: 372.") and "SESSION_NOT_FOUND" in missing.text


def test_readonly_analyst_cannot_write(ch_endpoint: Endpoint, marts_table: str) -> None:
    analyst = ch_endpoint.client("analyst")
    assert analyst.query(f"SELECT count() FROM {marts_table}").result_rows == [(0,)]
    with pytest.raises(DatabaseError) as err:
        analyst.command(f"INSERT INTO {marts_table} VALUES (1)")
    assert err.value.code == 497  # not granted: refused before readonly is looked at, as on the server
    with pytest.raises(DatabaseError) as err:
        analyst.insert(marts_table, [(1,)], column_names=["a"])
    assert err.value.code == 497
    with pytest.raises(DatabaseError) as err:
        analyst.command("SET readonly = 0")
    assert err.value.code == 164
    assert ch_endpoint.client().command(f"SELECT count() FROM {marts_table}") == 0


def test_wrong_password_refused(ch_endpoint: Endpoint) -> None:
    import clickhouse_connect

    with pytest.raises(DatabaseError) as err:
        clickhouse_connect.get_client(host=ch_endpoint.host, port=ch_endpoint.port, username="loader", password="wrong")
    assert "516" in str(err.value) and "AUTHENTICATION_FAILED" in str(err.value)
