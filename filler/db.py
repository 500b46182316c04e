"""Connections with reconnect-and-backoff, and id blocks reserved from the identity sequences."""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable, Iterable, TypeVar

import psycopg2

from filler.config import DbSettings
from filler.errors import ConfigError, DatabaseUnavailable, FillerError, SchemaMissing

log = logging.getLogger("filler")
T = TypeVar("T")

# errors that may mean "the server or the connection went away": retry after reconnecting
TRANSIENT = (psycopg2.OperationalError, psycopg2.InterfaceError)
# of those, the SQLSTATEs of a lost or refused connection (none at all: the client lost it)
_CONNECTION_CLASS = "08"
_SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})  # admin / crash shutdown, cannot connect now

SEQUENCES = {
    "customer": ("bank.customer", "customer_id"),
    "account": ("bank.account", "account_id"),
    "card": ("bank.card", "card_id"),
    "terminal": ("bank.terminal", "terminal_id"),
    "transaction": ('bank."transaction"', "transaction_id"),
    "scenario": ("fraud_truth.scenario", "scenario_id"),
}
# n ids from a sequence: only the bounds when they are consecutive, else every id
_DRAW_IDS = """
    WITH drawn AS (SELECT nextval(%s) AS id FROM generate_series(1, %s))
    SELECT min(id), max(id),
           CASE WHEN max(id) - min(id) + 1 <> count(*) THEN array_agg(id ORDER BY id) END
    FROM drawn"""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def lost_connection(exc: BaseException) -> bool:
    """Whether a TRANSIENT error lost the connection (retry), rather than being PostgreSQL's answer
    to the statement, such as a trigger's 'object not in prerequisite state', which a retry
    would only repeat forever."""
    code = getattr(exc, "pgcode", None)
    return code is None or code.startswith(_CONNECTION_CLASS) or code in _SERVER_GOING_AWAY


def server_refusal(exc: BaseException) -> str:
    """PostgreSQL's message for an error it answered with, and its hint if it gave one."""
    diag = getattr(exc, "diag", None)
    message = getattr(diag, "message_primary", None) or _first_line(exc)
    hint = getattr(diag, "message_hint", None)
    return f"PostgreSQL refused the write ({getattr(exc, 'pgcode', None)}): {message}" + (f"; hint: {hint}" if hint else "")


class Database:
    """One connection that is re-opened with exponential backoff when PostgreSQL goes away."""

    def __init__(self, settings: DbSettings, should_stop: Callable[[], bool] = lambda: False,
                 max_wait: float | None = None, backoff_max: float = 10.0):
        self.settings = settings
        self.should_stop = should_stop
        self.max_wait = max_wait  # None: retry forever (continuous mode)
        self.backoff_max = backoff_max
        self.conn = None
        self.reconnects = 0

    def connect(self) -> None:
        """Connect, retrying with backoff while PostgreSQL does not answer; raises DatabaseUnavailable
        after max_wait or on stop, ConfigError when it refuses the user, password or database."""
        delay, started, attempt = 0.5, time.monotonic(), 0
        while True:
            attempt += 1
            try:
                self.conn = psycopg2.connect(**self.settings.dsn_kwargs())
                with self.conn.cursor() as cur:
                    cur.execute("SELECT to_regclass('bank.\"transaction\"') IS NOT NULL, "
                                "to_regclass('fraud_truth.filler_batch') IS NOT NULL")
                    ok = all(cur.fetchone())
                self.conn.rollback()
                if not ok:
                    raise SchemaMissing(f"database {self.settings.describe()} has no bank/fraud_truth tables: "
                                        "apply schema.sql first")
                if attempt > 1:
                    log.warning("reconnected to PostgreSQL %s after %d attempts", self.settings.describe(), attempt)
                return
            except psycopg2.OperationalError as exc:
                refused = _refused_setting(str(exc))
                if refused:
                    raise ConfigError(f"PostgreSQL {self.settings.describe()} refused the connection: "
                                      f"{_first_line(exc)}; {refused}") from exc
                waited = time.monotonic() - started
                if self.should_stop() or (self.max_wait is not None and waited >= self.max_wait):
                    raise DatabaseUnavailable(f"cannot connect to PostgreSQL {self.settings.describe()}: "
                                              f"{_first_line(exc)}") from exc
                log.warning("PostgreSQL %s unavailable (%s); retrying in %.1fs", self.settings.describe(),
                            _first_line(exc), delay)
                _sleep(delay, self.should_stop)
                delay = min(delay * 2, self.backoff_max)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
            self.conn = None

    def reset(self, exc: BaseException) -> None:
        log.warning("lost the PostgreSQL connection (%s); reconnecting", _first_line(exc))
        self.reconnects += 1
        self.close()
        self.connect()

    def retry(self, fn: Callable[[object], T], on_retry: Callable[[object], T | None] | None = None) -> T:
        """Run fn(conn); on a transient error reconnect and run it again.

        `on_retry(conn)` runs after a reconnect first; if it returns non-None, that is the result
        (used to find out whether a batch committed before the connection dropped).
        """
        retried = False
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.connect()
                if retried and on_retry is not None:
                    done = on_retry(self.conn)
                    if done is not None:
                        return done
                return fn(self.conn)
            except psycopg2.extensions.TransactionRollbackError as exc:
                # deadlock / serialization failure between two writers: nothing was committed
                log.warning("retrying a batch after %s", _first_line(exc))
                retried = True
                self.conn.rollback()
            except TRANSIENT as exc:
                if not lost_connection(exc):
                    raise FillerError(server_refusal(exc)) from exc
                retried = True
                try:
                    if self.conn is not None and not self.conn.closed:
                        self.conn.rollback()
                except psycopg2.Error:
                    pass
                self.reset(exc)


