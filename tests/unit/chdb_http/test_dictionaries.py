"""Dictionaries with a CLICKHOUSE source on this server: reading the source, credentials, grants, rewrite."""

from __future__ import annotations

import re

import pytest

from chdb_http.dictionaries import LocalServer, local_source, parse_source
from chdb_http.errors import ClickHouseError
from chdb_http.users import parse_users_xml

USERS = parse_users_xml("""<clickhouse><users>
  <default><password>admin-pw</password></default>
  <transformer><password>dbt-pw</password><grants>
    <query>GRANT SELECT ON raw.*</query><query>GRANT ALL ON marts.*</query>
  </grants></transformer>
</users></clickhouse>""", {}).users
SERVER = LocalServer(USERS, 8123)
DICT_HEAD = "CREATE DICTIONARY marts.d (id UInt64, name String) PRIMARY KEY id "
DICT_TAIL = " LAYOUT(HASHED()) LIFETIME(0)"


def _ddl(source: str) -> str:
    return f"{DICT_HEAD}SOURCE(CLICKHOUSE({source})){DICT_TAIL}"


def _select_ast(query: str) -> str:
    """EXPLAIN AST of a SELECT, with one TableIdentifier per table the query names after FROM / JOIN."""
    lines = ["SelectWithUnionQuery (children 1)", " ExpressionList (children 1)", "  SelectQuery (children 2)",
             "   ExpressionList (children 1)", "    Asterisk", "   TablesInSelectQuery (children 1)"]
    for table in re.findall(r"(?:FROM|JOIN)\s+([\w.`]+)", query, re.IGNORECASE):
        lines += ["    TablesInSelectQueryElement (children 1)", "     TableExpression (children 1)",
                  f"      TableIdentifier {table.replace('`', '')}"]
    return "\n".join(lines)


class Engine:
    """Stands in for the engine: records what is explained, answers with ``_select_ast``."""

    def __init__(self, syntax_error: bool = False) -> None:
        self.explained: list[str] = []
        self.syntax_error = syntax_error

    def explain(self, query: str) -> str:
        self.explained.append(query)
        if self.syntax_error:
            raise ClickHouseError(62, "SYNTAX_ERROR", "Syntax error: failed at position 1")
        return _select_ast(query) if query.lstrip().upper().startswith("SELECT") else "CreateQuery marts d"

    def rewrite(self, statement: str, server: LocalServer = SERVER) -> str:
        return local_source(statement, server, self.explain, lambda: "current_db")


def test_parse_source_as_dbt_writes_it() -> None:
    dbt = ("CREATE OR REPLACE DICTIONARY `marts`.`d`\n  (card_id UInt64,status String)\n  primary key card_id\n"
           "  SOURCE(\n      CLICKHOUSE(\n      user 'transformer'\n      password 'dbt\\'pw'\n      db 'marts'\n"
           "        query \"select card_id, status from `raw`.`cards`\"\n      )\n  )\n  LAYOUT(HASHED())\n"
           "  LIFETIME(MIN 0 MAX 0)")
    source = parse_source(dbt)
    assert source is not None
    assert (source.dictionary_db, source.dictionary) == ("marts", "d")
    assert source.values == {"user": "transformer", "password": "dbt'pw", "db": "marts",
                             "query": "select card_id, status from `raw`.`cards`"}
    assert source.kept == ("db 'marts'", "query \"select card_id, status from `raw`.`cards`\"")
    spaced = parse_source("create dictionary d (id UInt64) primary key id source ( ClickHouse ( TABLE 'src' /* c */ "
                          "Where 'id > 1' update_lag 5 ) ) layout(flat()) lifetime(0)")
    assert spaced is not None and spaced.dictionary_db is None
    assert spaced.values == {"table": "src", "where": "id > 1", "update_lag": "5"}


@pytest.mark.parametrize("statement", [
    "SELECT 'CREATE DICTIONARY d SOURCE(CLICKHOUSE(user 1))'",
    "CREATE TABLE t (a String DEFAULT 'SOURCE(CLICKHOUSE(') ENGINE = Memory",
    _ddl("").replace("CLICKHOUSE()", "HTTP(url 'http://x/' format 'TSV')"),
    "DROP DICTIONARY marts.d",
])
def test_other_statements_are_not_sources(statement: str) -> None:
    assert parse_source(statement) is None
    assert Engine().rewrite(statement) == statement


def test_local_source_rewritten_to_engine_user() -> None:
    engine = Engine()
    statement = _ddl("host 'localhost' port 8123 user 'transformer' password 'dbt-pw' db 'marts' table 'src' "
                     "where 'id > 1' invalidate_query 'SELECT max(id) FROM raw.events'")
    rewritten = engine.rewrite(statement)
    assert rewritten == _ddl("USER 'default' db 'marts' table 'src' where 'id > 1' "
                             "invalidate_query 'SELECT max(id) FROM raw.events'")
    assert "dbt-pw" not in rewritten
    assert engine.explained[1:] == ["SELECT max(id) FROM raw.events", "SELECT * FROM `marts`.`src` WHERE (id > 1)"]


