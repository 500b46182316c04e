"""users.xml <grants> parsing and matching (the enforcement itself is tested against the endpoint)."""

from __future__ import annotations

import pytest

from chdb_http.errors import ClickHouseError
from chdb_http.grants import Access, GrantsConfigError, check, parse_grant, required_access
from chdb_http.users import UsersConfigError, parse_users_xml


def test_parse_grant_and_cover() -> None:
    grant = parse_grant("GRANT SELECT, INSERT, ALTER ADD COLUMN ON raw.*")
    assert grant.covers("INSERT", "raw", "transaction")
    assert grant.covers("ALTER ADD COLUMN", "raw", "card")
    assert not grant.covers("ALTER DELETE", "raw", "card")
    assert not grant.covers("SELECT", "ods", "ods_cards")
    alter = parse_grant("GRANT ALTER ON ods.*")
    assert alter.covers("ALTER DELETE", "ods", "x") and not alter.covers("DROP TABLE", "ods", "x")
    everything = parse_grant("GRANT ALL PRIVILEGES ON `ods`.*")
    assert everything.covers("DROP TABLE", "ods", "x") and everything.covers("CREATE DATABASE", "ods", "*")
    one = parse_grant("GRANT SELECT ON ods.ods_transactions")
    assert one.covers("SELECT", "ods", "ods_transactions") and not one.covers("SELECT", "ods", "ods_customers")
    assert parse_grant("GRANT SOURCES ON *.*").covers("FILE", "*", "*")


@pytest.mark.parametrize("query", ["GRANT SELECT", "REVOKE SELECT ON raw.*", "GRANT SELECT ON raw"])
def test_bad_grant_named(query: str) -> None:
    with pytest.raises(GrantsConfigError, match="GRANT <privileges> ON|db.table"):
        parse_grant(query)


def test_users_xml_grants_or_everything() -> None:
    xml = """<clickhouse><users>
      <default><password></password></default>
      <loader><password>x</password><grants><query>GRANT INSERT ON raw.*</query></grants></loader>
      <broken><password>x</password><grants><query>GRANT INSERT</query></grants></broken>
    </users></clickhouse>"""
    with pytest.raises(UsersConfigError, match="users/broken"):
        parse_users_xml(xml, {})
    config = parse_users_xml(xml.replace("<broken><password>x</password><grants><query>GRANT INSERT</query></grants></broken>", ""), {})
    assert config.users["default"].grants is None
    assert config.users["loader"].grants == (parse_grant("GRANT INSERT ON raw.*"),)


# EXPLAIN AST output of chDB for the statements named
CREATE_OR_REPLACE_DICTIONARY = """CreateQuery marts d (children 4)
 Identifier marts
 Identifier d
 ExpressionList (children 1)
  DictionaryAttributeDeclaration id (children 1)
   DataType UInt64
 Dictionary definition (children 4)
  ExpressionList (children 1)
   Identifier id
  FunctionWithKeyValueArguments  clickhouse (children 1)
   ExpressionList (children 1)
    pair (children 1)
     Literal 's'
  Dictionary lifetime
  Dictionary layout (children 1)
   ExpressionList"""
DICT_GET = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 2)
    Function dictGet (children 1)
     ExpressionList (children 3)
      Literal 'marts.d'
      Literal 'name'
      Identifier id
    Function dictHas (children 1)
     ExpressionList (children 2)
      Literal 'd'
      Literal UInt64_1
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier marts.s"""
DICT_GET_COMPUTED = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Function dictGetOrNull (children 1)
     ExpressionList (children 3)
      Function concat (children 1)
       ExpressionList (children 2)
        Literal 'marts.'
        Literal 'd'
      Literal 'name'
      Literal UInt64_1"""
