"""ClickHouse DDL of the local stack: clickhouse_init/ applied as written, and the one-time
upgrades of tables an older version of the project made."""

from __future__ import annotations

import re
from pathlib import Path

import clickhouse_connect

from bankcdc_stack.clickhouse_ddl import apply_folder


def apply_clickhouse_folder(folder: Path, host: str, port: int, user: str, password: str) -> int:
    """`folder`'s DDL as written, for the local stack's one server (bankcdc_stack.clickhouse_ddl)."""
    return apply_folder(folder, {"host": host, "port": port, "username": user, "password": password})


_PARTITION_BY = re.compile(r"\sPARTITION BY .*?(?=\s(?:PRIMARY KEY|ORDER BY|TTL|SETTINGS)\s)", re.DOTALL)


def unpartition_raw_tables(host: str, port: int, user: str, password: str, database: str = "raw") -> list[str]:
    """Rebuild the raw tables an older clickhouse_init made partitioned (by commit month) without
    partitioning, keeping their rows, indexes and projections: a consumer block must be one part
    (clickhouse_init/20_raw_tables.sql). Returns the tables rebuilt. Run while nothing writes them
    (the local stack does it before the consumer starts)."""
    client = clickhouse_connect.get_client(host=host, port=port, username=user, password=password,
                                           autogenerate_session_id=False)
    rebuilt = []
    try:
        rows = client.query("SELECT name, create_table_query FROM system.tables WHERE database = {d:String} "
                            "AND engine LIKE '%MergeTree' AND partition_key != ''", parameters={"d": database}).result_rows
        for name, create in rows:
            staging = f"{name}__unpartitioned"
            ddl = _PARTITION_BY.sub("", create, count=1).replace(f"{database}.{name} ", f"{database}.{staging} ", 1)
            client.command(f"DROP TABLE IF EXISTS {database}.`{staging}`")
            client.command(ddl)
            client.command(f"INSERT INTO {database}.`{staging}` SELECT * FROM {database}.`{name}`")
            client.command(f"EXCHANGE TABLES {database}.`{name}` AND {database}.`{staging}`")
            client.command(f"DROP TABLE {database}.`{staging}`")
            rebuilt.append(name)
    finally:
        client.close()
    return rebuilt


# ODS tables dbt built before card-data protection, and a column only such a table has
CLEAR_PII_MODELS = {"ods_customers": "email", "ods_cards": "pan"}


def drop_clear_pii_models(host: str, port: int, user: str, password: str, database: str = "ods") -> list[str]:
    """Drop the ODS tables that still hold clear PII columns (built before schema.sql protected
    card data), so the next dbt run builds them afresh from raw, which no longer holds those
    values. An incremental run cannot: its insert names the table's old columns. Returns them."""
    client = clickhouse_connect.get_client(host=host, port=port, username=user, password=password,
                                           autogenerate_session_id=False)
    dropped = []
    try:
        for table, column in CLEAR_PII_MODELS.items():
            held = client.query("SELECT count() FROM system.columns WHERE database = {d:String} AND table = {t:String} "
                                "AND name = {c:String}", parameters={"d": database, "t": table, "c": column})
            if held.result_rows[0][0]:
                client.command(f"DROP TABLE {database}.`{table}` SYNC")
                dropped.append(f"{database}.{table}")
    finally:
        client.close()
    return dropped
