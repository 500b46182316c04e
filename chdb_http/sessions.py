"""HTTP sessions (``session_id``): a chDB connection kept between requests.

Like clickhouse-server, a session belongs to one user, serves one request at
a time (SESSION_IS_LOCKED otherwise), expires ``session_timeout`` seconds
after its last request, and keeps temporary tables and SET settings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chdb_http.engine import Connection
from chdb_http.errors import ClickHouseError

log = logging.getLogger("chdb_http.sessions")
DEFAULT_TIMEOUT = 60
MAX_TIMEOUT = 3600
# A request's session is released just after its response is sent, so a client that fires its
# next request on the same session at once can arrive first; it waits this long for the release
# before SESSION_IS_LOCKED (a genuinely concurrent request still gets the error).
LOCKED_WAIT_S = 2.0


def parse_timeout(value: str | None) -> int:
    """session_timeout as clickhouse-server validates it."""
    if value is None:
        return DEFAULT_TIMEOUT
    if not value.isdigit():
        raise ClickHouseError(374, "INVALID_SESSION_TIMEOUT", f"Invalid session timeout: '{value}'")
    if int(value) > MAX_TIMEOUT:
        raise ClickHouseError(
            374,
            "INVALID_SESSION_TIMEOUT",
            f"Session timeout '{value}' is larger than max_session_timeout: {MAX_TIMEOUT}. "
            "Maximum session timeout could be modified in configuration file.",
        )
    return int(value)


@dataclass(eq=False)
class Session:
    """One named session and its connection."""

    user: str
    session_id: str
    conn: Connection
    timeout: int
    last_used: float = field(default_factory=time.monotonic)
    busy: bool = False
    # URL settings and database of the last request, left in place while the next request asks
    # for the same ones (reading system.settings to restore them costs more than most queries).
    overlay: tuple[object, ...] | None = None
    restore: list[str] = field(default_factory=list)
    # the connection's current database while known; None after anything that may have changed it
    database: str | None = "default"


class SessionRegistry:
    """Sessions by (user, session_id), with a reaper closing expired ones."""

    def __init__(self, open_connection: Callable[[str], Connection]) -> None:
        self._open = open_connection
        self._sessions: dict[tuple[str, str], Session] = {}
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="session-reaper", daemon=True)
        self._reaper.start()

    def acquire(self, user: str, session_id: str, timeout: int, check: bool) -> Session:
        """Take the session for one request, creating it unless ``check``."""
        key = (user, session_id)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if check:
                    raise ClickHouseError(372, "SESSION_NOT_FOUND", f"Session {session_id} not found")
                session = Session(user, session_id, self._open(user), timeout)
                self._sessions[key] = session
            deadline = time.monotonic() + LOCKED_WAIT_S
            while session.busy and time.monotonic() < deadline:
                self._lock.wait(deadline - time.monotonic())
                if self._sessions.get(key) is not session:  # closed meanwhile (close_session=1)
                    if check:
                        raise ClickHouseError(372, "SESSION_NOT_FOUND", f"Session {session_id} not found")
                    session = Session(user, session_id, self._open(user), timeout)
                    self._sessions[key] = session
            if session.busy:
                raise ClickHouseError(373, "SESSION_IS_LOCKED", f"Session {session_id} is locked by a concurrent client")
            session.busy = True
            session.timeout = timeout
            return session

    def release(self, session: Session, close: bool = False) -> None:
        """Return the session after its request; ``close`` ends it (close_session=1)."""
        with self._lock:
            session.busy = False
            session.last_used = time.monotonic()
            self._lock.notify_all()
            if close:
                self._sessions.pop((session.user, session.session_id), None)
        if close:
            session.conn.close()

    def _reap(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            with self._lock:
                expired = [
                    k for k, s in self._sessions.items() if not s.busy and now - s.last_used > s.timeout
                ]
                dropped = [self._sessions.pop(k) for k in expired]
            for session in dropped:
                log.debug("session %s of %s expired", session.session_id, session.user)
                session.conn.close()

    def close_all(self) -> None:
        """Close every session (at shutdown, after in-flight requests drained)."""
        self._stop.set()
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.conn.close()

    def __len__(self) -> int:
        return len(self._sessions)
