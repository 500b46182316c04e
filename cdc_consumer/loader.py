"""Writes change rows and dead letters into ClickHouse's raw layer, idempotently.

Each insert is one block of one Kafka partition's consecutive offsets, built
deterministically from those messages alone, and carries
`insert_deduplication_token = topic:partition:first-last`: a retried insert is
the identical block and ClickHouse drops it. On start-up the consumer resumes
after the highest offset ClickHouse already holds, so a crash between insert
and offset commit loads nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from cdc_consumer.columnar import ColumnarBuilder
from cdc_consumer.config import ConsumerSettings
from cdc_consumer.converters import Converter, converter_for, convert_row
from cdc_consumer.envelope import ChangeEvent
from cdc_consumer.errors import ConfigError, DecodeError, DependencyUnavailable, LoadError

log = logging.getLogger("cdc_consumer.loader")

DEAD_LETTER_TABLE = "_dead_letter"
META_COLUMNS = ("_op", "_lsn", "_version", "_source_ts", "_emitted_ts",
                "_topic", "_partition", "_offset", "_is_deleted")
TABLES_REREAD_SECONDS = 30.0  # an unknown table re-reads system.columns at most this often
RESERVED_COLUMNS = frozenset(META_COLUMNS) | {"_loaded_at"}
# a source column the consumer may add to a raw table: a plain identifier PostgreSQL keeps whole
_NEW_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass
class RawTable:
    name: str
    columns: dict[str, str]                       # column -> ClickHouse type, in table order
    key: list[str]
    converters: dict[str, Converter] = field(default_factory=dict)
    # every column but the server-side load time (DEFAULT now64), so a retried block is identical
    insert_columns: list[str] = field(default_factory=list)
    # their ClickHouse types, passed with each insert so the client does not DESCRIBE the table first
    insert_types: list[str] = field(default_factory=list)
    nullable: frozenset[str] = frozenset()
    # per DateTime64 metadata column, (multiplier, divisor) from Debezium's epoch milliseconds to
    # the column's ticks: clickhouse-connect writes ints as they are, a datetime costs two conversions
    ms_to_ticks: dict[str, tuple[int, int]] = field(default_factory=dict)
    # builds whole blocks column by column; None when a column's type has no columnar plan
    columnar: ColumnarBuilder | None = None
    database: str = "raw"  # the database holding it, named in error messages

    def refresh_converters(self) -> None:
        """Derive the converters, the insert plan and the columnar builder from `columns`; call
        after changing them."""
        self.converters = {c: converter_for(t) for c, t in self.columns.items() if c not in RESERVED_COLUMNS}
        self.insert_columns = [c for c in self.columns if c != "_loaded_at"]
        self.insert_types = [self.columns[c] for c in self.insert_columns]
        self.nullable = frozenset(c for c, t in self.columns.items() if t.startswith("Nullable("))
        self.ms_to_ticks = {c: _ms_to_ticks(self.name, c, self.columns.get(c, "DateTime64(3)"))
                            for c in ("_source_ts", "_emitted_ts")}
        self.columnar = ColumnarBuilder.for_table(self.name, self.columns, RESERVED_COLUMNS)

    def row(self, event: ChangeEvent) -> list[Any]:
        """The event as a row of `insert_columns`, each value converted to its column's type;
        DecodeError when it cannot be loaded into this table."""
        reserved = sorted(RESERVED_COLUMNS.intersection(event.row))
        if reserved:
            raise DecodeError(f"source column {', '.join(reserved)} collides with the raw layer's CDC metadata "
                              f"column of {self.database}.{self.name}: rename it in PostgreSQL")
        values = convert_row(event.row, self.converters)
        meta = {
            "_op": event.op, "_lsn": event.lsn, "_version": event.version,
            "_source_ts": _ticks(event.commit_ts_ms, self.ms_to_ticks["_source_ts"]),
            "_emitted_ts": _ticks(event.emitted_ts_ms, self.ms_to_ticks["_emitted_ts"]),
            "_topic": event.ref.topic, "_partition": event.ref.partition, "_offset": event.ref.offset,
            "_is_deleted": 1 if event.is_delete else 0,
        }
        row = []
        for column in self.insert_columns:
            if column in meta:
                row.append(meta[column])
            elif column in values:
                row.append(values[column])
            elif column in self.nullable:
                row.append(None)
            else:
                raise DecodeError(f"event lacks non-nullable column {column}")
        return row


def _ms_to_ticks(table: str, column: str, ch_type: str) -> tuple[int, int]:
    """(multiplier, divisor) from epoch milliseconds to a DateTime64(p) column's ticks, 10^(p-3)."""
    match = re.match(r"DateTime64\((\d+)", ch_type)
    if not match:
        raise ConfigError(f"raw.{table}.{column} is {ch_type}, not DateTime64(p): recreate it from clickhouse_init/")
    exponent = int(match.group(1)) - 3
    return (10**exponent, 1) if exponent >= 0 else (1, 10**-exponent)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes
    payload: bytes
    error: str


