"""Helpers for the CDC tests: current state derived from ClickHouse raw, compared with PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import clickhouse_connect
import psycopg2
from clickhouse_connect.driver.client import Client

from bankcdc_ops.dbt_build import run_settings
from bankcdc_stack.environment import KAFKA_USERS

REPO = Path(__file__).resolve().parents[2]
TABLE_KEYS = {
    "customer": "customer_id",
    "account": "account_id",
    "card": "card_id",
    "terminal": "terminal_id",
    "transaction": "transaction_id",
}


def caught_up_run_settings(ch: Client) -> dict[str, str]:
    """dbt run settings for a stack the caller has just seen caught up with PostgreSQL: the run's
    source instant and load bound are ClickHouse's clock now, so it reads every change in raw.
    dbt by hand would read only what was loaded by its start minus var('run_settle_s')."""
    now = ch.query("SELECT now64(6, 'UTC')").result_rows[0][0]
    now = now.replace(tzinfo=dt.timezone.utc) if now.tzinfo is None else now
    return run_settings(now, now, None, test_scope="full")


def pg_sql(pg_dsn: str, statement: str, params: tuple = ()) -> list[tuple]:
    """One statement in its own committed transaction; its rows, if it returns any."""
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


def insert_customer_moved(pg_dsn: str, name: str, kyc_notes: str, city: str, moved_to: str) -> int:
    """A customer with these KYC notes, then an update of the city alone (the notes unchanged)."""
    customer_id = pg_sql(pg_dsn, """INSERT INTO bank.customer (full_name, email, phone, national_id, date_of_birth,
                                        address, city, country, kyc_notes)
                                    VALUES (%s, 'notes@example.org', '+4712345678', 'KN12345', '1970-01-01',
                                            'x', %s, 'NO', %s) RETURNING customer_id""", (name, city, kyc_notes))[0][0]
    pg_sql(pg_dsn, "UPDATE bank.customer SET city = %s, updated_at = now() WHERE customer_id = %s",
           (moved_to, customer_id))
    return customer_id


def kafka_client(env: dict[str, str], user: str = "admin") -> dict[str, str]:
    """librdkafka settings of a client of the test stack's broker, as Kafka principal `user` (the
    tests act as `admin`, the stack's super user, unless they try another principal's rights)."""
    return {"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"], "security.protocol": env["KAFKA_SECURITY_PROTOCOL"],
            "sasl.mechanisms": env["KAFKA_SASL_MECHANISM"], "sasl.username": user,
            "sasl.password": env[KAFKA_USERS[user]]}


def connect_auth(env: dict[str, str]) -> tuple[str, str]:
    """Basic-auth credentials of Kafka Connect's REST API on the test stack."""
    return env["CONNECT_REST_USER"], env["CONNECT_REST_PASSWORD"]


def ch_client(env: dict[str, str], user: str = "default", password_var: str = "CLICKHOUSE_PASSWORD") -> Client:
    return clickhouse_connect.get_client(host=env["CLICKHOUSE_HOST"], port=int(env["CLICKHOUSE_PORT"]),
                                         username=user, password=env[password_var], autogenerate_session_id=False)


def normalise(value: Any) -> Any:
    """One representation for both sides: UTC-naive datetimes, exact decimals, text enums."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _not_captured() -> list[re.Pattern[str]]:
    """The connectors' column.exclude.list patterns: columns that never leave PostgreSQL."""
    patterns = []
    for spec in sorted((REPO / "debezium").glob("*.json")):
        listed = json.loads(spec.read_text())["config"].get("column.exclude.list", "")
        patterns += [re.compile(p.strip()) for p in listed.split(",") if p.strip()]
    return patterns


NOT_CAPTURED = _not_captured()


def pg_columns(pg_dsn: str, table: str) -> list[str]:
    """bank.<table>'s columns that CDC carries (the excluded clear PII columns left out)."""
    names = [name for (name,) in pg_sql(pg_dsn, "SELECT column_name FROM information_schema.columns "
                                                "WHERE table_schema = 'bank' AND table_name = %s "
                                                "ORDER BY ordinal_position", (table,))]
    return [n for n in names if not any(p.fullmatch(f"bank.{table}.{n}") for p in NOT_CAPTURED)]


def pg_state(pg_dsn: str, table: str, columns: list[str]) -> dict[Any, tuple]:
    key = TABLE_KEYS[table]
    rows = pg_sql(pg_dsn, f'SELECT {", ".join(columns)} FROM bank."{table}"')
    index = columns.index(key)
    return {row[index]: tuple(normalise(v) for v in row) for row in rows}


def ch_state(client: Client, table: str, columns: list[str]) -> dict[Any, tuple]:
    """Current state from the changelog: per key the change with the highest (version, lsn), deletes dropped."""
    key = TABLE_KEYS[table]
    quoted = ", ".join(f"`{c}`" for c in columns)
    rows = client.query(
        f"SELECT {quoted}, _is_deleted FROM raw.`{table}` "
        f"ORDER BY `{key}`, _version DESC, _lsn DESC LIMIT 1 BY `{key}`").result_rows
    index = columns.index(key)
    return {row[index]: tuple(normalise(v) for v in row[:-1]) for row in rows if not row[-1]}


def diff_states(pg: dict[Any, tuple], ch: dict[Any, tuple], limit: int = 5) -> list[str]:
    problems = []
    for key in sorted(set(pg) - set(ch))[:limit]:
        problems.append(f"missing in ClickHouse: {key}")
    for key in sorted(set(ch) - set(pg))[:limit]:
        problems.append(f"extra in ClickHouse: {key}")
    for key in sorted(set(pg) & set(ch)):
        if pg[key] != ch[key]:
            problems.append(f"differs at {key}: pg={pg[key]} ch={ch[key]}")
            if len(problems) >= limit * 3:
                break
    return problems


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def assert_raw_equals_pg(pg_dsn: str, ch: Client, tables: tuple[str, ...] = tuple(TABLE_KEYS),
                         timeout: float = 180.0) -> None:
    """Wait until the current state derived from raw equals PostgreSQL, row for row and every
    column, for each table; AssertionError naming example keys if it does not in time."""
    for table in tables:
        columns = pg_columns(pg_dsn, table)
        try:
            wait_for(lambda: not diff_states(pg_state(pg_dsn, table, columns), ch_state(ch, table, columns)),
                     timeout=timeout, interval=1.0, what=f"raw.{table} to equal bank.{table}")
        except AssertionError:
            problems = diff_states(pg_state(pg_dsn, table, columns), ch_state(ch, table, columns))
            raise AssertionError(f"raw.{table} differs from bank.{table}:\n" + "\n".join(problems)) from None