def _refused_setting(error: str) -> str:
    """The setting to fix when PostgreSQL answered and refused the login ('' when it did not answer)."""
    if "password authentication failed" in error or "no password supplied" in error:
        return "check DB_USER and DB_PASSWORD"
    if "does not exist" in error and ("role" in error or "database" in error):
        return "check DB_USER and DB_NAME"
    return ""


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < end:
        time.sleep(min(0.1, max(0.0, end - time.monotonic())))


class IdReserve:
    """Blocks of ids taken with nextval() ahead of generation (so COPY can carry explicit ids).

    Generation never touches the database: `ensure` tops every pool up first, with upper
    bounds of what the next chunk can need.
    """

    def __init__(self, db: Database, block: int = 1000, keep: Callable[[str, int], bool] | None = None,
                 spread: Callable[[str], int] | None = None):
        """`keep(pool, id)` drops ids this filler may not use (a shard keeps its own customers'),
        `spread(pool)` how many ids are drawn per id kept."""
        self.db = db
        self.block = block
        self.keep = keep
        self.spread = spread or (lambda _pool: 1)
        self.pools: dict[str, deque[int]] = {name: deque() for name in SEQUENCES}
        self._seq_names: dict[str, str] = {}

    def _sequence(self, conn, name: str) -> str:
        if name not in self._seq_names:
            table, column = SEQUENCES[name]
            with conn.cursor() as cur:
                cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column))
                self._seq_names[name] = cur.fetchone()[0]
        return self._seq_names[name]

    def _draw(self, cur, name: str, count: int) -> Iterable[int]:
        """`count` fresh ids of pool `name`, ascending, in one round trip (a range when no other
        session drew from the sequence meanwhile)."""
        cur.execute(_DRAW_IDS, (self._sequence(cur.connection, name), count))
        low, high, scattered = cur.fetchone()
        return range(low, high + 1) if scattered is None else scattered

    def ensure(self, needs: dict[str, int]) -> None:
        while missing := {k: n for k, n in needs.items() if len(self.pools[k]) < n}:

            def fetch(conn, missing=missing):
                got = {}
                with conn.cursor() as cur:
                    for name, need in missing.items():
                        count = (max(need - len(self.pools[name]), 0) + self.block) * self.spread(name)
                        ids = self._draw(cur, name, count)
                        got[name] = ids if self.keep is None else [i for i in ids if self.keep(name, i)]
                conn.commit()
                return got

            for name, ids in self.db.retry(fetch).items():
                self.pools[name].extend(ids)

    def take(self, name: str) -> int:
        try:
            return self.pools[name].popleft()
        except IndexError:
            raise RuntimeError(f"id pool {name!r} ran dry: IdReserve.ensure was given too small a bound") from None