# squash every block the client sends into one before writing (the defaults split at ~1 M rows
# or 256 MiB); a consumer block is at most CDC_BATCH_MAX_ROWS rows
ONE_PART = {"min_insert_block_size_rows": 10**12, "min_insert_block_size_bytes": 10**15,
            "max_insert_block_size": 10**12}


class RawLoader:
    def __init__(self, settings: ConsumerSettings) -> None:
        """Connect and read the raw tables. Raises ConfigError when ClickHouse refuses the settings
        (user, password, database), DependencyUnavailable when it does not answer."""
        self.settings = settings
        self.db = settings.raw_database
        self.client: Client = self._connect()
        self.tables: dict[str, RawTable] = {}
        self.tables_read_at = 0.0
        try:
            self.reload_tables()
        except ClickHouseError as exc:
            raise DependencyUnavailable("clickhouse", f"ClickHouse at {self._address()} failed reading {self.db}'s "
                                                      f"tables: {_first_line(exc)}") from exc
        if DEAD_LETTER_TABLE not in self.tables:
            raise ConfigError(f"database {self.db} has no {DEAD_LETTER_TABLE} table: CDC_RAW_DATABASE={self.db!r} "
                              "is not a raw layer; set it to the database clickhouse_init/ created (default raw)")

    def _address(self) -> str:
        return f"{self.settings.clickhouse_host}:{self.settings.clickhouse_port}"

    def _connect(self) -> Client:
        try:
            return clickhouse_connect.get_client(**self.settings.clickhouse_client(), connect_timeout=10,
                                                 send_receive_timeout=120, autogenerate_session_id=False)
        except ClickHouseError as exc:
            message = (f"cannot use ClickHouse at {self._address()} as {self.settings.clickhouse_user}, database "
                       f"{self.db}: {_first_line(exc)}; {_connect_hint(str(exc))}")
            if _refuses_settings(str(exc)):
                raise ConfigError(message) from exc
            raise DependencyUnavailable("clickhouse", message) from exc

    def reload_tables(self) -> None:
        rows = self.client.query(
            "SELECT table, name, type FROM system.columns WHERE database = {db:String} ORDER BY table, position",
            parameters={"db": self.db}).result_rows
        keys = dict(self.client.query(
            "SELECT name, sorting_key FROM system.tables WHERE database = {db:String}",
            parameters={"db": self.db}).result_rows)
        tables: dict[str, RawTable] = {}
        for table, column, ch_type in rows:
            tables.setdefault(table, RawTable(table, {}, [], database=self.db))
            tables[table].columns[column] = ch_type
        for table in tables.values():
            sorting = [part.strip() for part in (keys.get(table.name) or "").split(",")]
            table.key = [c for c in sorting if c in table.columns and not c.startswith("_")]
            table.refresh_converters()
        self.tables = tables
        self.tables_read_at = time.monotonic()

    def table_for(self, name: str) -> RawTable:
        if name not in self.tables and time.monotonic() - self.tables_read_at >= TABLES_REREAD_SECONDS:
            try:
                self.reload_tables()  # a raw table created while the consumer runs is used without a restart
            except ClickHouseError as exc:
                raise LoadError(f"reading {self.db}'s tables failed: {exc}") from exc
        if name not in self.tables or name == DEAD_LETTER_TABLE:
            raise DecodeError(f"no raw table {self.db}.{name} for source table {name!r}: the consumer loads only "
                              f"tables defined in clickhouse_init/20_raw_tables.sql; add {self.db}.{name} there "
                              "(or stop capturing the table), then replay this dead letter")
        return self.tables[name]

    def add_columns(self, table: RawTable, columns: Sequence[str]) -> None:
        """A source column ClickHouse does not know yet: add it as Nullable(String), text as sent.

        A name that is not a plain identifier is refused (DecodeError: the event is dead-lettered)
        before any DDL runs; ClickHouse failing the ALTER is a LoadError (the batch is retried).
        """
        for column in columns:
            if not _NEW_COLUMN.fullmatch(column):
                raise DecodeError(f"new source column {column!r} of {table.name} is not a plain identifier "
                                  "(letters, digits, _; at most 63): rename it in PostgreSQL, or add it to "
                                  f"{self.db}.{table.name} by hand")
        for column in columns:
            log.warning("new source column %s.%s: adding it to %s.%s as Nullable(String)",
                        table.name, column, self.db, table.name)
            try:
                self.client.command(f"ALTER TABLE {self.db}.`{table.name}` ADD COLUMN IF NOT EXISTS "
                                    f"`{column}` Nullable(String)")
            except ClickHouseError as exc:
                raise LoadError(f"adding column {column} to {self.db}.{table.name} failed: {exc}") from exc
        try:
            self.reload_tables()
        except ClickHouseError as exc:
            raise LoadError(f"reading {self.db}'s columns after adding {', '.join(columns)} failed: {exc}") from exc

    def insert_block(self, table: RawTable, block: list[list[Any]] | pa.Table, token: str) -> None:
        """One consumer block as one part of the raw table: rows in `table.insert_columns` order
        (sent as Native) or an Arrow table of those columns (ColumnarBuilder), the blocks the
        server reads squashed into one, and raw tables have no partitioning
        (clickhouse_init/20_raw_tables.sql), so the block is in ClickHouse whole or not at all."""
        settings = {"insert_deduplication_token": token, **ONE_PART}
        try:
            if isinstance(block, pa.Table):
                self.client.insert_arrow(f"{self.db}.`{table.name}`", block, settings=settings)
            else:
                self.client.insert(f"{self.db}.`{table.name}`", block, column_names=table.insert_columns,
                                   column_type_names=table.insert_types, settings=settings)
        except ClickHouseError as exc:
            raise LoadError(f"insert into {self.db}.{table.name} ({len(block)} rows, {token}) failed: {exc}") from exc

    def insert_dead_letters(self, letters: list[DeadLetter], token: str) -> None:
        now = dt.datetime.now(dt.timezone.utc)
        rows = [[d.topic, d.partition, d.offset, d.key, d.payload, d.error, now] for d in letters]
        try:
            self.client.insert(f"{self.db}.{DEAD_LETTER_TABLE}", rows,
                               column_names=["topic", "partition", "offset", "key", "payload", "error", "failed_at"],
                               settings={"insert_deduplication_token": f"dlq:{token}"})
        except ClickHouseError as exc:
            raise LoadError(f"dead-letter insert ({len(rows)} rows) failed: {exc}") from exc

    def loaded_offset(self, topic: str, partition: int, table: str) -> int | None:
        """Highest offset of this partition the raw table holds; every earlier offset is loaded too.

        Blocks go in per partition and in offset order, each one whole part (insert_block), so the
        maximum is a complete prefix. Dead letters are written before their block and collapse
        on replay (ReplacingMergeTree on topic, partition, offset). Read from the stream_progress
        projection (clickhouse_init/25_raw_stream_progress.sql): one row per part, whatever the
        table's size.
        """
        if table not in self.tables or table == DEAD_LETTER_TABLE:
            return None
        rows = self.client.query(
            f"SELECT max(_offset) FROM {self.db}.`{table}` WHERE _topic = {{t:String}} AND _partition = {{p:Int32}} "
            "GROUP BY _topic, _partition", parameters={"t": topic, "p": partition}).result_rows
        return int(rows[0][0]) if rows else None

    def close(self) -> None:
        self.client.close()


