"""Dictionaries whose CLICKHOUSE source is this server.

clickhouse-server loads such a dictionary in-process as the user the source names: it checks that
user's password (AUTHENTICATION_FAILED, 516, otherwise) and reads with that user's grants. chDB does
the same against its own user directory, which knows only the engine's internal ``default`` user
without a password, so the endpoint's passwords fail there. The endpoint therefore checks the source
itself when the dictionary is defined (CREATE [OR REPLACE] / ATTACH / REPLACE DICTIONARY):

* the source's ``user`` and ``password`` (default ``default`` and empty, as on the server) against
  the endpoint's users: a wrong one raises clickhouse-server's 516, but when the dictionary is
  created, where clickhouse-server raises it when the dictionary first loads (dictGet, SYSTEM RELOAD);
* that user's grants (grants.py) on what the source reads, ``SELECT * FROM db.table WHERE where``
  or ``query``, and ``invalidate_query``: ACCESS_DENIED, also at CREATE time instead of at load;

and the engine then gets the statement with the source's ``host``, ``port``, ``secure``, ``user`` and
``password`` replaced by ``USER 'default'``: it loads in-process as its own user, the password never
reaches the engine's metadata on disk, and ``SHOW CREATE DICTIONARY`` / ``system.tables`` show
``USER 'default'`` without PASSWORD where clickhouse-server shows the named user and
``PASSWORD '[HIDDEN]'`` (``system.dictionaries.source`` reads ``ClickHouse: db.table`` on both).

A source is this server when it has no ``host``, or a host of this machine (loopback or an address
of a local interface, as the engine itself decides) with no ``port``, the native port the engine
takes for itself (9000, 9440 with ``secure``) or this endpoint's HTTP port. Any other source is left
to the engine: a remote server checks its own passwords.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chdb_http import grants
from chdb_http.errors import ClickHouseError, authentication_error
from chdb_http.users import User

ENGINE_USER = "default"
NATIVE_PORTS = frozenset({9000, 9440})  # the engine's own tcp_port / tcp_port_secure defaults: it loads those in-process
_REPLACED_KEYS = frozenset({"host", "port", "secure", "user", "password"})
_CANDIDATE = re.compile(r"\bDICTIONARY\b.*\bCLICKHOUSE\s*\(", re.IGNORECASE | re.DOTALL)
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<comment>--[^\n]*|\#[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<string>'(?:[^'\\]|\\.|'')*')
    |(?P<quoted>"(?:[^"\\]|\\.|"")*"|`(?:[^`\\]|\\.|``)*`)
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<number>[0-9][0-9A-Za-z_.]*)
    |(?P<punct>.)""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "a": "\a", "v": "\v", "e": "\x1b"}


@dataclass(frozen=True)
class LocalServer:
    """This endpoint as a dictionary source sees it: its users and its HTTP port."""

    users: Mapping[str, User]
    port: int | None = None

    def is_local(self, host: str | None, port: str | None) -> bool:
        if host is not None and not is_local_host(host):
            return False
        if port is None:
            return True
        try:
            number = int(port)
        except ValueError:
            return False  # the engine refuses the port itself
        return number in NATIVE_PORTS or number == self.port


class Unreadable(ClickHouseError):
    """A CLICKHOUSE source that this module cannot read (a value that is not a literal, ...)."""

    def __init__(self, why: str) -> None:
        super().__init__(62, "SYNTAX_ERROR", f"chdb-http cannot read the CLICKHOUSE source of this dictionary: {why}")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int

    def word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words


@dataclass(frozen=True)
class Source:
    """The CLICKHOUSE(...) source of a dictionary definition, as written."""

    dictionary_db: str | None  # None: the current database
    dictionary: str
    values: Mapping[str, str]  # key (lower case) -> value of its first occurrence
    kept: tuple[str, ...]  # the text of every pair whose key is not replaced
    span: tuple[int, int]  # where the pairs are, inside CLICKHOUSE( ... )


def local_source(statement: str, server: LocalServer, explain: Callable[[str], str],
                 current_database: Callable[[], str]) -> str:
    """The statement to run for ``statement``: the same, unless it defines a dictionary whose
    CLICKHOUSE source is ``server``; then its credentials and grants are checked and the source
    rewritten to the engine's own user (module docstring). Raises ClickHouseError 516 or 497.
    ``explain`` returns a query's ``EXPLAIN AST``; a statement that names no CLICKHOUSE source
    costs one regex and no call of either function."""
    if not _CANDIDATE.search(statement):
        return statement
    try:
        source = parse_source(statement)
    except Unreadable:
        if _parses(statement, explain):
            raise
        return statement
    if source is None or not server.is_local(source.values.get("host"), source.values.get("port")):
        return statement
    if not _parses(statement, explain):
        return statement
    user_name = source.values.get("user", "default")
    user = server.users.get(user_name)
    if user is None or not user.check_password(source.values.get("password", "")):
        raise authentication_error(user_name)
    if user.grants is not None:
        for query in _source_queries(source, current_database):
            grants.check(user.name, user.grants, explain(query), query, lambda: "default")
    start, end = source.span
    return statement[:start] + " ".join((f"USER '{ENGINE_USER}'", *source.kept)) + statement[end:]


def _parses(statement: str, explain: Callable[[str], str]) -> bool:
    """Whether the engine parses ``statement``: a syntax error is the engine's to report, in its own words."""
    try:
        explain(statement)
    except ClickHouseError as exc:
        if exc.name == "SYNTAX_ERROR":
            return False
        raise
    return True


