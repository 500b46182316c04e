"""Just enough SQL lexing to route a request: the FORMAT clause and INSERT data.

ClickHouse parses the statement itself; this only finds where an INSERT's
inline data starts and which output format a query names, skipping quoted
strings, quoted identifiers and comments.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INSERT = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*INSERT\b", re.IGNORECASE | re.DOTALL)


def _tokens(text: str) -> Iterator[tuple[str, int, int, int]]:
    """Yield (word, start, end, paren_depth) for bare words outside quotes and comments."""
    i, n, depth = 0, len(text), 0
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif text.startswith("--", i) or ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif ch == "(":
            depth += 1
            i += 1
        elif ch == ")":
            depth -= 1
            i += 1
        elif ch.isalpha() or ch == "_":
            m = _WORD.match(text, i)
            assert m is not None
            yield m.group(0), m.start(), m.end(), depth
            i = m.end()
        else:
            i += 1


def output_format(query: str, known_formats: Collection[str]) -> str | None:
    """The format named by a top-level ``FORMAT <name>`` clause, if any."""
    found = None
    prev: tuple[str, int] | None = None
    for word, _start, _end, depth in _tokens(query):
        if prev and prev[0].upper() == "FORMAT" and prev[1] == 0 and depth == 0 and word in known_formats:
            found = word
        prev = (word, depth)
    return found


@dataclass(frozen=True)
class InsertSplit:
    """An INSERT whose data follows its statement: ``head`` (no FORMAT), ``fmt``, and where data starts."""

    head: str
    fmt: str
    data_offset: int


def is_insert(query: str) -> bool:
    return _INSERT.match(query) is not None


def split_insert(query: str) -> InsertSplit | None:
    """Split ``INSERT ... FORMAT X <data>`` / ``INSERT ... VALUES <data>``; None for other statements.

    Data starts after the first newline following the format name, or after
    the whitespace if there is no newline (as in clickhouse-server's parser).
    INSERT ... SELECT and INSERT without data clause return None.
    """
    if not is_insert(query):
        return None
    prev: tuple[str, int, int] | None = None
    for word, start, end, depth in _tokens(query):
        upper = word.upper()
        if depth == 0 and upper == "SELECT" or upper == "WITH" and depth == 0:
            return None
        if depth == 0 and upper == "VALUES":
            return InsertSplit(query[:start].rstrip(), "Values", end)
        if prev and prev[0].upper() == "FORMAT" and depth == 0:
            return InsertSplit(query[: prev[1]].rstrip(), word, _data_start(query, end))
        prev = (word, start, end)
    return None


def _data_start(text: str, pos: int) -> int:
    n = len(text)
    i = pos
    while i < n and text[i] in " \t\r\f\v":
        i += 1
    if i < n and text[i] == "\n":
        return i + 1
    while i < n and text[i].isspace():
        i += 1
    return i
