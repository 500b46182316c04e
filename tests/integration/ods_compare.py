"""ODS (ClickHouse, built by dbt) against PostgreSQL bank.*, row for row on every modeled column.

Reusable by any integration test (dbt, Airflow DAGs, fault tolerance):

    problems = ods_mismatches(pg_dsn, ch_client)          # {} when equal
    assert_ods_matches_pg(pg_dsn, ch_client)               # AssertionError naming keys otherwise

"Live" ODS rows are the ones a reader sees: the table read with FINAL (a duplicate left by two
concurrent runs collapses) and tombstones (`is_deleted`) dropped, so a key hard-deleted in
PostgreSQL must be absent. Tables are compared in key ranges, so memory stays bounded however
large they grow. Columns added to a source table later (schema drift) are not modeled and not
compared; every column of the original schema is.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterator

import psycopg2
from clickhouse_connect.driver.client import Client


@dataclass(frozen=True)
class OdsTable:
    """How one source table is modeled in ODS: key and (PostgreSQL column, ODS column) pairs."""

    source: str
    ods: str
    key: str
    columns: tuple[tuple[str, str], ...]

    @property
    def pg_columns(self) -> list[str]:
        return [pg for pg, _ in self.columns]

    @property
    def ods_columns(self) -> list[str]:
        return [ods for _, ods in self.columns]


def _same(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, name) for name in names)


ODS_TABLES: dict[str, OdsTable] = {
    "customer": OdsTable("customer", "ods.ods_customers", "customer_id", (
        ("customer_id", "customer_id"), ("external_ref", "customer_external_ref"),
        *_same("national_id_token", "full_name_masked", "email_masked", "phone_masked", "national_id_masked",
               "date_of_birth", "city", "country", "kyc_notes", "status", "closed_at", "created_at",
               "updated_at"))),
    "account": OdsTable("account", "ods.ods_accounts", "account_id", _same(
        "account_id", "customer_id", "iban", "currency", "account_type", "status", "closed_at",
        "created_at", "updated_at")),
    "card": OdsTable("card", "ods.ods_cards", "card_id", _same(
        "card_id", "account_id", "pan_token", "pan_last4", "expires_on", "card_type", "status", "closed_at",
        "created_at", "updated_at")),
    "terminal": OdsTable("terminal", "ods.ods_terminals", "terminal_id", _same(
        "terminal_id", "terminal_type", "merchant_name", "mcc", "city", "country", "currency", "description",
        "status", "closed_at", "created_at", "updated_at")),
    "transaction": OdsTable("transaction", "ods.ods_transactions", "transaction_id", (
        *_same("transaction_id", "card_id", "terminal_id", "txn_type", "status", "amount", "currency"),
        ("card_present", "is_card_present"),
        *_same("entry_mode", "decline_reason", "created_at", "approved_at", "declined_at", "reversed_at",
               "updated_at"))),
}


def normalise(value: Any) -> Any:
    """One representation for both sides: naive UTC datetimes, exact decimals, text UUIDs."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _key_bounds(pg_dsn: str, ch: Client, table: OdsTable) -> tuple[int, int] | None:
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT min({table.key}), max({table.key}) FROM bank."{table.source}"')
        pg_lo, pg_hi = cur.fetchone()
    ch_lo, ch_hi, n = ch.query(f"SELECT min({table.key}), max({table.key}), count() FROM {table.ods} "
                               "WHERE NOT is_deleted").result_rows[0]
    bounds = [b for b in (pg_lo, pg_hi) if b is not None] + ([ch_lo, ch_hi] if n else [])
    return (min(bounds), max(bounds)) if bounds else None


def _ranges(lo: int, hi: int, step: int) -> Iterator[tuple[int, int]]:
    start = lo
    while start <= hi:
        yield start, min(start + step - 1, hi)
        start += step


def _pg_rows(pg_dsn: str, table: OdsTable, lo: int, hi: int) -> dict[Any, tuple]:
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT {", ".join(table.pg_columns)} FROM bank."{table.source}" '
                    f"WHERE {table.key} BETWEEN %s AND %s", (lo, hi))
        return {row[0]: tuple(normalise(v) for v in row) for row in cur.fetchall()}


