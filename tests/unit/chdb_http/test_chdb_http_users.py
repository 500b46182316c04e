"""users.xml parsing: clickhouse-server's format, from_env, profiles, password kinds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chdb_http.users import UsersConfigError, load_users, parse_users_xml

REPO_USERS = Path(__file__).resolve().parents[3] / "clickhouse_init" / "users.xml"
ENV = {
    "CLICKHOUSE_PASSWORD": "admin-pw",
    "CLICKHOUSE_LOADER_PASSWORD": "loader-pw",
    "CLICKHOUSE_TRANSFORMER_PASSWORD": "dbt-pw",
    "CLICKHOUSE_ANALYST_PASSWORD": "ro-pw",
}


def test_repo_users_file() -> None:
    users = load_users(REPO_USERS, ENV)
    assert set(users.users) == {"default", "loader", "transformer", "analyst"}
    assert users.get("loader").check_password("loader-pw")
    assert not users.get("loader").check_password("admin-pw")
    assert users.get("analyst").readonly == 1
    assert users.get("default").readonly == 0 and users.get("transformer").readonly == 0
    assert "pw" not in REPO_USERS.read_text().lower().replace("password", "")


def test_missing_env_variable_names_it() -> None:
    env = dict(ENV)
    del env["CLICKHOUSE_ANALYST_PASSWORD"]
    with pytest.raises(UsersConfigError, match="CLICKHOUSE_ANALYST_PASSWORD"):
        load_users(REPO_USERS, env)


def test_password_kinds_and_profile_inheritance() -> None:
    sha = hashlib.sha256(b"s3cret").hexdigest()
    dsha = hashlib.sha1(hashlib.sha1(b"other").digest()).hexdigest()
    users = parse_users_xml(
        f"""<clickhouse>
          <profiles>
            <base><max_threads>2</max_threads></base>
            <ro><profile>base</profile><readonly>2</readonly></ro>
          </profiles>
          <users>
            <a><password_sha256_hex>{sha}</password_sha256_hex><profile>ro</profile></a>
            <b><password_double_sha1_hex>{dsha}</password_double_sha1_hex></b>
            <c><no_password/></c>
            <d><password></password></d>
            <e><password from_env="E_PW"/></e>
          </users></clickhouse>""",
        {"E_PW": "from-env"},
    )
    a, b, c, d, e = (users.get(n) for n in "abcde")
    assert a.check_password("s3cret") and not a.check_password("S3cret")
    assert a.settings == {"max_threads": "2", "readonly": "2"} and a.readonly == 2
    assert b.check_password("other") and not b.check_password("")
    assert c.check_password("anything") and not c.requires_password
    assert d.check_password("") and not d.requires_password
    assert e.check_password("from-env") and e.requires_password


@pytest.mark.parametrize(
    "xml,message",
    [
        ("<clickhouse><users/></clickhouse>", "no users"),
        ("<other><users><a/></users></other>", "root element"),
        ("<clickhouse><users><a><profile>nope</profile></a></users></clickhouse>", "profiles/nope"),
        ("<clickhouse><users><a><password>x</password><no_password/></a></users></clickhouse>", "exactly one"),
        ("<clickhouse><users><a><password incl='x'/></a></users></clickhouse>", "incl"),
        ("<clickhouse><users>", "not valid XML"),
    ],
)
def test_bad_files_say_what_to_fix(xml: str, message: str) -> None:
    with pytest.raises(UsersConfigError, match=message):
        parse_users_xml(xml, {})
