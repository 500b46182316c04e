"""Run one HTTP query on chDB: connection and settings, statement routing, result stream.

Settings follow clickhouse-server's order: the user's profile, then its
``readonly``, then URL settings (so the engine itself refuses a readonly user
changing them), then ``readonly=2`` for GET. A session keeps its connection;
URL settings and ``database`` apply to one request only and are restored after it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chdb_http import engine as eng
from chdb_http import access_sql, dictionaries, formats, grants, sqltext
from chdb_http.dictionaries import LocalServer
from chdb_http.engine import Engine, Stats
from chdb_http.errors import ClickHouseError, readonly_error
from chdb_http.request import QueryRequest
from chdb_http.sessions import Session, SessionRegistry, parse_timeout
from chdb_http.users import User

MAX_QUERY_PEEK = 256 * 1024  # clickhouse-server's default max_query_size

_CONTENT_TYPES = (
    (("TabSeparated", "TSV"), "text/tab-separated-values; charset=UTF-8"),
    (("CSV",), "text/csv; charset=UTF-8; header=absent"),
    (("JSONEachRow", "JSONLines", "NDJSON"), "application/x-ndjson; charset=UTF-8"),
    (("JSON",), "application/json; charset=UTF-8"),
    (("Native", "RowBinary", "Parquet", "Arrow", "ORC", "Avro", "Protobuf", "MsgPack"), "application/octet-stream"),
)


def content_type(fmt: str | None) -> str:
    if fmt is None:
        return "text/plain; charset=UTF-8"
    for prefixes, ctype in _CONTENT_TYPES:
        if fmt.startswith(prefixes):
            if fmt.startswith("CSVWithNames"):
                return "text/csv; charset=UTF-8; header=present"
            return ctype
    return "text/plain; charset=UTF-8"


def profile_statements(user: User) -> list[str]:
    """SET statements that give a new connection the user's profile (readonly last)."""
    stmts = eng.set_statements({k: v for k, v in user.settings.items() if k != "readonly"})
    if user.readonly:
        stmts.append(f"SET readonly = {user.readonly}")
    return stmts


