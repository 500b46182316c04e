"""users.xml <grants> parsing and matching (the enforcement itself is tested against the endpoint)."""

from __future__ import annotations

import pytest

from chdb_http.grants import GrantsConfigError, parse_grant
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
