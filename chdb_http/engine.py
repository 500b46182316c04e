"""The one chDB engine of the process and the statements run on its connections.

chDB allows many connections to one data directory inside a process, each
with its own settings, current database and temporary tables, and runs
their queries in parallel (the GIL is released while ClickHouse works). A
request without a session gets a fresh connection; a session keeps one.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chdb import _chdb

from chdb_http.errors import ClickHouseError

_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Connection = Any  # chdb._chdb.connect


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def run(conn: Connection, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None) -> Any:
    """Run one statement, raising ClickHouseError as the engine reported it."""
    try:
        return conn.query(sql, fmt, params=dict(params or {}))
    except RuntimeError as exc:
        raise ClickHouseError.from_engine(str(exc)) from None


def set_statements(settings: Mapping[str, str]) -> list[str]:
    """``SET`` statements for settings given as strings (ClickHouse converts quoted values)."""
    out = []
    for name, value in settings.items():
        if not _SETTING_NAME.match(name):
            raise ClickHouseError(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
        out.append(f"SET {name} = {quote(value)}")
    return out


def run_batch(conn: Connection, statements: list[str]) -> None:
    """Run control statements (SET, USE) in one engine call."""
    if statements:
        run(conn, "; ".join(statements))


def snapshot(conn: Connection, names: list[str]) -> list[str]:
    """Statements that restore the given settings and the current database to their present values."""
    rows = run(
        conn,
        "SELECT name, value, changed FROM system.settings WHERE name IN ("
        + ", ".join(quote(n) for n in names)
        + ") UNION ALL SELECT '', currentDatabase(), 0",
        "JSONEachRow",
    ).bytes()
    restore: list[str] = []
    for line in rows.splitlines():
        row = json.loads(line)
        if row["name"] == "":
            restore.append(f"USE {quote_ident(row['value'])}")
        elif row["name"] != "readonly":
            value = row["value"]
            literal = value if value.startswith("'") and value.endswith("'") and len(value) > 1 else quote(value)
            restore.append(f"SET {row['name']} = {literal if row['changed'] else 'DEFAULT'}")
    return restore


@dataclass
class Stats:
    """What the X-ClickHouse-Summary header reports."""

    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    result_rows: int = 0
    result_bytes: int = 0
    elapsed_ns: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def add_result(self, res: Any) -> None:
        self.read_rows += res.rows_read()
        self.read_bytes += res.bytes_read()
        self.written_rows += res.rows_written()
        self.written_bytes += res.bytes_written()

    def header(self) -> str:
        return json.dumps(
            {
                "read_rows": str(self.read_rows),
                "read_bytes": str(self.read_bytes),
                "written_rows": str(self.written_rows),
                "written_bytes": str(self.written_bytes),
                "total_rows_to_read": str(self.read_rows),
                "result_rows": str(self.result_rows),
                "result_bytes": str(self.result_bytes),
                "elapsed_ns": str(self.elapsed_ns),
            },
            separators=(",", ":"),
        )


def stream_query(conn: Connection, sql: str, fmt: str, params: Mapping[str, str], stats: Stats) -> Iterator[bytes]:
    """Run a query and yield its output chunk by chunk; errors surface on iteration."""
    try:
        handle = conn.send_query(sql, fmt, params=dict(params))
    except RuntimeError as exc:
        if "Streaming query is not supported" in str(exc):  # DESCRIBE, SHOW ...: not streamable in chDB
            yield from query_once(conn, sql, fmt, params, stats)
            return
        raise ClickHouseError.from_engine(str(exc)) from None
    done = False
    try:
        while True:
            try:
                res = conn.streaming_fetch_result(handle)
            except RuntimeError as exc:
                raise ClickHouseError.from_engine(str(exc)) from None
            if res is None:
                break
            if res.has_error():
                raise ClickHouseError.from_engine(res.error_message())
            stats.add_result(res)
            data = res.bytes()
            if not data:
                if res.size() == 0:
                    break
                continue
            stats.result_bytes += len(data)
            yield data
        done = True
    finally:
        if not done:
            try:
                conn.streaming_cancel_query(handle)
            except Exception:  # noqa: BLE001 - best effort on an already failed stream
                pass


def query_once(conn: Connection, sql: str, fmt: str, params: Mapping[str, str], stats: Stats) -> Iterator[bytes]:
    """Run a statement the engine cannot stream (DDL, INSERT SELECT, SET ...) and yield its output."""
    res = run(conn, sql, fmt, params)
    stats.add_result(res)
    data = res.bytes()
    stats.result_bytes += len(data)
    if data:
        yield data


def stream_insert(conn: Connection, head: str, fmt: str, chunks: Iterator[bytes], stats: Stats) -> None:
    """Feed an INSERT's data to the engine chunk by chunk and commit it."""
    try:
        inserter = conn.send_insert(head, fmt)
    except RuntimeError as exc:
        raise ClickHouseError.from_engine(str(exc)) from None
    try:
        for chunk in chunks:
            if chunk:
                conn.insert_append(inserter, chunk)
        res = conn.insert_done(inserter)
    except RuntimeError as exc:
        try:
            conn.insert_cancel(inserter)
        except Exception:  # noqa: BLE001
            pass
        raise ClickHouseError.from_engine(str(exc)) from None
    except BaseException:
        try:
            conn.insert_cancel(inserter)
        except Exception:  # noqa: BLE001
            pass
        raise
    stats.written_rows += res.rows_written()
    stats.written_bytes += res.bytes_written()


class Engine:
    """Owns the chDB data directory for the life of the process, and the idle connections that
    requests without a session reuse (opening one and applying its settings costs as much as a
    point query's own work)."""

    MAX_IDLE = 16

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = str(data_dir)
        self._lock = threading.Lock()
        self._idle: OrderedDict[tuple[Hashable, int], Connection] = OrderedDict()
        self._root: Connection | None = _chdb.connect(self.path)
        info = run(self._root, "SELECT version(), timezone()", "JSONCompactEachRow").bytes()
        self.version, self.timezone = json.loads(info)
        names = run(self._root, "SELECT name FROM system.formats WHERE is_output", "JSONCompactEachRow").bytes()
        self.output_formats = frozenset(json.loads(line)[0] for line in names.splitlines())

    def connect(self) -> Connection:
        """A new connection with default settings and database."""
        with self._lock:
            if self._root is None:
                raise ClickHouseError(1002, "UNKNOWN_EXCEPTION", "Server is shutting down")
            return _chdb.connect(self.path)

    def take_idle(self, key: Hashable) -> Connection | None:
        """An idle connection left by ``keep_idle`` under the same ``key``, or None."""
        with self._lock:
            for slot in self._idle:
                if slot[0] == key:
                    return self._idle.pop(slot)
        return None

    def keep_idle(self, key: Hashable, conn: Connection) -> None:
        """Keep ``conn``, whose settings and database ``key`` describes, for the next request
        with the same key; the least recently kept one is closed beyond MAX_IDLE."""
        with self._lock:
            if self._root is None:
                evicted = [conn]
            else:
                self._idle[(key, id(conn))] = conn
                evicted = [self._idle.popitem(last=False)[1] for _ in range(len(self._idle) - self.MAX_IDLE)]
        for old in evicted:
            old.close()

    def close(self) -> None:
        """Close the engine; call after every connection in use is closed."""
        with self._lock:
            root, self._root = self._root, None
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for conn in idle:
            conn.close()
        if root is not None:
            root.close()
