"""Dictionaries with a CLICKHOUSE source on this server, as clickhouse-server runs them (same result there).

transformer owns marts (ALL ON marts.*), which includes CREATE/DROP DICTIONARY and dictGet; the
source is read as the user it names, with that user's password and grants; analyst (SELECT ON
marts.*) has no dictGet. The endpoint refuses a bad source when the dictionary is created,
clickhouse-server when it first loads it: each refusal is expected from either statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from .conftest import Endpoint

pytestmark = pytest.mark.integration


@pytest.fixture
def names(ch_endpoint: Endpoint) -> Iterator[dict[str, str]]:
    """Fresh names for a source table in marts and one in stg and for a dictionary in marts; dropped afterwards."""
    suffix = uuid.uuid4().hex[:10]
    admin = ch_endpoint.client()
    for db in ("marts", "stg"):
        admin.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    result = {"src": f"it_src_{suffix}", "stg_src": f"it_src_{suffix}", "dict": f"it_dict_{suffix}"}
    yield result
    admin.command(f"DROP DICTIONARY IF EXISTS marts.{result['dict']}")
    admin.command(f"DROP TABLE IF EXISTS marts.{result['src']}")
    admin.command(f"DROP TABLE IF EXISTS stg.{result['stg_src']}")
    admin.close()


def _source_table(client: Client, name: str) -> None:
    client.command(f"CREATE TABLE {name} (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    client.command(f"INSERT INTO {name} VALUES (1, 'one'), (2, 'two'), (3, 'three')")


def _dictionary_ddl(name: str, source: str) -> str:
    return (f"CREATE DICTIONARY marts.{name} (id UInt64, name String DEFAULT '?') PRIMARY KEY id "
            f"SOURCE(CLICKHOUSE({source})) LAYOUT(HASHED()) LIFETIME(MIN 0 MAX 0)")


def _refused(code: int, *calls: Callable[[], object]) -> str:
    """The error of the first of ``calls`` that fails (the test fails if none does), which must carry ``code``."""
    with pytest.raises(DatabaseError) as err:
        for call in calls:
            call()
    text = str(err.value)
    assert f"Code: {code}." in text, text
    return text


def test_dictionary_reads_local_table_as_its_source_user(ch_endpoint: Endpoint, names: dict[str, str]) -> None:
    transformer = ch_endpoint.client("transformer")
    password = ch_endpoint.passwords["transformer"]
    _source_table(transformer, f"marts.{names['src']}")
    transformer.command(_dictionary_ddl(
        names["dict"], f"user 'transformer' password '{password}' db 'marts' table '{names['src']}'"))
    dictionary = f"marts.{names['dict']}"
    assert transformer.query(
        f"SELECT dictGet('{dictionary}', 'name', toUInt64(2)), dictGetOrDefault('{dictionary}', 'name', toUInt64(9), 'none'), "
        f"dictHas('{dictionary}', toUInt64(3)), dictHas('{dictionary}', toUInt64(4))"
    ).result_rows == [("two", "none", 1, 0)]
    assert transformer.query(f"SELECT dictGet('{dictionary}', 'name', toUInt64(7))").result_rows == [("?",)]
    shown = transformer.command(f"SHOW CREATE DICTIONARY {dictionary}")
    assert names["src"] in str(shown) and password not in str(shown)
    transformer.command(f"DROP DICTIONARY {dictionary}")
    assert transformer.command(f"EXISTS DICTIONARY {dictionary}") == 0


def test_dictionary_from_query_source(ch_endpoint: Endpoint, names: dict[str, str]) -> None:
    transformer = ch_endpoint.client("transformer")
    _source_table(transformer, f"marts.{names['src']}")
    query = f"SELECT id, upper(name) AS name FROM marts.{names['src']} WHERE id > 1"
    transformer.command(_dictionary_ddl(
        names["dict"], f"user 'transformer' password '{ch_endpoint.passwords['transformer']}' query '{query}'"))
    dictionary = f"marts.{names['dict']}"
    rows = transformer.query(f"SELECT id, dictGet('{dictionary}', 'name', id) FROM marts.{names['src']} ORDER BY id")
    assert rows.result_rows == [(1, "?"), (2, "TWO"), (3, "THREE")]


def test_wrong_password_in_source_fails_authentication(ch_endpoint: Endpoint, names: dict[str, str]) -> None:
    transformer = ch_endpoint.client("transformer")
    _source_table(transformer, f"marts.{names['src']}")
    wrong = ch_endpoint.passwords["transformer"] + "-wrong"
    ddl = _dictionary_ddl(names["dict"], f"user 'transformer' password '{wrong}' db 'marts' table '{names['src']}'")
    dict_get = f"SELECT dictGet('marts.{names['dict']}', 'name', toUInt64(1))"
    text = _refused(516, lambda: transformer.command(ddl), lambda: transformer.query(dict_get))
    assert "AUTHENTICATION_FAILED" in text and wrong not in text


def test_source_user_without_select_reads_nothing(ch_endpoint: Endpoint, names: dict[str, str]) -> None:
    transformer = ch_endpoint.client("transformer")
    _source_table(transformer, f"stg.{names['stg_src']}")
    # analyst may read marts, not stg: a dictionary reading stg as analyst must not hand stg out
    ddl = _dictionary_ddl(
        names["dict"], f"user 'analyst' password '{ch_endpoint.passwords['analyst']}' db 'stg' table '{names['stg_src']}'")
    dict_get = f"SELECT dictGet('marts.{names['dict']}', 'name', toUInt64(1))"
    text = _refused(497, lambda: transformer.command(ddl), lambda: transformer.query(dict_get))
    assert "analyst: Not enough privileges" in text and "stg." in text


def test_dict_get_needs_dict_get_grant(ch_endpoint: Endpoint, names: dict[str, str]) -> None:
    transformer = ch_endpoint.client("transformer")
    _source_table(transformer, f"marts.{names['src']}")
    transformer.command(_dictionary_ddl(
        names["dict"],
        f"user 'transformer' password '{ch_endpoint.passwords['transformer']}' db 'marts' table '{names['src']}'"))
    analyst = ch_endpoint.client("analyst")
    assert analyst.query(f"SELECT count() FROM marts.{names['src']}").result_rows == [(3,)]
    text = _refused(497, lambda: analyst.query(f"SELECT dictGet('marts.{names['dict']}', 'name', toUInt64(1))"))
    assert "dictGet ON marts." in text