@pytest.mark.parametrize("source", [
    "user 'transformer' password 'wrong' table 'src'",
    "user 'nobody' password 'dbt-pw' table 'src'",
    "table 'src'",  # user default, empty password: the endpoint's default has one
    "host '127.0.0.1' port 9000 user 'transformer' table 'src'",
])
def test_wrong_credentials_fail_as_clickhouse_server(source: str) -> None:
    with pytest.raises(ClickHouseError) as err:
        Engine().rewrite(_ddl(source))
    user = re.search(r"user '(\w+)'", source)
    assert (err.value.code, err.value.name) == (516, "AUTHENTICATION_FAILED")
    assert err.value.message.startswith(f"{user.group(1) if user else 'default'}: Authentication failed")
    assert "wrong" not in err.value.message and "dbt-pw" not in err.value.message


@pytest.mark.parametrize(("source", "denied"), [
    ("user 'transformer' password 'dbt-pw' db 'stg' table 'src'", "SELECT ON stg.src"),
    ("user 'transformer' password 'dbt-pw' query 'SELECT * FROM raw.a JOIN stg.b USING id'", "SELECT ON stg.b"),
    ("user 'transformer' password 'dbt-pw' query 'SELECT * FROM b'", "SELECT ON default.b"),
    ("user 'transformer' password 'dbt-pw' table 'src' where 'id IN (SELECT id FROM stg.secret)'", "SELECT ON stg.secret"),
])
def test_source_user_needs_select(source: str, denied: str) -> None:
    with pytest.raises(ClickHouseError) as err:
        Engine().rewrite(_ddl(source))
    assert err.value.code == 497 and err.value.message.startswith("transformer: Not enough privileges")
    assert err.value.message.endswith(denied)


def test_source_db_defaults_to_the_dictionary_database() -> None:
    source = "SOURCE(CLICKHOUSE(user 'transformer' password 'dbt-pw' table 'src'))"
    for dictionary, denied in (("stg.d", "SELECT ON stg.src"), ("d", "SELECT ON current_db.src")):
        with pytest.raises(ClickHouseError) as err:
            Engine().rewrite(f"CREATE DICTIONARY {dictionary} (id UInt64) PRIMARY KEY id {source}{DICT_TAIL}")
        assert err.value.message.endswith(denied)


def test_allowed_sources() -> None:
    engine = Engine()
    assert "USER 'default'" in engine.rewrite(_ddl("user 'transformer' password 'dbt-pw' db 'raw' table 'src'"))
    unqualified = "CREATE DICTIONARY d (id UInt64) PRIMARY KEY id SOURCE(CLICKHOUSE(user 'default' password " \
                  "'admin-pw' table 'src')) LAYOUT(FLAT()) LIFETIME(0)"
    assert engine.rewrite(unqualified).count("USER 'default'") == 1
    assert len(engine.explained) == 3  # the two statements, one source query: default has every privilege


@pytest.mark.parametrize("where", ["host 'clickhouse.invalid'", "host '192.0.2.10'", "host 'localhost' port 9001",
                                   "host '127.0.0.1' port 8124"])
def test_remote_sources_left_to_the_engine(where: str) -> None:
    statement = _ddl(f"{where} user 'transformer' password 'remote-pw' table 'src'")
    engine = Engine()
    assert engine.rewrite(statement) == statement
    assert engine.explained == []


@pytest.mark.parametrize("where", ["", "host 'localhost'", "host '::1' port 9000", "secure 1 port 9440",
                                   "host '127.0.0.1' port '8123'"])
def test_local_sources(where: str) -> None:
    rewritten = Engine().rewrite(_ddl(f"{where} user 'transformer' password 'dbt-pw' table 'src'".lstrip()))
    assert rewritten == _ddl("USER 'default' table 'src'")


def test_unreadable_source() -> None:
    named = _ddl("name my_collection table 'src'")
    with pytest.raises(ClickHouseError) as err:
        Engine().rewrite(named)
    assert err.value.name == "NOT_IMPLEMENTED"
    computed = _ddl("user 'transformer' password concat('dbt', '-pw') table 'src'")
    with pytest.raises(ClickHouseError) as err:
        Engine().rewrite(computed)
    assert err.value.name == "SYNTAX_ERROR" and "password is not a literal" in err.value.message
    # what the engine cannot parse either is the engine's to refuse, in its own words
    commas = _ddl("user 'transformer', password 'x', table 'src'")
    assert Engine(syntax_error=True).rewrite(commas) == commas
    wrong_elsewhere = _ddl("user 'transformer' password 'wrong' table 'src'").replace("LAYOUT(HASHED())", "LAYOUT(")
    assert Engine(syntax_error=True).rewrite(wrong_elsewhere) == wrong_elsewhere


def test_local_source_skips_other_statements_without_the_engine() -> None:
    def engine_call(*_: object) -> str:
        raise AssertionError("the engine was asked about a statement without a CLICKHOUSE source")

    for statement in ("SELECT dictGet('marts.d', 'name', 1)", "INSERT INTO t VALUES (1)"):
        assert local_source(statement, SERVER, engine_call, engine_call) == statement
