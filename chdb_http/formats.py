"""Output formats whose result may be streamed block by block, and how the blocks join.

chDB's streaming API formats every block as a complete result: each carries its own header
(names, types) or document wrapper. clickhouse-server writes one header and one document per
query. A format whose blocks concatenate streams as is; one with a per-block header streams with
the header kept only once; every other format (JSON, XML, Pretty*, Values, Parquet, Arrow, ...)
is formatted by the engine in one piece, as the server writes it.
"""

from __future__ import annotations

from collections.abc import Iterator

from chdb_http.errors import ClickHouseError

CONCATENABLE = frozenset(
    {
        "TabSeparated", "TSV", "TabSeparatedRaw", "TSVRaw", "Raw", "CSV", "JSONEachRow", "JSONLines", "NDJSON",
        "JSONStringsEachRow", "JSONCompactEachRow", "JSONCompactStringsEachRow", "Native", "RowBinary",
        "RawBLOB", "LineAsString",
    }
)
# text formats with a header of N lines written before every block
TEXT_HEADER_LINES = {
    **dict.fromkeys(
        ("TabSeparatedWithNames", "TSVWithNames", "TabSeparatedRawWithNames", "TSVRawWithNames", "RawWithNames",
         "CSVWithNames", "JSONCompactEachRowWithNames", "JSONCompactStringsEachRowWithNames"), 1),
    **dict.fromkeys(
        ("TabSeparatedWithNamesAndTypes", "TSVWithNamesAndTypes", "TabSeparatedRawWithNamesAndTypes",
         "TSVRawWithNamesAndTypes", "RawWithNamesAndTypes", "CSVWithNamesAndTypes",
         "JSONCompactEachRowWithNamesAndTypes", "JSONCompactStringsEachRowWithNamesAndTypes"), 2),
}
# RowBinary formats: a column count, then that many names (and types)
BINARY_HEADER_LISTS = {"RowBinaryWithNames": 1, "RowBinaryWithNamesAndTypes": 2}


def streamable(fmt: str) -> bool:
    return fmt in CONCATENABLE or fmt in TEXT_HEADER_LINES or fmt in BINARY_HEADER_LISTS


def join_blocks(chunks: Iterator[bytes], fmt: str) -> Iterator[bytes]:
    """The engine's per-block output as one result: a repeated header is dropped after the first."""
    if fmt in CONCATENABLE:
        yield from chunks
        return
    header: bytes | None = None
    for chunk in chunks:
        if header is None:
            header = chunk[:header_length(chunk, fmt)]
            yield chunk
        elif chunk.startswith(header):
            if len(chunk) > len(header):
                yield chunk[len(header):]
        else:
            raise ClickHouseError(1001, "STD_EXCEPTION", f"chdb-http: a block of the {fmt} result has another header")


def header_length(chunk: bytes, fmt: str) -> int:
    """Length of the header at the start of one block's output."""
    if fmt in TEXT_HEADER_LINES:
        end = 0
        for _ in range(TEXT_HEADER_LINES[fmt]):
            end = chunk.index(b"\n", end) + 1
        return end
    count, pos = _varint(chunk, 0)
    for _ in range(count * BINARY_HEADER_LISTS[fmt]):
        size, pos = _varint(chunk, pos)
        pos += size
    return pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
