"""The three roles of clickhouse_init/users.xml, as their clients see them (same result on clickhouse-server).

loader: reads and inserts raw, adds columns there, nothing else; transformer: reads raw, owns
stg/ods/marts, appends monitoring; analyst: reads marts and the PII-free ods tables only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from .conftest import Endpoint

pytestmark = pytest.mark.integration
DATABASES = ("raw", "stg", "ods", "marts", "monitoring")


@pytest.fixture
def tables(ch_endpoint: Endpoint) -> Iterator[dict[str, str]]:
    """One fresh table per layer database, ``<db>.it_<id> (a UInt32)``, dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    admin = ch_endpoint.client()
    names = {db: f"{db}.it_{suffix}" for db in DATABASES}
    for db, name in names.items():
        admin.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        admin.command(f"CREATE TABLE {name} (a UInt32) ENGINE = MergeTree ORDER BY a")
        admin.command(f"INSERT INTO {name} VALUES (1)")
    yield names
    for name in names.values():
        admin.command(f"DROP TABLE IF EXISTS {name}")
    admin.close()


def denied(call: Callable[[], object]) -> str:
    """The ACCESS_DENIED message of a refused call (fails the test if the call succeeds)."""
    with pytest.raises(DatabaseError) as err:
        call()
    text = str(err.value)
    assert "Code: 497" in text and "Not enough privileges" in text, text
    return text


def test_loader_writes_raw_only(ch_endpoint: Endpoint, tables: dict[str, str]) -> None:
    loader = ch_endpoint.client("loader")
    loader.insert(tables["raw"], [(2,)], column_names=["a"])
    assert loader.query(f"SELECT count() FROM {tables['raw']}").result_rows == [(2,)]
    loader.command(f"ALTER TABLE {tables['raw']} ADD COLUMN IF NOT EXISTS note Nullable(String)")
    assert "SELECT ON ods." in denied(lambda: loader.query(f"SELECT * FROM {tables['ods']}"))
    denied(lambda: loader.query(f"SELECT * FROM {tables['raw']} WHERE a IN (SELECT a FROM {tables['marts']})"))
    assert "DROP TABLE ON raw." in denied(lambda: loader.command(f"DROP TABLE {tables['raw']}"))
    denied(lambda: loader.command(f"TRUNCATE TABLE {tables['raw']}"))
    denied(lambda: loader.command(f"ALTER TABLE {tables['raw']} DELETE WHERE a = 1"))
    denied(lambda: loader.insert(tables["ods"], [(3,)], column_names=["a"]))
    denied(lambda: loader.command(f"CREATE TABLE raw.it_{uuid.uuid4().hex[:8]} (a UInt8) ENGINE = Memory"))


def test_transformer_reads_raw_and_owns_models(ch_endpoint: Endpoint, tables: dict[str, str]) -> None:
    transformer = ch_endpoint.client("transformer")
    built = f"ods.it_built_{uuid.uuid4().hex[:8]}"
    try:
        transformer.command(f"CREATE TABLE {built} ENGINE = MergeTree ORDER BY a AS "
                            f"WITH src AS (SELECT a FROM {tables['raw']}) SELECT a FROM src")
        transformer.command(f"EXCHANGE TABLES {built} AND {tables['ods']}")
        transformer.command(f"DELETE FROM {tables['ods']} WHERE a = 0")
        transformer.insert(tables["monitoring"], [(5,)], column_names=["a"])
        assert transformer.query(f"SELECT count() FROM {tables['monitoring']}").result_rows == [(2,)]
    finally:
        transformer.command(f"DROP TABLE IF EXISTS {built}")
    assert "INSERT ON raw." in denied(lambda: transformer.insert(tables["raw"], [(9,)], column_names=["a"]))
    denied(lambda: transformer.command(f"DROP TABLE {tables['raw']}"))
    denied(lambda: transformer.command(f"DROP TABLE {tables['monitoring']}"))
    assert "FILE ON" in denied(lambda: transformer.query("SELECT * FROM file('/etc/passwd', 'LineAsString')"))


def test_analyst_reads_marts_only(ch_endpoint: Endpoint, tables: dict[str, str]) -> None:
    analyst = ch_endpoint.client("analyst")
    assert analyst.query(f"SELECT count() FROM {tables['marts']}").result_rows == [(1,)]
    for db in ("raw", "stg", "ods", "monitoring"):
        denied(lambda: analyst.query(f"SELECT * FROM {tables[db]}"))
    denied(lambda: analyst.query(f"WITH r AS (SELECT a FROM {tables['raw']}) SELECT * FROM {tables['marts']} JOIN r USING a"))
    denied(lambda: analyst.command(f"INSERT INTO {tables['marts']} VALUES (1)"))
    denied(lambda: analyst.command(f"DROP TABLE {tables['marts']}"))
    denied(lambda: analyst.command(f"ALTER TABLE {tables['marts']} DELETE WHERE 1"))
    assert analyst.query(f"SELECT count() FROM {tables['marts']}").result_rows == [(1,)]