def _ticks(ms: int, scale: tuple[int, int]) -> int:
    return ms * scale[0] // scale[1]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refuses_settings(error: str) -> bool:
    """ClickHouse answered and refused the user, the password or the database: a wrong setting."""
    return any(mark in error for mark in ("AUTHENTICATION_FAILED", "Authentication failed", "UNKNOWN_DATABASE",
                                          "UNKNOWN_USER", "REQUIRED_PASSWORD"))


def _connect_hint(error: str) -> str:
    """Which setting to look at, from ClickHouse's (or the HTTP client's) error."""
    if "AUTHENTICATION_FAILED" in error or "Authentication failed" in error:
        return "check CDC_CLICKHOUSE_USER and CLICKHOUSE_LOADER_PASSWORD"
    if "UNKNOWN_DATABASE" in error:
        return "check CDC_RAW_DATABASE (the database clickhouse_init/ created, default raw)"
    if "CERTIFICATE_VERIFY_FAILED" in error:
        return ("check CLICKHOUSE_CA_CERT (the CA that signed ClickHouse's certificate) and that the certificate "
                "names CLICKHOUSE_HOST")
    if "WRONG_VERSION_NUMBER" in error or "record layer failure" in error:
        return "check CLICKHOUSE_SECURE and CLICKHOUSE_PORT: HTTPS needs ClickHouse's HTTPS port"
    return "check CLICKHOUSE_HOST, CLICKHOUSE_PORT and CLICKHOUSE_SECURE, and that ClickHouse is running"