DICTIONARY_FUNCTION = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function dictionary (children 1)
       ExpressionList (children 1)
        Literal 'marts.d'"""
ON_DICTIONARY = "{kind} marts d (children 2)\n Identifier marts\n Identifier d"


@pytest.mark.parametrize(("ast", "query", "needed"), [
    (CREATE_OR_REPLACE_DICTIONARY, "CREATE OR REPLACE DICTIONARY marts.d (id UInt64) PRIMARY KEY id SOURCE(...)",
     [Access("CREATE DICTIONARY", "marts", "d")]),  # no DROP for OR REPLACE, as InterpreterCreateQuery
    (CREATE_OR_REPLACE_DICTIONARY, "CREATE DICTIONARY IF NOT EXISTS marts.d (id UInt64) PRIMARY KEY id SOURCE(...)",
     [Access("CREATE DICTIONARY", "marts", "d")]),
    (ON_DICTIONARY.format(kind="DropQuery"), "DROP DICTIONARY IF EXISTS marts.d", [Access("DROP DICTIONARY", "marts", "d")]),
    (ON_DICTIONARY.format(kind="DetachQuery"), "DETACH DICTIONARY marts.d", [Access("DROP DICTIONARY", "marts", "d")]),
    (ON_DICTIONARY.format(kind="AttachQuery"), "ATTACH DICTIONARY marts.d", [Access("CREATE DICTIONARY", "marts", "d")]),
    (ON_DICTIONARY.format(kind="ShowCreateDictionaryQuery"), "SHOW CREATE DICTIONARY marts.d", None),
    (DICT_GET, "SELECT dictGet('marts.d', 'name', id), dictHas('d', 1) FROM marts.s",
     [Access("dictGet", "marts", "d"), Access("dictGet", "cur", "d"), Access("SELECT", "marts", "s")]),
    (DICT_GET_COMPUTED, "SELECT dictGetOrNull(concat('marts.', 'd'), 'name', 1)", [Access("dictGet", "*", "*")]),
    (DICTIONARY_FUNCTION, "SELECT * FROM dictionary('marts.d')",
     [Access("CREATE TEMPORARY TABLE", "*", "*"), Access("dictGet", "marts", "d")]),
])
def test_dictionary_statements(ast: str, query: str, needed: list[Access] | None) -> None:
    assert required_access(ast, query, "cur") == needed


def test_dictionary_privileges_as_clickhouse_server() -> None:
    everything = parse_grant("GRANT ALL ON marts.*")
    for privilege in ("CREATE DICTIONARY", "DROP DICTIONARY", "dictGet"):
        assert everything.covers(privilege, "marts", "d") and not everything.covers(privilege, "stg", "d")
    assert parse_grant("GRANT CREATE ON marts.*").covers("CREATE DICTIONARY", "marts", "d")
    assert parse_grant("GRANT DROP ON marts.*").covers("DROP DICTIONARY", "marts", "d")
    assert not parse_grant("GRANT CREATE TABLE ON marts.*").covers("CREATE DICTIONARY", "marts", "d")
    assert not parse_grant("GRANT SELECT ON marts.*").covers("dictGet", "marts", "d")
    assert parse_grant("GRANT dictGet ON marts.d").covers("dictGet", "marts", "d")
    assert parse_grant("GRANT dictHas ON marts.*").covers("dictGet", "marts", "d")  # an alias
    assert not parse_grant("GRANT dictGet ON marts.*").covers("dictGet", "*", "*")
    assert parse_grant("GRANT dictGet ON *.*").covers("dictGet", "*", "*")


def test_dict_get_denied_as_clickhouse_server_words_it() -> None:
    grants = (parse_grant("GRANT SELECT ON marts.*"),)
    with pytest.raises(ClickHouseError) as err:
        check("analyst", grants, DICT_GET, "SELECT dictGet('marts.d', 'name', id) FROM marts.s", lambda: "marts")
    assert err.value.code == 497
    assert err.value.message == ("analyst: Not enough privileges. To execute this query, it's necessary to have "
                                 "the grant dictGet ON marts.d")
    check("transformer", (parse_grant("GRANT ALL ON marts.*"),), DICT_GET, "SELECT ...", lambda: "marts")
