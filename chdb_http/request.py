"""What an HTTP request asks for: parameters, settings, credentials and body stream."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import BinaryIO
from urllib.parse import parse_qsl

from chdb_http import encodings
from chdb_http.errors import ClickHouseError
from chdb_http.native_compression import BlockDecoder

# Parameters the HTTP interface consumes itself (HTTPHandler's reserved names); everything
# else that is not param_<name> is a ClickHouse setting.
RESERVED = frozenset(
    {
        "query", "database", "default_format", "user", "password", "quota_key", "query_id", "stacktrace", "role",
        "buffer_size", "wait_end_of_query", "session_id", "session_timeout", "session_check", "close_session",
        "client_protocol_version", "compress", "decompress",
    }
)
CHUNK = 1 << 20


@dataclass
class QueryRequest:
    """The query-relevant part of one HTTP request."""

    method: str
    params: dict[str, str]
    settings: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    header_database: str = ""
    header_format: str = ""

    @classmethod
    def parse(cls, method: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None) -> QueryRequest:
        """The request's parts; the X-ClickHouse-Database and X-ClickHouse-Format headers win over
        the ``database`` and ``default_format`` parameters, as in clickhouse-server's HTTPHandler."""
        headers = headers or {}
        req = cls(method, dict(params), header_database=headers.get("X-ClickHouse-Database", ""),
                  header_format=headers.get("X-ClickHouse-Format", ""))
        for name, value in params.items():
            if name.startswith("param_"):
                req.query_params[name[len("param_"):]] = value
            elif name not in RESERVED:
                req.settings[name] = value
        return req

    def flag(self, name: str) -> bool:
        return self.params.get(name, "0") not in ("", "0", "false", "False")

    @property
    def url_query(self) -> str:
        return self.params.get("query", "")

    @property
    def database(self) -> str | None:
        return self.header_database or self.params.get("database") or None

    @property
    def default_format(self) -> str:
        return (self.header_format or self.params.get("default_format") or self.settings.get("default_format")
                or "TabSeparated")

    @property
    def query_id(self) -> str:
        return self.params.get("query_id") or str(uuid.uuid4())


def parse_url_params(query_string: str) -> dict[str, str]:
    """URL parameters; the last value of a repeated name wins."""
    return dict(parse_qsl(query_string, keep_blank_values=True))


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    provided: bool


def credentials(headers: Mapping[str, str], params: Mapping[str, str]) -> Credentials:
    """Credentials from X-ClickHouse-User/-Key, Basic auth or user/password parameters (mixing is refused)."""
    h_user, h_key = headers.get("X-ClickHouse-User", ""), headers.get("X-ClickHouse-Key", "")
    auth = headers.get("Authorization", "")
    in_params = "user" in params or "password" in params
    if h_user or h_key:
        if auth:
            raise _mixed("X-ClickHouse HTTP headers and Authorization HTTP header")
        if in_params:
            raise _mixed("X-ClickHouse HTTP headers and authentication via parameters")
        return Credentials(h_user or "default", h_key, True)
    if auth:
        if in_params:
            raise _mixed("Authorization HTTP header and authentication via parameters")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "basic":
            raise ClickHouseError(
                516, "AUTHENTICATION_FAILED", f"Invalid authentication: '{scheme}' HTTP Authorization scheme is not supported"
            )
        try:
            user, _, password = base64.b64decode(token.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ClickHouseError(516, "AUTHENTICATION_FAILED", "Invalid authentication: bad Basic credentials") from None
        return Credentials(user or "default", password, True)
    if in_params:
        return Credentials(params.get("user") or "default", params.get("password", ""), True)
    return Credentials("default", "", False)


def _mixed(what: str) -> ClickHouseError:
    return ClickHouseError(516, "AUTHENTICATION_FAILED", f"Invalid authentication: it is not allowed to use {what} simultaneously")


class RawBody:
    """The request body as sent (Content-Length or chunked transfer encoding), read lazily."""

    def __init__(self, rfile: BinaryIO, headers: Mapping[str, str]) -> None:
        self._rfile = rfile
        self.chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self.remaining = 0 if self.chunked else int(headers.get("Content-Length") or 0)
        self.done = not self.chunked and self.remaining == 0
        self._iter = self._chunks()

    def __iter__(self) -> Iterator[bytes]:
        return self._iter

    def __next__(self) -> bytes:
        return next(self._iter)

    def _chunks(self) -> Iterator[bytes]:
        rfile = self._rfile
        if self.chunked:
            while True:
                line = rfile.readline(65537)
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                except ValueError:
                    raise ClickHouseError(36, "BAD_ARGUMENTS", "Malformed chunked request body") from None
                if size == 0:
                    while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    self.done = True
                    return
                while size:
                    data = rfile.read(min(size, CHUNK))
                    if not data:
                        raise ClickHouseError(32, "ATTEMPT_TO_READ_AFTER_EOF", "Unexpected end of chunked request body")
                    size -= len(data)
                    yield data
                rfile.readline(3)
        while self.remaining > 0:
            data = rfile.read(min(self.remaining, CHUNK))
            if not data:
                raise ClickHouseError(32, "ATTEMPT_TO_READ_AFTER_EOF", "Unexpected end of request body")
            self.remaining -= len(data)
            yield data
        self.done = True

    def drain(self, limit: int = 64 << 20) -> bool:
        """Read and drop what is left (up to ``limit`` bytes); True if the connection can be reused."""
        if self.done:
            return True
        if not self.chunked and self.remaining > limit:
            return False
        try:
            for _ in self._iter:
                pass
        except (ClickHouseError, OSError, ValueError):
            return False
        return self.done


def decoded_body(raw: Iterator[bytes], content_encoding: str, native_compressed: bool) -> Iterator[bytes]:
    """Undo Content-Encoding, then ClickHouse's compressed blocks when ``decompress=1``."""
    decoder = encodings.request_decoder(content_encoding)
    blocks = BlockDecoder() if native_compressed else None
    for chunk in raw:
        if decoder is not None:
            try:
                chunk = decoder.decompress(chunk)
            except Exception as exc:  # noqa: BLE001 - any codec failure is corrupt input
                raise ClickHouseError(
                    354, "ZLIB_INFLATE_FAILED" if content_encoding in ("gzip", "deflate") else "CANNOT_DECOMPRESS",
                    f"inflate failed: {exc}",
                ) from None
        if blocks is not None:
            chunk = blocks.feed(chunk)
        if chunk:
            yield chunk
    if blocks is not None:
        blocks.finish()


def multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    """Plain fields of a multipart/form-data body (query and param_* sent as a form)."""
    msg: Message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, str] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_param("filename", header="content-disposition") is not None:
            raise ClickHouseError(48, "NOT_IMPLEMENTED", "External data (file parts of a multipart request) is not supported by chdb-http")
        if name:
            payload = part.get_payload(decode=True) or b""
            fields[str(name)] = payload.decode()
    return fields