def _source_queries(source: Source, current_database: Callable[[], str]) -> list[str]:
    """What the source reads, as the queries clickhouse-server runs for it (columns aside)."""
    values = source.values
    queries = [values[key] for key in ("query", "invalidate_query") if values.get(key)]
    if values.get("table") or values.get("where"):
        db = values.get("db") or source.dictionary_db or current_database()
        table = f"{_quote_ident(db)}.{_quote_ident(values['table'])}" if values.get("table") else "system.one"
        where = f" WHERE ({values['where']})" if values.get("where") else ""
        queries.append(f"SELECT * FROM {table}{where}")
    return queries


def parse_source(statement: str) -> Source | None:
    """The CLICKHOUSE source of a dictionary definition; None for any other statement or source."""
    tokens = [t for t in _tokens(statement) if t.kind not in ("space", "comment")]
    words = [t.text.upper() for t in tokens[:4] if t.kind == "word"]
    if not words or words[0] not in ("CREATE", "ATTACH", "REPLACE"):
        return None
    head = next((i for i, t in enumerate(tokens[:5]) if t.word("DICTIONARY")), None)
    if head is None:
        return None
    i = head + 1
    while i < len(tokens) and tokens[i].word("IF", "NOT", "EXISTS"):
        i += 1
    names = []
    while i < len(tokens) and tokens[i].kind in ("word", "quoted"):
        names.append(_name(tokens[i]))
        i += 1
        if i < len(tokens) and tokens[i].text == "." and len(names) == 1:
            i += 1
        else:
            break
    if not names:
        return None
    depth = 0
    for j in range(i, len(tokens) - 3):
        tok = tokens[j]
        if tok.kind == "punct":
            depth += {"(": 1, ")": -1}.get(tok.text, 0)
        if (depth == 0 and tok.word("SOURCE") and tokens[j + 1].text == "(" and tokens[j + 2].word("CLICKHOUSE")
                and tokens[j + 3].text == "("):
            values, kept, span = _pairs(statement, tokens, j + 4)
            return Source(names[0] if len(names) == 2 else None, names[-1], values, tuple(kept), span)
    return None


def _pairs(statement: str, tokens: list[_Token], i: int) -> tuple[dict[str, str], list[str], tuple[int, int]]:
    start = tokens[i].start if i < len(tokens) else len(statement)
    values: dict[str, str] = {}
    kept: list[str] = []
    while i < len(tokens) and tokens[i].text != ")":
        key_tok = tokens[i]
        if key_tok.kind not in ("word", "quoted"):
            raise Unreadable(f"unexpected {key_tok.text!r}")
        key = _name(key_tok).lower()
        j = _value_end(tokens, i + 1)
        value_toks = tokens[i + 1:j]
        simple = len(value_toks) == 1 and value_toks[0].kind in ("string", "quoted", "word", "number")
        if key in _REPLACED_KEYS | {"db", "table", "query", "where", "invalidate_query", "name"} and not simple:
            raise Unreadable(f"the value of {key} is not a literal")
        if key == "name":
            raise ClickHouseError(48, "NOT_IMPLEMENTED",
                                  "chdb-http: a CLICKHOUSE dictionary source from a named collection is not supported")
        if simple:
            values.setdefault(key, _value(value_toks[0]))
        if key not in _REPLACED_KEYS:
            kept.append(statement[key_tok.start:tokens[j - 1].end])
        i = j
    if i >= len(tokens):
        raise Unreadable("no closing parenthesis")
    return values, kept, (start, tokens[i].start)


def _value_end(tokens: list[_Token], i: int) -> int:
    """Index after the value starting at ``i``: a literal, an identifier, f(...), (...) or [...]."""
    if i >= len(tokens) or tokens[i].text in (")", "]"):
        raise Unreadable("a key without a value")
    if tokens[i].text == "-" and i + 1 < len(tokens):
        return i + 2
    j = i + 1 if tokens[i].kind == "word" and i + 1 < len(tokens) and tokens[i + 1].text == "(" else i
    if tokens[j].text not in ("(", "["):
        return i + 1
    depth = 0
    for k in range(j, len(tokens)):
        depth += tokens[k].text in ("(", "[") and tokens[k].kind == "punct"
        depth -= tokens[k].text in (")", "]") and tokens[k].kind == "punct"
        if depth == 0:
            return k + 1
    raise Unreadable("no closing parenthesis")


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.lastgroup or "punct", m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _unescape(body: str, quote: str) -> str:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", body[i + 2:i + 4]):
                out.append(chr(int(body[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        elif ch == quote and body[i + 1:i + 2] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _name(tok: _Token) -> str:
    return _unescape(tok.text[1:-1], tok.text[0]) if tok.kind == "quoted" else tok.text


def _value(tok: _Token) -> str:
    return _unescape(tok.text[1:-1], "'") if tok.kind == "string" else _name(tok)


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def is_local_host(host: str) -> bool:
    """Whether ``host`` is this machine: a loopback or unspecified address, or one a socket can bind."""
    name = host.strip().removeprefix("[").removesuffix("]")
    if name.lower() in ("", "localhost"):
        return True
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False  # the engine cannot resolve it either
    for family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address.is_loopback or address.is_unspecified:
            return True
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((sockaddr[0], 0, *sockaddr[2:]))
            return True
        except OSError:
            continue
    return False
