"""Request-line and header parsing for the HTTP handler, without the email package.

``http.server`` parses headers with ``email.parser``, which costs more than a tenth of a
millisecond per request: a tenth of a point query's whole HTTP overhead. HTTP/1.1 headers need far
less (RFC 9112 section 5): ``name: value`` lines up to an empty line, names case-insensitive.
"""

from __future__ import annotations

from typing import BinaryIO

MAX_LINE = 65536
MAX_HEADERS = 100


class Headers(dict[str, str]):
    """Header values by lower-cased name; ``get`` and ``in`` ignore case, as email.message does.
    A repeated header keeps its first value, as ``Message.get`` returns it."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())


class BadRequest(Exception):
    """The request cannot be parsed; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_headers(rfile: BinaryIO) -> Headers:
    """Header lines up to the empty line that ends them."""
    headers = Headers()
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadRequest(431, "Line too long")
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, sep, value = line.decode("iso-8859-1").partition(":")
        if not sep or not name or name != name.strip() or name[0] in " \t":
            raise BadRequest(400, f"Bad header line {line[:80]!r}")
        headers.setdefault(name.lower(), value.strip())
    raise BadRequest(431, "Too many headers")


def parse_request_line(line: bytes) -> tuple[str, str, tuple[int, int]]:
    """(method, target, (major, minor)) of an HTTP/1.x request line."""
    words = line.decode("iso-8859-1").rstrip("\r\n").split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise BadRequest(400, f"Bad request line {line[:80]!r}")
    method, target, version = words
    major, dot, minor = version[5:].partition(".")
    if not dot or not major.isdigit() or not minor.isdigit() or len(major) > 10 or len(minor) > 10:
        raise BadRequest(400, f"Bad request version {version!r}")
    if int(major) != 1:
        raise BadRequest(505, f"Invalid HTTP version {version}")
    return method, target, (int(major), int(minor))
