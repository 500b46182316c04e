"""Where a ClickHouse client depends on the server's rules: the X-ClickHouse-Format and
X-ClickHouse-Database request headers, one header per result however many blocks it has, and
clickhouse-server's errors for what a users.xml-only server cannot do (SQL users and roles)."""

from __future__ import annotations

import json

import pytest

from .conftest import Endpoint
from .test_http_curl import curl

pytestmark = pytest.mark.integration
MANY_BLOCKS = "SELECT number AS n, toString(number) AS s FROM numbers(5) SETTINGS max_block_size = 1"


def test_format_header_chooses_the_output_format(ch_endpoint: Endpoint) -> None:
    status, headers, body = curl(ch_endpoint, "-H", "X-ClickHouse-Format: JSONEachRow", data=b"SELECT 1 AS x")
    assert (status, body) == (200, b'{"x":1}\n')
    assert headers["x-clickhouse-format"] == "JSONEachRow"


def test_format_header_wins_over_default_format_and_loses_to_the_query(ch_endpoint: Endpoint) -> None:
    _, _, body = curl(ch_endpoint, "-G", "--data-urlencode", "default_format=CSV", "-H",
                      "X-ClickHouse-Format: JSONEachRow", data=b"SELECT 1 AS x")
    assert body == b'{"x":1}\n'
    _, _, body = curl(ch_endpoint, "-H", "X-ClickHouse-Format: JSONEachRow", data=b"SELECT 1 AS x FORMAT CSV")
    assert body == b"1\n"


def test_database_header_sets_the_current_database(ch_endpoint: Endpoint, database: str) -> None:
    header = f"X-ClickHouse-Database: {database}"
    _, _, body = curl(ch_endpoint, "-H", header, data=b"SELECT currentDatabase()")
    assert body.decode().strip() == database
    _, _, body = curl(ch_endpoint, "-G", "--data-urlencode", "database=system", "-H", header,
                      data=b"SELECT currentDatabase()")
    assert body.decode().strip() == database, "the header wins over the database parameter"
    assert curl(ch_endpoint, "-H", header, data=b"CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")[0] == 200
    status, _, body = curl(ch_endpoint, "-H", header, data=b"INSERT INTO t VALUES (7)")
    assert status == 200, body
    _, _, body = curl(ch_endpoint, data=f"SELECT a FROM {database}.t".encode())
    assert body == b"7\n", "the unqualified INSERT went to the header's database"


def test_database_header_naming_no_database_is_an_error(ch_endpoint: Endpoint) -> None:
    status, headers, _ = curl(ch_endpoint, "-H", "X-ClickHouse-Database: no_such_db_here", data=b"SELECT 1")
    assert status == 404 and headers["x-clickhouse-exception-code"] == "81"


@pytest.mark.parametrize("fmt, expected", [
    ("TSVWithNamesAndTypes", b"n\ts\nUInt64\tString\n0\t0\n1\t1\n2\t2\n3\t3\n4\t4\n"),
    ("CSVWithNames", b'"n","s"\n0,"0"\n1,"1"\n2,"2"\n3,"3"\n4,"4"\n'),
    ("JSONCompactEachRowWithNames", b'["n", "s"]\n[0, "0"]\n[1, "1"]\n[2, "2"]\n[3, "3"]\n[4, "4"]\n'),
    ("Values", b"(0,'0'),(1,'1'),(2,'2'),(3,'3'),(4,'4')"),
])
def test_a_result_of_many_blocks_has_one_header(ch_endpoint: Endpoint, fmt: str, expected: bytes) -> None:
    status, _, body = curl(ch_endpoint, data=f"{MANY_BLOCKS} FORMAT {fmt}".encode())
    assert (status, body) == (200, expected)


def test_row_binary_with_names_and_types_of_many_blocks(ch_endpoint: Endpoint) -> None:
    _, _, body = curl(ch_endpoint, data="SELECT number AS n FROM numbers(3) SETTINGS max_block_size = 1 "
                                        "FORMAT RowBinaryWithNamesAndTypes".encode())
    header = b"\x01\x01n\x06UInt64"
    assert body == header + b"".join(i.to_bytes(8, "little") for i in range(3))


@pytest.mark.parametrize("fmt", ["JSON", "JSONCompact"])
def test_a_union_in_json_is_one_document(ch_endpoint: Endpoint, fmt: str) -> None:
    _, _, body = curl(ch_endpoint, data=f"SELECT 1 AS a UNION ALL SELECT 2 AS a FORMAT {fmt}".encode())
    doc = json.loads(body)  # one document, or json.loads fails with "Extra data"
    assert doc["rows"] == 2 and len(doc["data"]) == 2


def test_pretty_compact_mono_block_is_one_table(ch_endpoint: Endpoint) -> None:
    _, _, body = curl(ch_endpoint, data=f"{MANY_BLOCKS} FORMAT PrettyCompactMonoBlock".encode())
    text = body.decode()
    assert text.count("┌") == 1 and text.count("└") == 1, text
    assert all(f"│ {i} │" in text for i in range(5)), text


def test_a_large_result_streams_whole(ch_endpoint: Endpoint) -> None:
    _, _, body = curl(ch_endpoint, data=b"SELECT number FROM numbers(300000) SETTINGS max_block_size = 1000 "
                                        b"FORMAT TSVWithNames")
    lines = body.split(b"\n")
    assert lines[0] == b"number" and lines.count(b"number") == 1
    assert [int(x) for x in lines[1:-1]] == list(range(300000))


@pytest.mark.parametrize("statement, code", [
    ("CREATE USER it_new_user IDENTIFIED BY 'x'", 514),
    ("CREATE ROLE it_new_role", 514),
    ("ALTER USER loader SETTINGS max_threads = 1", 495),
    ("DROP USER loader", 495),
    ("GRANT SELECT ON marts.* TO loader", 495),
    ("DROP USER it_nobody", 192),
])
def test_sql_access_management_answers_as_a_users_xml_server(ch_endpoint: Endpoint, statement: str,
                                                             code: int) -> None:
    status, headers, body = curl(ch_endpoint, data=statement.encode())
    assert status != 200 and headers["x-clickhouse-exception-code"] == str(code), body
    assert curl(ch_endpoint, data=b"SELECT 1", user="loader")[2] == b"1\n", "the loader user is untouched"


def test_drop_if_exists_of_no_user_does_nothing(ch_endpoint: Endpoint) -> None:
    status, _, body = curl(ch_endpoint, data=b"DROP USER IF EXISTS it_nobody")
    assert status == 200, body


def test_keeper_map_answers_with_the_servers_error(ch_endpoint: Endpoint, database: str) -> None:
    status, headers, body = curl(ch_endpoint, data=f"CREATE TABLE {database}.km (k UInt64, v String) "
                                                   "ENGINE = KeeperMap('/km') PRIMARY KEY k".encode())
    assert status != 200 and headers["x-clickhouse-exception-code"] == "36", body
    assert b"keeper_map_path_prefix" in body
