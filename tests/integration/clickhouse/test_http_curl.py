"""The HTTP interface through curl: methods, bodies, encodings, formats, headers and errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import urllib.parse
import zlib

import brotli
import lz4.frame
import pytest
import zstandard

from .conftest import Endpoint

pytestmark = pytest.mark.integration


def curl(ep: Endpoint, *args: str, user: str = "default", data: bytes | None = None, path: str = "/") -> tuple[int, dict[str, str], bytes]:
    """Run curl; return (status, lower-cased headers of the final response, raw body).

    ``-G --data-urlencode k=v`` pairs become the URL's query string, so a body can go with them.
    """
    rest, url_params, it = [], [], iter(args)
    for arg in it:
        if arg == "-G":
            continue
        if arg == "--data-urlencode" and "-G" in args:
            url_params.append(next(it))
        else:
            rest.append(arg)
    cmd = ["curl", "-sS", "-D", "-", "-o", "-", "-u", f"{user}:{ep.passwords[user]}", *rest]
    if data is not None:
        cmd += ["--data-binary", "@-"]
    query = "&".join(k + "=" + urllib.parse.quote(v, safe="") for k, _, v in (p.partition("=") for p in url_params))
    cmd.append(ep.url + path + ("?" + query if query else ""))
    out = subprocess.run(cmd, input=data, capture_output=True, check=True, timeout=60).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_health_endpoints(ch_endpoint: Endpoint) -> None:
    for path in ("/ping", "/replicas_status", "/"):
        out = subprocess.run(["curl", "-sS", ch_endpoint.url + path], capture_output=True, check=True).stdout
        assert out == b"Ok.\n"


def test_get_and_post_with_headers(ch_endpoint: Endpoint) -> None:
    status, headers, body = curl(ch_endpoint, "-G", "--data-urlencode", "query=SELECT 1 + 1 AS two", "--data-urlencode", "query_id=q-get-1")
    assert (status, body) == (200, b"2\n")
    assert headers["x-clickhouse-query-id"] == "q-get-1"
    assert headers["x-clickhouse-format"] == "TabSeparated"
    assert headers["x-clickhouse-timezone"] and headers["x-clickhouse-server-display-name"]
    assert set(json.loads(headers["x-clickhouse-summary"])) >= {"read_rows", "written_rows", "elapsed_ns"}
    status, headers, body = curl(ch_endpoint, data=b"SELECT number FROM numbers(3) FORMAT JSONEachRow")
    assert status == 200 and headers["x-clickhouse-format"] == "JSONEachRow"
    assert [json.loads(x)["number"] for x in body.splitlines()] == ["0", "1", "2"] or [json.loads(x)["number"] for x in body.splitlines()] == [0, 1, 2]


def test_default_format_database_and_params(ch_endpoint: Endpoint, database: str) -> None:
    status, headers, body = curl(
        ch_endpoint, "-G", "--data-urlencode", "query=SELECT currentDatabase() AS db, {n:UInt8} * 2 AS n",
        "--data-urlencode", f"database={database}", "--data-urlencode", "default_format=JSONCompact",
        "--data-urlencode", "param_n=21",
    )
    assert status == 200 and headers["x-clickhouse-format"] == "JSONCompact"
    assert json.loads(body)["data"] == [[database, 42]]


def test_get_implies_readonly(ch_endpoint: Endpoint, database: str) -> None:
    status, headers, body = curl(ch_endpoint, "-G", "--data-urlencode", f"query=CREATE TABLE {database}.g (a UInt8) ENGINE = Memory")
    assert headers["x-clickhouse-exception-code"] == "164" and b"READONLY" in body and b"method GET implies readonly" in body


@pytest.mark.parametrize("fmt,payload", [
    ("CSV", b"1,\"a\"\n2,\"b\"\n"),
    ("TabSeparated", b"1\ta\n2\tb\n"),
    ("JSONEachRow", b'{"id":1,"s":"a"}\n{"id":2,"s":"b"}\n'),
])
def test_insert_formats_with_query_in_url(ch_endpoint: Endpoint, database: str, fmt: str, payload: bytes) -> None:
    curl(ch_endpoint, data=f"CREATE TABLE {database}.t (id UInt32, s String) ENGINE = MergeTree ORDER BY id".encode())
    status, headers, body = curl(ch_endpoint, "-G", "--data-urlencode", f"query=INSERT INTO {database}.t FORMAT {fmt}", "-X", "POST", data=payload)
    assert status == 200, body
    assert json.loads(headers["x-clickhouse-summary"])["written_rows"] == "2"
    _, _, body = curl(ch_endpoint, data=f"SELECT id, s FROM {database}.t ORDER BY id FORMAT CSV".encode())
    assert body == b'1,"a"\n2,"b"\n'


def test_insert_inline_data_in_body(ch_endpoint: Endpoint, database: str) -> None:
    curl(ch_endpoint, data=f"CREATE TABLE {database}.t (id UInt32) ENGINE = MergeTree ORDER BY id".encode())
    assert curl(ch_endpoint, data=f"INSERT INTO {database}.t FORMAT CSV\n1\n2\n3\n".encode())[0] == 200
    assert curl(ch_endpoint, data=f"INSERT INTO {database}.t VALUES (4), (5)".encode())[0] == 200
    assert curl(ch_endpoint, data=f"SELECT sum(id) FROM {database}.t".encode())[2] == b"15\n"


@pytest.mark.parametrize("encoding,encode", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("br", brotli.compress),
    ("zstd", lambda b: zstandard.ZstdCompressor().compress(b)),
    ("lz4", lz4.frame.compress),
])
def test_compressed_request_body(ch_endpoint: Endpoint, database: str, encoding: str, encode) -> None:
    curl(ch_endpoint, data=f"CREATE TABLE {database}.t (id UInt32) ENGINE = MergeTree ORDER BY id".encode())
    rows = b"".join(b"%d\n" % i for i in range(1000))
    status, _, body = curl(
        ch_endpoint, "-G", "--data-urlencode", f"query=INSERT INTO {database}.t FORMAT TabSeparated", "-X", "POST",
        "-H", f"Content-Encoding: {encoding}", data=encode(rows),
    )
    assert status == 200, body
    assert curl(ch_endpoint, "-H", "Content-Encoding: gzip", data=gzip.compress(f"SELECT count(), sum(id) FROM {database}.t".encode()))[2] == b"1000\t499500\n"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "lz4"])
def test_compressed_response(ch_endpoint: Endpoint, encoding: str) -> None:
    status, headers, body = curl(
        ch_endpoint, "-H", f"Accept-Encoding: {encoding}", "-G", "--data-urlencode", "query=SELECT number FROM numbers(100000)",
        "--data-urlencode", "enable_http_compression=1",
    )
    assert status == 200 and headers["content-encoding"] == encoding
    decode = {"gzip": gzip.decompress, "deflate": zlib.decompress, "br": brotli.decompress,
              "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b), "lz4": lz4.frame.decompress}[encoding]
    assert decode(body) == b"".join(b"%d\n" % i for i in range(100000))
    status, headers, body = curl(ch_endpoint, "-H", "Accept-Encoding: gzip", data=b"SELECT 1")  # not asked for
    assert "content-encoding" not in headers and body == b"1\n"


def test_native_compression_both_ways(ch_endpoint: Endpoint, database: str) -> None:
    from chdb_http.native_compression import compress_block, decompress_all

    curl(ch_endpoint, data=f"CREATE TABLE {database}.t (id UInt32) ENGINE = MergeTree ORDER BY id".encode())
    body = compress_block(b"".join(b"%d\n" % i for i in range(100)))
    status, _, out = curl(ch_endpoint, "-G", "--data-urlencode", f"query=INSERT INTO {database}.t FORMAT TSV", "--data-urlencode", "decompress=1", "-X", "POST", data=body)
    assert status == 200, out
    status, _, out = curl(ch_endpoint, "-G", "--data-urlencode", f"query=SELECT sum(id) FROM {database}.t", "--data-urlencode", "compress=1")
    assert status == 200 and decompress_all(out) == b"4950\n"


def test_credentials_by_header_and_params(ch_endpoint: Endpoint) -> None:
    pw = ch_endpoint.passwords["loader"]
    out = subprocess.run(
        ["curl", "-sS", "-H", "X-ClickHouse-User: loader", "-H", f"X-ClickHouse-Key: {pw}", "--data-binary", "SELECT 7", ch_endpoint.url],
        capture_output=True, check=True,
    ).stdout
    assert out == b"7\n"
    out = subprocess.run(
        ["curl", "-sS", "-G", "--data-urlencode", "user=loader", "--data-urlencode", f"password={pw}", "--data-urlencode", "query=SELECT 8", ch_endpoint.url],
        capture_output=True, check=True,
    ).stdout
    assert out == b"8\n"


# -- errors as clickhouse-server answers them ------------------------------------------------------


def _assert_error(status: int, headers: dict[str, str], body: bytes, want_status: int, code: int, name: str) -> None:
    assert status == want_status, body
    assert headers["x-clickhouse-exception-code"] == str(code)
    text = body.decode()
    assert text.startswith(f"Code: {code}. DB::Exception: ") and f"({name}) (version " in text and text.endswith(")\n")


def test_unknown_table(ch_endpoint: Endpoint, database: str) -> None:
    _assert_error(*curl(ch_endpoint, data=f"SELECT * FROM {database}.nope".encode()), 404, 60, "UNKNOWN_TABLE")


def test_syntax_error(ch_endpoint: Endpoint) -> None:
    _assert_error(*curl(ch_endpoint, data=b"SELEC 1"), 400, 62, "SYNTAX_ERROR")


def test_multi_statements_refused(ch_endpoint: Endpoint) -> None:
    _assert_error(*curl(ch_endpoint, data=b"SELECT 1; SELECT 2"), 400, 62, "SYNTAX_ERROR")


def test_wrong_credentials(ch_endpoint: Endpoint) -> None:
    out = subprocess.run(
        ["curl", "-sS", "-D", "-", "-u", "analyst:not-the-password", "--data-binary", "SELECT 1", ch_endpoint.url],
        capture_output=True, check=True,
    ).stdout.decode()
    assert " 403 " in out.splitlines()[0] or " 401 " in out.splitlines()[0]
    assert "Code: 516. DB::Exception: analyst: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)" in out
    out = subprocess.run(["curl", "-sS", "-u", "nobody:x", "--data-binary", "SELECT 1", ch_endpoint.url], capture_output=True).stdout
    assert out.startswith(b"Code: 516.")


def test_unsupported_content_encoding(ch_endpoint: Endpoint) -> None:
    status, headers, body = curl(ch_endpoint, "-H", "Content-Encoding: rot13", data=b"SELECT 1")
    assert headers["x-clickhouse-exception-code"] == "48" and b"Unknown compression method 'rot13'" in body and status == 501


def test_analyst_write_refused(ch_endpoint: Endpoint, marts_table: str) -> None:
    status, headers, body = curl(ch_endpoint, data=f"INSERT INTO {marts_table} VALUES (1)".encode(), user="analyst")
    _assert_error(status, headers, body, 403, 497, "ACCESS_DENIED")
    assert b"analyst: Not enough privileges. To execute this query, it's necessary to have the grant INSERT" in body
    status, headers, body = curl(ch_endpoint, "-G", "--data-urlencode", "readonly=0", data=b"SELECT 1", user="analyst")
    assert headers.get("x-clickhouse-exception-code") == "164"


def test_error_mid_stream_is_tagged(ch_endpoint: Endpoint) -> None:
    status, headers, body = curl(ch_endpoint, data=b"SELECT throwIf(number = 200000) FROM numbers(300000)")
    if "x-clickhouse-exception-code" in headers:  # failed before the first block was ready
        assert b"FUNCTION_THROW_IF_VALUE_IS_NON_ZERO" in body
        return
    tag = headers["x-clickhouse-exception-tag"]
    assert f"__exception__\r\n{tag}\r\n".encode() in body and b"Code: 395." in body
