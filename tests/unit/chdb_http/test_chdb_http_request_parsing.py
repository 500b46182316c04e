"""Parameters, settings, credentials, errors and statement routing, without a server."""

from __future__ import annotations

import base64
import io

import pytest

from chdb_http.errors import ClickHouseError, authentication_error
from chdb_http.request import QueryRequest, RawBody, credentials, parse_url_params
from chdb_http.sqltext import output_format, split_insert

FORMATS = {"TabSeparated", "JSON", "JSONEachRow", "Native", "CSV"}


def test_settings_params_and_reserved_names() -> None:
    params = parse_url_params(
        "query=SELECT+1&database=db&session_id=s&max_threads=2&param_x=%27a%27&enable_http_compression=1"
        "&default_format=JSON&wait_end_of_query=1&user=u&password=p&query_id=q1&max_threads=3"
    )
    req = QueryRequest.parse("POST", params)
    assert req.settings == {"max_threads": "3", "enable_http_compression": "1"}
    assert req.query_params == {"x": "'a'"}
    assert (req.database, req.default_format, req.query_id, req.url_query) == ("db", "JSON", "q1", "SELECT 1")
    assert req.flag("wait_end_of_query") and not req.flag("compress")


def test_credentials_sources() -> None:
    basic = "Basic " + base64.b64encode(b"loader:pw:with:colons").decode()
    assert credentials({"Authorization": basic}, {}) == credentials({"X-ClickHouse-User": "loader", "X-ClickHouse-Key": "pw:with:colons"}, {})
    assert credentials({}, {"user": "a", "password": "b"}).user == "a"
    anon = credentials({}, {})
    assert (anon.user, anon.provided) == ("default", False)
    with pytest.raises(ClickHouseError) as err:
        credentials({"Authorization": basic}, {"user": "x"})
    assert err.value.code == 516


def test_engine_error_parsing_and_status() -> None:
    exc = ClickHouseError.from_engine("Code: 60. DB::Exception: Table db.t does not exist. (UNKNOWN_TABLE)")
    assert (exc.code, exc.name, exc.http_status) == (60, "UNKNOWN_TABLE", 404)
    assert exc.body("26.9.2.1") == "Code: 60. DB::Exception: Table db.t does not exist. (UNKNOWN_TABLE) (version 26.9.2.1)\n"
    exc = ClickHouseError.from_engine("Code: 62. DB::Exception: Syntax error: x. (SYNTAX_ERROR) (version 26.9.2.1)")
    assert (exc.http_status, exc.message) == (400, "Syntax error: x")
    assert ClickHouseError.from_engine("Code: 164. DB::Exception: default: x. (READONLY)").http_status == 500
    assert authentication_error("loader").http_status == 403
    assert authentication_error("default", required=True).http_status == 401


def test_output_format_detection() -> None:
    assert output_format("SELECT 1 FORMAT JSON", FORMATS) == "JSON"
    assert output_format("SELECT 'FORMAT CSV' -- FORMAT Native\n", FORMATS) is None
    assert output_format("SELECT format FROM t", FORMATS) is None
    assert output_format("SELECT * FROM (SELECT 1 FORMAT JSON) FORMAT CSV SETTINGS a=1", FORMATS) == "CSV"


@pytest.mark.parametrize(
    "query,head,fmt,data",
    [
        ("INSERT INTO t FORMAT CSV\n1,2\n", "INSERT INTO t", "CSV", "1,2\n"),
        ("INSERT INTO db.t (a, b) FORMAT Native\n", "INSERT INTO db.t (a, b)", "Native", ""),
        ("insert into t settings async_insert=0 format JSONEachRow {\"a\":1}", "insert into t settings async_insert=0", "JSONEachRow", "{\"a\":1}"),
        ("INSERT INTO t VALUES (1, 'FORMAT CSV')", "INSERT INTO t", "Values", " (1, 'FORMAT CSV')"),
    ],
)
def test_split_insert(query: str, head: str, fmt: str, data: str) -> None:
    split = split_insert(query)
    assert split is not None and (split.head, split.fmt, query[split.data_offset:]) == (head, fmt, data)


def test_split_insert_ignores_other_statements() -> None:
    assert split_insert("INSERT INTO t SELECT * FROM s FORMAT CSV") is None
    assert split_insert("SELECT 1 FORMAT CSV") is None


def test_chunked_body() -> None:
    body = RawBody(io.BytesIO(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT"), {"Transfer-Encoding": "chunked"})
    assert b"".join(body) == b"hello world" and body.done
