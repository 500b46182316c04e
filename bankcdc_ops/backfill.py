"""pg_to_ch: bulk copy from PostgreSQL into the ClickHouse raw tables (initial loads, repairs).

Rows go in as snapshot-like versions, exactly as the consumer's contract ranks a Debezium
snapshot read: `_op='r'`, `_version=0`, so any streamed change of the same key outranks
them, and ODS's "highest (_version, _lsn) per key" never lets a backfilled row hide a change
the CDC stream delivered. The other metadata is deterministic: `_lsn=0`, commit time = the
row's `updated_at`, `_topic='pg_to_ch'`, `_partition=-1`, `_offset=<key>`.

Idempotent: only keys the raw table does not hold at all are copied (anything CDC or an
earlier backfill loaded is left alone), and each block carries
`insert_deduplication_token = pg_to_ch:<table>:<first key>-<last key>:<digest of its rows>`,
so a retried insert of the same block is dropped by ClickHouse. A re-run inserts nothing.
PostgreSQL is read in one REPEATABLE READ, read-only transaction (one consistent snapshot).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Mapping

from bankcdc_ops.errors import ParamError
from bankcdc_ops.settings import CLICKHOUSE_RAW_CONN_ID
from bankcdc_ops.tables import SourceTable, source_table

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
TOPIC = "pg_to_ch"
MAX_CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class BackfillRequest:
    table: SourceTable
    start: dt.date | None          # first day copied (created_at, UTC), None: from the beginning
    end: dt.date | None            # last day copied, inclusive; None: up to now
    chunk_rows: int = 50_000

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "BackfillRequest":
        """Validate the DAG params; every error names the param and what it accepts."""
        table = params.get("table")
        if not isinstance(table, str) or not table:
            raise ParamError("param table is required: one of customer, account, card, terminal, transaction")
        start, end = _date_param(params, "start_date"), _date_param(params, "end_date")
        if start and end and start > end:
            raise ParamError(f"param start_date {start} is after end_date {end}: the range is inclusive, "
                             "give start_date <= end_date")
        today = dt.datetime.now(UTC).date()
        if start and start > today:
            raise ParamError(f"param start_date {start} is in the future (today is {today} UTC)")
        chunk = params.get("chunk_rows", 50_000)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK_ROWS:
            raise ParamError(f"param chunk_rows={chunk!r} must be a whole number from 1 to {MAX_CHUNK_ROWS}")
        return cls(source_table(table), start, end, chunk)

    def describe(self) -> str:
        span = f"{self.start or 'beginning'} .. {self.end or 'now'}"
        return f"bank.{self.table.name} -> raw.{self.table.name}, created_at {span} (UTC, inclusive)"


def _date_param(params: Mapping[str, Any], name: str) -> dt.date | None:
    raw = params.get(name)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    try:
        return dt.date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ParamError(f"param {name}={raw!r} is not a date: use YYYY-MM-DD, or leave it empty") from None


@dataclass(frozen=True)
class BackfillResult:
    read: int
    already_loaded: int
    inserted: int
    blocks: int

    def as_dict(self) -> dict[str, int]:
        return {"read": self.read, "already_loaded": self.already_loaded, "inserted": self.inserted,
                "blocks": self.blocks}


def run_backfill(request: BackfillRequest) -> BackfillResult:
    from bankcdc_ops.connections import clickhouse, postgres

    table = request.table
    ch = clickhouse(CLICKHOUSE_RAW_CONN_ID)
    pg = postgres(application="bankcdc-pg_to_ch")
    try:
        columns = _raw_columns(ch, table)
        source_columns = [c for c in columns if not c.startswith("_")]
        insert_columns = [c for c in columns if c != "_loaded_at"]
        pg.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
        where, args = _range_filter(request)
        select_list = ", ".join(_pg_expr(c, columns[c]) for c in source_columns)
        read = present = inserted = blocks = 0
        with pg.cursor(name="pg_to_ch") as cur:
            cur.itersize = request.chunk_rows
            cur.execute(f'SELECT {select_list} FROM {table.pg_relation}{where} ORDER BY "{table.key}"', args)
            key_index = source_columns.index(table.key)
            updated_index = source_columns.index("updated_at")
            while True:
                chunk = cur.fetchmany(request.chunk_rows)
                if not chunk:
                    break
                read += len(chunk)
                loaded = _loaded_keys(ch, table, chunk[0][key_index], chunk[-1][key_index])
                missing = [row for row in chunk if row[key_index] not in loaded]
                present += len(chunk) - len(missing)
                if not missing:
                    continue
                rows = [_raw_row(row, source_columns, insert_columns, key_index, updated_index) for row in missing]
                token = _token(table, missing, key_index)
                ch.insert(f"raw.`{table.name}`", rows, column_names=insert_columns,
                          settings={"insert_deduplication_token": token})
                inserted += len(rows)
                blocks += 1
                log.info("inserted %d rows (keys %s..%s), token %s", len(rows), missing[0][key_index],
                         missing[-1][key_index], token)
        pg.rollback()
    finally:
        pg.close()
        ch.close()
    result = BackfillResult(read, present, inserted, blocks)
    log.info("%s: read %d rows, %d already in ClickHouse, inserted %d in %d blocks",
             request.describe(), read, present, inserted, blocks)
    return result


def _raw_columns(ch: Any, table: SourceTable) -> dict[str, str]:
    rows = ch.query("SELECT name, type FROM system.columns WHERE database = 'raw' AND table = {t:String} "
                    "ORDER BY position", parameters={"t": table.name}).result_rows
    if not rows:
        raise ParamError(f"ClickHouse has no table raw.{table.name}: apply clickhouse_init/ first")
    return dict(rows)


def _pg_expr(column: str, ch_type: str) -> str:
    """A column added by schema drift is Nullable(String) in raw: send PostgreSQL's text of it."""
    return f'"{column}"::text' if ch_type in ("String", "Nullable(String)") else f'"{column}"'


def _range_filter(request: BackfillRequest) -> tuple[str, list[dt.datetime]]:
    clauses, args = [], []
    if request.start:
        clauses.append("created_at >= %s")
        args.append(dt.datetime.combine(request.start, dt.time(), UTC))
    if request.end:
        clauses.append("created_at < %s")
        args.append(dt.datetime.combine(request.end + dt.timedelta(days=1), dt.time(), UTC))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _loaded_keys(ch: Any, table: SourceTable, first: int, last: int) -> set[int]:
    rows = ch.query(f"SELECT DISTINCT `{table.key}` FROM {table.raw_relation} "
                    f"WHERE `{table.key}` BETWEEN {{a:Int64}} AND {{b:Int64}}",
                    parameters={"a": first, "b": last}).result_rows
    return {row[0] for row in rows}


def _raw_row(row: tuple, source_columns: list[str], insert_columns: list[str], key_index: int,
             updated_index: int) -> list[Any]:
    values = dict(zip(source_columns, row))
    committed = row[updated_index]
    meta = {"_op": "r", "_lsn": 0, "_version": 0, "_source_ts": committed, "_emitted_ts": committed,
            "_topic": TOPIC, "_partition": -1, "_offset": row[key_index], "_is_deleted": 0}
    return [meta[c] if c.startswith("_") else values[c] for c in insert_columns]


def _token(table: SourceTable, rows: list[tuple], key_index: int) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(row).encode())
    return f"{TOPIC}:{table.name}:{rows[0][key_index]}-{rows[-1][key_index]}:{digest.hexdigest()[:16]}"
