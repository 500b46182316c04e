"""Block joining per output format, SQL access management errors and request header parsing."""

from __future__ import annotations

import io

import pytest

from chdb_http import access_sql, formats
from chdb_http.errors import ClickHouseError
from chdb_http.headers import BadRequest, parse_request_line, read_headers
from chdb_http.request import QueryRequest


def test_text_header_kept_once() -> None:
    blocks = [b"n\nUInt64\n0\n", b"n\nUInt64\n1\n", b"n\nUInt64\n"]
    assert b"".join(formats.join_blocks(iter(blocks), "TSVWithNamesAndTypes")) == b"n\nUInt64\n0\n1\n"


def test_row_binary_header_kept_once() -> None:
    header = b"\x02\x01a\x02bb\x05UInt8\x06String"
    blocks = [header + b"\x01\x01x", header + b"\x02\x01y"]
    assert b"".join(formats.join_blocks(iter(blocks), "RowBinaryWithNamesAndTypes")) == header + b"\x01\x01x\x02\x01y"


def test_a_block_with_another_header_is_an_error() -> None:
    with pytest.raises(ClickHouseError):
        list(formats.join_blocks(iter([b"a\n1\n", b"b\n2\n"]), "CSVWithNames"))


@pytest.mark.parametrize("fmt, stream", [("JSONEachRow", True), ("Native", True), ("CSVWithNames", True),
                                          ("JSON", False), ("Values", False), ("PrettyCompact", False),
                                          ("Parquet", False)])
def test_which_formats_stream(fmt: str, stream: bool) -> None:
    assert formats.streamable(fmt) is stream


@pytest.mark.parametrize("statement, code", [
    ("create user bob identified by 'x'", 514),
    ("CREATE OR REPLACE ROLE `r`", 514),
    ("ALTER USER loader IDENTIFIED BY 'y'", 495),
    ("DROP USER IF EXISTS loader", 495),
    ("REVOKE SELECT ON raw.* FROM loader", 495),
    ("GRANT SELECT ON raw.* TO stranger", 511),
    ("DROP ROLE r", 511),
    ("DROP QUOTA q", 492),
])
def test_access_management_errors(statement: str, code: int) -> None:
    with pytest.raises(ClickHouseError) as err:
        access_sql.check(statement, {"loader", "default"})
    assert err.value.code == code


def test_other_statements_pass_and_drop_if_exists_of_nothing_is_a_no_op() -> None:
    assert access_sql.check("SELECT user FROM t WHERE role = 'x'", {"loader"}) is False
    assert access_sql.check("CREATE TABLE users (a UInt8) ENGINE = Memory", {"loader"}) is False
    assert access_sql.check("DROP USER IF EXISTS nobody", {"loader"}) is True


def test_headers_win_over_url_parameters() -> None:
    req = QueryRequest.parse("POST", {"database": "a", "default_format": "CSV"},
                             {"X-ClickHouse-Database": "b", "X-ClickHouse-Format": "JSONEachRow"})
    assert (req.database, req.default_format) == ("b", "JSONEachRow")
    assert QueryRequest.parse("POST", {"database": "a"}, {}).database == "a"


def test_header_lines_are_case_insensitive_and_end_at_the_empty_line() -> None:
    rfile = io.BytesIO(b"Host: x\r\nX-ClickHouse-Format: JSON\r\nContent-Length: 3\r\n\r\nabc")
    headers = read_headers(rfile)
    assert headers.get("x-clickhouse-format") == "JSON" and "content-length" in headers
    assert headers.get("Missing", "") == "" and rfile.read() == b"abc"


@pytest.mark.parametrize("line, status", [(b"GET /\r\n", 400), (b"GET / HTTP/2.0\r\n", 505),
                                          (b"GET / HTTP/1.x\r\n", 400)])
def test_bad_request_lines(line: bytes, status: int) -> None:
    with pytest.raises(BadRequest) as err:
        parse_request_line(line)
    assert err.value.status == status


def test_bad_header_line() -> None:
    with pytest.raises(BadRequest):
        read_headers(io.BytesIO(b" folded: x\r\n\r\n"))
    assert parse_request_line(b"POST /?query=1 HTTP/1.1\r\n") == ("POST", "/?query=1", (1, 1))
