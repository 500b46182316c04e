"""The HTTP server: ClickHouse's HTTP interface in front of one chDB engine.

One thread per client connection (HTTP/1.1 keep-alive); each request runs on
its own chDB connection (or its session's), so queries and inserts from
different clients run in parallel inside the engine.
"""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from chdb_http import encodings
from chdb_http.dictionaries import LocalServer
from chdb_http.engine import Engine
from chdb_http.errors import ClickHouseError, authentication_error
from chdb_http.executor import Execution, content_type, profile_statements
from chdb_http.headers import BadRequest, parse_request_line, read_headers
from chdb_http.native_compression import compress_stream
from chdb_http.request import (
    QueryRequest,
    RawBody,
    credentials,
    decoded_body,
    multipart_fields,
    parse_url_params,
)
from chdb_http.sessions import SessionRegistry
from chdb_http.users import User, UsersConfig

log = logging.getLogger("chdb_http")
OK = b"Ok.\n"
HEALTH_PATHS = ("/ping", "/replicas_status")


class EndpointServer(ThreadingHTTPServer):
    """Listening socket plus the engine, users and sessions every handler shares."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], engine: Engine, users: UsersConfig) -> None:
        self.engine = engine
        self.users = users
        self.display_name = socket.gethostname()
        self.sessions = SessionRegistry(self._open_session)
        self.draining = threading.Event()
        self._idle: dict[Handler, socket.socket] = {}
        self._idle_lock = threading.Lock()
        super().__init__(address, Handler)
        self.local = LocalServer(users.users, self.server_address[1])  # bound: the port is known

    def _open_session(self, user_name: str) -> object:
        user = self.users.get(user_name)
        assert user is not None
        conn = self.engine.connect()
        stmts = profile_statements(user)
        if stmts:
            conn.query("; ".join(stmts), "TabSeparated")
        return conn

    def set_idle(self, handler: Handler, idle: bool) -> bool:
        """Track keep-alive connections waiting for a request; False once draining."""
        with self._idle_lock:
            if idle:
                if self.draining.is_set():
                    return False
                self._idle[handler] = handler.connection
            else:
                self._idle.pop(handler, None)
            return True

    def drain(self) -> None:
        """Stop accepting, wake idle keep-alive connections, wait for in-flight requests."""
        self.draining.set()
        self.shutdown()
        with self._idle_lock:
            idle = list(self._idle.values())
        for sock in idle:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()  # joins handler threads (block_on_close)
        self.sessions.close_all()


class Handler(BaseHTTPRequestHandler):
    """One client connection; ClickHouse's HTTP request semantics."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small responses must not wait for delayed ACKs
    server: EndpointServer
    timeout = 3600  # an idle read never blocks forever; drain wakes idle sockets itself

    def handle_one_request(self) -> None:
        if not self.server.set_idle(self, True):
            self.close_connection = True
            return
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            self.raw_requestline = b""
        finally:
            self.server.set_idle(self, False)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        self._handle()
        self.wfile.flush()
        if self.server.draining.is_set():
            self.close_connection = True

    def parse_request(self) -> bool:
        """BaseHTTPRequestHandler.parse_request for HTTP/1.x, with headers.read_headers."""
        self.command = None
        self.request_version = "HTTP/0.9"
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        try:
            self.command, self.path, version = parse_request_line(self.raw_requestline)
            self.request_version = f"HTTP/{version[0]}.{version[1]}"
            self.headers = read_headers(self.rfile)  # type: ignore[assignment]
        except BadRequest as exc:
            self.send_error(exc.status, str(exc))
            return False
        connection = (self.headers.get("Connection") or "").lower()
        self.close_connection = version < (1, 1) and connection != "keep-alive" or connection == "close"
        if (self.headers.get("Expect") or "").lower() == "100-continue" and version >= (1, 1):
            return self.handle_expect_100()
        return True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _handle logs every request once, with its user, query id and figures

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s", self.address_string(), format % args)

    def version_string(self) -> str:
        return "chdb-http"

    # -- routing ---------------------------------------------------------------

    def _handle(self) -> None:
        started = time.monotonic()
        url = urlsplit(self.path)
        params = parse_url_params(url.query)
        query_id = params.get("query_id") or ""
        user_name = "-"
        body = RawBody(self.rfile, self.headers)
        try:
            if self.command not in ("GET", "POST", "HEAD", "OPTIONS"):
                raise ClickHouseError(48, "NOT_IMPLEMENTED", f"HTTP method {self.command} is not supported")
            if url.path in HEALTH_PATHS or (url.path == "/" and self.command in ("GET", "HEAD") and "query" not in params):
                body.drain()
                self._send_plain(200, OK)
                return
            if self.command == "OPTIONS":
                self._send_plain(204, b"")
                return
            ctype = self.headers.get("Content-Type", "")
            if ctype.startswith("multipart/form-data"):
                params.update(multipart_fields(ctype, b"".join(body)))
            req = QueryRequest.parse(self.command, params, self.headers)
            req.params.setdefault("query_id", query_id or req.query_id)
            query_id = req.params["query_id"]
            user = self._authenticate(params)
            user_name = user.name
            decoded = decoded_body(body, self.headers.get("Content-Encoding", ""), req.flag("decompress"))
            with Execution(self.server.engine, self.server.sessions, user, req, self.server.local) as execution:
                result = execution.run(decoded)
                self._send_result(req, result, query_id, started)
            if not body.drain():
                self.close_connection = True
            log.info(
                "user=%s query_id=%s status=200 rows_read=%d rows_written=%d result_bytes=%d duration_ms=%.1f",
                user_name, query_id, result.stats.read_rows, result.stats.written_rows, result.stats.result_bytes,
                (time.monotonic() - started) * 1000,
            )
        except ClickHouseError as exc:
            if not body.drain():
                self.close_connection = True
            self._send_error(exc, query_id)
            log.info(
                "user=%s query_id=%s status=%d code=%d %s duration_ms=%.1f",
                user_name, query_id, exc.http_status, exc.code, exc.name, (time.monotonic() - started) * 1000,
            )
        except _FailedMidStream as failed:
            exc = failed.error
            log.info(
                "user=%s query_id=%s status=200 code=%d %s (after the result started) duration_ms=%.1f",
                user_name, query_id, exc.code, exc.name, (time.monotonic() - started) * 1000,
            )
        except _ClientGone:
            self.close_connection = True
            log.info("user=%s query_id=%s client closed the connection", user_name, query_id)

    def _authenticate(self, params: dict[str, str]) -> User:
        creds = credentials(self.headers, params)
        user = self.server.users.get(creds.user)
        if user is None or not user.check_password(creds.password):
            required = user is not None and not creds.provided and user.requires_password
            raise authentication_error(creds.user, required=required)
        return user

    # -- responses ---------------------------------------------------------------

    def _common_headers(self, query_id: str) -> None:
        self.send_header("X-ClickHouse-Server-Display-Name", self.server.display_name)
        if query_id:
            self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Timezone", self.server.engine.timezone)
        self.send_header("Keep-Alive", "timeout=10, max=10000")

    def _send_plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, exc: ClickHouseError, query_id: str) -> None:
        body = exc.body(self.server.engine.version).encode()
        self.send_response(exc.http_status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self._common_headers(query_id)
        self.send_header("X-ClickHouse-Exception-Code", str(exc.code))
        self.send_header("Content-Length", str(len(body)))
        if exc.http_status in (401,):
            self.send_header("WWW-Authenticate", 'Basic realm="ClickHouse server HTTP API"')
        self.end_headers()
        self.wfile.write(body)

    def _encoder(self, req: QueryRequest) -> tuple[str | None, encodings.Encoder | None]:
        if req.settings.get("enable_http_compression", "0") in ("0", "", "false"):
            return None, None
        method = encodings.choose_response_encoding(self.headers.get("Accept-Encoding", ""))
        if method is None:
            return None, None
        level = int(req.settings.get("http_zlib_compression_level", "3") or 3)
        return method, encodings.response_encoder(method, level)

    def _send_result(self, req: QueryRequest, result: object, query_id: str, started: float) -> None:
        from chdb_http.executor import Result

        assert isinstance(result, Result)
        chunks: Iterator[bytes] = result.chunks
        if req.flag("compress"):
            chunks = compress_stream(chunks)
        method, encoder = self._encoder(req)
        buffered = req.flag("wait_end_of_query") or result.fmt is None
        if buffered:
            data = bytearray()
            for chunk in chunks:  # an error here still becomes a proper error response
                data += encoder.compress(chunk) if encoder else chunk
            if encoder:
                data += encoder.flush()
            result.stats.elapsed_ns = int((time.monotonic() - started) * 1e9)
            self._start_response(result, query_id, method, len(data), body=bytes(data))
            return
        tag = secrets.token_hex(8)
        first = next(chunks, b"")  # may raise before anything is sent
        second = next(chunks, None)
        if second is None and not encoder:  # the whole result: headers and body in one write
            result.stats.elapsed_ns = int((time.monotonic() - started) * 1e9)
            self._start_response(result, query_id, method, len(first), body=first)
            return
        chunks = _prepend(second, chunks) if second is not None else chunks
        result.stats.elapsed_ns = int((time.monotonic() - started) * 1e9)
        self._start_response(result, query_id, method, None, tag)
        try:
            for chunk in _prepend(first, chunks):
                self._write_chunk(encoder.compress(chunk) if encoder else chunk)
            if encoder:
                self._write_chunk(encoder.flush())
        except ClickHouseError as exc:
            msg = exc.body(self.server.engine.version).rstrip("\n")
            block = f"__exception__\r\n{tag}\r\n{msg}\n{len(msg.encode())} {tag}\r\n__exception__\r\n".encode()
            self._write_chunk(encoder.compress(block) + encoder.flush() if encoder else block)
            self._end_chunks()
            self.close_connection = True
            raise _FailedMidStream(exc) from None
        self._end_chunks()

    def _start_response(
        self, result: object, query_id: str, method: str | None, length: int | None, tag: str | None = None,
        body: bytes = b"",
    ) -> None:
        """Send the status and headers (and ``body``, if given, in the same write)."""
        fmt = result.fmt  # an ExecResult (executor.py); typed object to keep the server import-light
        stats = result.stats
        self.send_response(200)
        self.send_header("Content-Type", content_type(fmt))
        self._common_headers(query_id)
        if fmt is not None:
            self.send_header("X-ClickHouse-Format", fmt)
        if tag:
            self.send_header("X-ClickHouse-Exception-Tag", tag)
        if method:
            self.send_header("Content-Encoding", method)
        self.send_header("X-ClickHouse-Summary", stats.header())
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self._headers_buffer.append(b"\r\n")  # end_headers(), with the body in the same buffer
        if body and self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def _write_chunk(self, data: bytes) -> None:
        if not data:
            return
        try:
            self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
        except OSError as exc:
            raise _ClientGone from exc

    def _end_chunks(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError as exc:
            raise _ClientGone from exc


class _FailedMidStream(Exception):
    """The query failed after its 200 response had started; the error went into the body."""

    def __init__(self, error: ClickHouseError) -> None:
        super().__init__(error.message)
        self.error = error


class _ClientGone(Exception):
    """The client closed the connection while we were answering."""


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