class _AllowedStatements:
    """The last ``size`` (grants, database, statement) keys the grant check allowed."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._keys: OrderedDict[tuple, None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bool:
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return True
            return False

    def put(self, key: tuple) -> None:
        with self._lock:
            self._keys[key] = None
            if len(self._keys) > self.size:
                self._keys.popitem(last=False)


_AUTHORIZED = _AllowedStatements()


@dataclass
class Result:
    """What to answer: the output format (None for statements without a result) and the body."""

    fmt: str | None
    chunks: Iterator[bytes]
    stats: Stats


class Execution:
    """One request's use of the engine; use as a context manager around reading the result."""

    def __init__(self, engine: Engine, sessions: SessionRegistry, user: User, req: QueryRequest,
                 local: LocalServer | None = None) -> None:
        self.engine, self.sessions, self.user, self.req = engine, sessions, user, req
        self.local = local or LocalServer({})  # this endpoint's users and port
        self.conn: Any = None
        self.session: Session | None = None
        self._changed_state = False
        self._pool_key: tuple | None = None  # what an idle connection must have been set up with
        self.started = time.monotonic()

    def __enter__(self) -> Execution:
        req = self.req
        session_id = req.params.get("session_id")
        try:
            if session_id:
                timeout = parse_timeout(req.params.get("session_timeout"))
                self.session = self.sessions.acquire(self.user.name, session_id, timeout, req.flag("session_check"))
                self.conn = self.session.conn
                stmts = self._session_overlay(self.session)
            else:
                stmts = profile_statements(self.user) + eng.set_statements(req.settings)
                if req.method == "GET" and int(req.settings.get("readonly", self.user.readonly) or 0) == 0:
                    stmts.append("SET readonly = 2")
                if req.database:
                    stmts.append(f"USE {eng.quote_ident(req.database)}")
                self._pool_key = (self.user.name, tuple(stmts))
                self.conn = self.engine.take_idle(self._pool_key)
                if self.conn is not None:
                    stmts = []
                else:
                    self.conn = self.engine.connect()
            eng.run_batch(self.conn, stmts)
        except BaseException as exc:
            self.__exit__(type(exc), exc, None)  # a failed overlay (e.g. USE of no database) is undone
            raise
        return self

    def _session_overlay(self, session: Session) -> list[str]:
        """Statements putting this request's URL settings and database on the session's connection."""
        req = self.req
        key = (tuple(sorted(req.settings.items())), req.database)
        if session.overlay == key:
            return []
        self._drop_overlay(session)
        if req.settings or req.database:
            session.restore = eng.snapshot(self.conn, list(req.settings))
        session.overlay = key
        stmts = eng.set_statements(req.settings)
        if req.database:
            stmts.append(f"USE {eng.quote_ident(req.database)}")
            session.database = req.database
        return stmts

    def _drop_overlay(self, session: Session) -> None:
        restore, session.restore, session.overlay, session.database = session.restore, [], None, None
        try:
            eng.run_batch(session.conn, restore)
        except ClickHouseError:
            pass  # e.g. the session became readonly; its settings stay as they are

    def __exit__(self, *exc: object) -> None:
        if self.session is not None:
            if self._changed_state or exc and exc[0] is not None:
                self._drop_overlay(self.session)  # a SET/USE must land on the session's own state
            self.sessions.release(self.session, close=self.req.flag("close_session"))
            self.session = None
        elif self.conn is not None:
            if self._changed_state or exc and exc[0] is not None or self._pool_key is None:
                self.conn.close()  # its state may differ from what the key says
            else:
                self.engine.keep_idle(self._pool_key, self.conn)
        self.conn = None

    # -- statements ---------------------------------------------------------

    def run(self, body: Iterator[bytes]) -> Result:
        """Route the request: streamed INSERT data, or one statement with an optional result."""
        url_query = self.req.url_query
        stats = Stats()
        if url_query:
            prefix = url_query + "\n"
            split = sqltext.split_insert(prefix)
            if split is not None:
                first = next(body, b"")
                tail = prefix[split.data_offset:].encode()
                if first or tail.strip():
                    self._insert(split, itertools.chain([tail, first], body), stats)
                    return Result(None, iter(()), stats)
                return self._statement(url_query, stats)
            rest = b"".join(body)
            return self._statement(url_query + ("\n" + rest.decode() if rest else ""), stats)
        head = bytearray()
        for chunk in body:
            head += chunk
            if len(head) >= MAX_QUERY_PEEK:
                break
        text = head.decode("utf-8", errors="surrogateescape")
        split = sqltext.split_insert(text)
        if split is not None:
            data = text[split.data_offset:].encode("utf-8", errors="surrogateescape")
            self._insert(split, itertools.chain([data], body), stats)
            return Result(None, iter(()), stats)
        if not text.strip():
            raise ClickHouseError(62, "SYNTAX_ERROR", "Empty query")
        rest = b"".join(body)
        return self._statement((bytes(head) + rest).decode(), stats)

    def _check_get_readonly(self, query: str, klass: Any) -> None:
        if self.req.method == "GET" and self.session is not None and klass != "READ_ONLY":
            if int(self.req.settings.get("readonly", self.user.readonly) or 0) == 0 and klass != "CONTROL":
                raise readonly_error(self.user.name, get_method=True)

    def _authorize(self, statement: str) -> None:
        """Check the user's GRANTs (users.xml) before the engine, which runs as its one user, sees it.

        The decision depends only on the grants, the current database and the statement's text, so
        an allowed statement is remembered: a repeated point query costs no EXPLAIN AST.
        """
        if self.user.grants is None:
            return
        database = self._current_database()
        key = (self.user.grants, database, statement)
        if _AUTHORIZED.get(key):
            return
        try:
            ast = self._explain(statement)
        except ClickHouseError as exc:
            if exc.name == "SYNTAX_ERROR":
                return  # the engine answers the statement itself with the same error and runs nothing
            raise
        grants.check(self.user.name, self.user.grants, ast, statement, lambda: database)
        _AUTHORIZED.put(key)

    def _explain(self, statement: str) -> str:
        return str(eng.run(self.conn, "EXPLAIN AST " + statement, "TSVRaw", self.req.query_params).bytes().decode())

    def _current_database(self) -> str:
        if self.session is None:
            return self.req.database or "default"
        if self.session.database is None:
            self.session.database = eng.run(self.conn, "SELECT currentDatabase()", "TSVRaw").bytes().decode().strip()
        return self.session.database

    def _insert(self, split: sqltext.InsertSplit, data: Iterator[bytes], stats: Stats) -> None:
        self._check_get_readonly(split.head, "MUTATING")
        self._authorize(f"{split.head} FORMAT {split.fmt}")
        try:
            eng.stream_insert(self.conn, split.head, split.fmt, data, stats)
        except ClickHouseError as exc:
            raise self._fix(exc) from None

    def _statement(self, query: str, stats: Stats) -> Result:
        klass = None
        if not sqltext.is_insert(query):
            info = self.conn.classify_query(query)
            if info["statement_count"] > 1:
                raise ClickHouseError(62, "SYNTAX_ERROR", "Syntax error (Multi-statements are not allowed): failed at position 1")
            klass = info["query_class"].name
            self._changed_state = klass not in ("READ_ONLY", "MUTATING")
            if self._changed_state and self.session is not None:
                self.session.database = None  # e.g. USE: found out again when next needed
        self._check_get_readonly(query, klass or "MUTATING")
        self._authorize(query)
        query = dictionaries.local_source(query, self.local, self._explain, self._current_database)
        if access_sql.check(query, self.local.users):
            return Result(None, iter(()), stats)
        fmt = sqltext.output_format(query, self.engine.output_formats) or self.req.default_format
        if klass == "READ_ONLY" and formats.streamable(fmt):
            chunks = formats.join_blocks(eng.stream_query(self.conn, query, fmt, self.req.query_params, stats), fmt)
        else:
            chunks = eng.query_once(self.conn, query, fmt, self.req.query_params, stats)
        try:
            first = next(chunks, b"")
        except ClickHouseError as exc:
            raise self._fix(exc) from None
        produces_result = klass in ("READ_ONLY", None) and not sqltext.is_insert(query) or bool(first)
        return Result(fmt if produces_result else None, self._guard(itertools.chain([first], chunks)), stats)

    def _guard(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from chunks
        except ClickHouseError as exc:
            raise self._fix(exc) from None

    def _fix(self, exc: ClickHouseError) -> ClickHouseError:
        """Name the real user in READONLY errors (the engine runs every query as its one user)."""
        if exc.name == "READONLY" and exc.message.startswith("default: "):
            exc.message = f"{self.user.name}: " + exc.message[len("default: "):]
            if self.req.method == "GET" and not self.user.readonly and "readonly" not in self.req.settings:
                exc.message += (
                    ". For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries"
                )
        return exc