def _changed_after(pg_dsn: str, ch: Client, table: OdsTable, lo: int, hi: int, since: dt.datetime) -> set[Any]:
    """Keys changed after `since`: updated in PostgreSQL, or any change (deletes too) in raw."""
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT {table.key} FROM bank."{table.source}" '
                    f"WHERE {table.key} BETWEEN %s AND %s AND updated_at > %s", (lo, hi, since))
        keys = {row[0] for row in cur.fetchall()}
    rows = ch.query(f"SELECT DISTINCT {table.key} FROM raw.`{table.source}` "
                    f"WHERE {table.key} BETWEEN {{lo:Int64}} AND {{hi:Int64}} AND _source_ts > {{s:DateTime64(6)}}",
                    parameters={"lo": lo, "hi": hi, "s": since}).result_rows
    return keys | {row[0] for row in rows}


def _ods_rows(ch: Client, table: OdsTable, lo: int, hi: int) -> tuple[dict[Any, tuple], list[Any]]:
    """Live rows of the range, and keys that occur more than once even after FINAL."""
    rows = ch.query(f"SELECT {', '.join(table.ods_columns)} FROM {table.ods} FINAL "
                    f"WHERE {table.key} BETWEEN {{lo:Int64}} AND {{hi:Int64}} AND NOT is_deleted",
                    parameters={"lo": lo, "hi": hi}).result_rows
    out: dict[Any, tuple] = {}
    duplicated = []
    for row in rows:
        if row[0] in out:
            duplicated.append(row[0])
        out[row[0]] = tuple(normalise(v) for v in row)
    return out, duplicated


def _diff(table: OdsTable, pg: dict[Any, tuple], ods: dict[Any, tuple], limit: int) -> list[str]:
    problems = [f"missing in ODS: {key}" for key in sorted(set(pg) - set(ods))[:limit]]
    problems += [f"in ODS, not in PostgreSQL (deleted or never there): {key}"
                 for key in sorted(set(ods) - set(pg))[:limit]]
    for key in sorted(set(pg) & set(ods)):
        if len(problems) >= 3 * limit:
            break
        if pg[key] != ods[key]:
            cols = [f"{name}: pg={a!r} ods={b!r}"
                    for name, a, b in zip(table.ods_columns, pg[key], ods[key]) if a != b]
            problems.append(f"differs at {key}: " + "; ".join(cols))
    return problems


def ods_mismatches(pg_dsn: str, ch: Client, tables: list[str] | None = None, limit: int = 5,
                   chunk: int = 200_000, ignore_changed_after: dt.datetime | None = None) -> dict[str, list[str]]:
    """{source table: problems} for each table whose live ODS rows differ from bank.<table>.

    A problem names the key (missing, extra, or which columns differ with both values), at most
    about 3*limit per table. Empty dict: every modeled column of every row is equal.
    `ignore_changed_after` (aware UTC) is for a stack whose filler keeps writing: keys changed
    after that time (shortly before the dbt run started) are left out; None compares every key.
    """
    result: dict[str, list[str]] = {}
    for name in tables or list(ODS_TABLES):
        table = ODS_TABLES[name]
        bounds = _key_bounds(pg_dsn, ch, table)
        if bounds is None:
            continue
        problems: list[str] = []
        for lo, hi in _ranges(*bounds, chunk):
            ods, duplicated = _ods_rows(ch, table, lo, hi)
            pg = _pg_rows(pg_dsn, table, lo, hi)
            if ignore_changed_after is not None:
                for key in _changed_after(pg_dsn, ch, table, lo, hi, ignore_changed_after):
                    pg.pop(key, None)
                    ods.pop(key, None)
            problems += [f"key twice in ODS after FINAL: {key}" for key in duplicated[:limit]]
            problems += _diff(table, pg, ods, limit)
            if len(problems) >= 3 * limit:
                break
        if problems:
            result[name] = problems[: 3 * limit]
    return result


def ods_counts(ch: Client) -> dict[str, int]:
    """Live row count per source table name (for messages and quick checks)."""
    return {name: ch.query(f"SELECT count() FROM {t.ods} FINAL WHERE NOT is_deleted").result_rows[0][0]
            for name, t in ODS_TABLES.items()}


def assert_ods_matches_pg(pg_dsn: str, ch: Client, tables: list[str] | None = None,
                          ignore_changed_after: dt.datetime | None = None) -> None:
    """AssertionError listing example keys per table unless ODS equals PostgreSQL row for row."""
    problems = ods_mismatches(pg_dsn, ch, tables, ignore_changed_after=ignore_changed_after)
    if problems:
        lines = [f"{table}: {p}" for table, found in problems.items() for p in found]
        raise AssertionError("ODS differs from PostgreSQL:\n" + "\n".join(lines))
