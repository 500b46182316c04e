"""Issue 8: PostgreSQL least privilege, tried for real on the running test stack.

Each pipeline role logs in with its own password and attempts what it must not do; every
attempt runs in a transaction that is rolled back, so a privilege that wrongly exists fails the
test without changing anything. The roles and their passwords come from the stack's code
(bankcdc_stack.services.postgres.ROLE_PASSWORDS), the tables from the live catalog.
"""

from __future__ import annotations

import os
from typing import Iterator

import psutil
import psycopg2
import pytest
from psycopg2 import errors, sql

from bankcdc_stack.services.postgres import ROLE_PASSWORDS
from bankcdc_stack.stack import Stack

pytestmark = pytest.mark.integration
PIPELINE_ROLES = sorted(set(ROLE_PASSWORDS) - {"airflow"})  # bank_filler, bank_reader, debezium


def _connect(stack: Stack, role: str, dbname: str = "bank"):
    env = stack.ctx.env
    conn = psycopg2.connect(host=env["DB_HOST"], port=env["DB_PORT"], dbname=dbname, user=role,
                            password=stack.ctx.secrets[ROLE_PASSWORDS[role]], connect_timeout=5)
    return conn


@pytest.fixture(scope="module")
def admin(pg_admin_dsn: str) -> Iterator:
    conn = psycopg2.connect(pg_admin_dsn)
    conn.autocommit = True
    yield conn
    conn.close()


def _tables(admin, *schemas: str) -> list[sql.Composable]:
    with admin.cursor() as cur:
        cur.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s) ORDER BY 1, 2",
                    (list(schemas),))
        rows = cur.fetchall()
    assert rows, f"no tables in {schemas}"
    return [sql.Identifier(schema, table) for schema, table in rows]


def _schemas(admin) -> list[str]:
    """Every schema a role could try to create objects in (system and temp schemas included)."""
    with admin.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_temp_%' "
                    "AND nspname NOT LIKE 'pg_toast_temp_%' ORDER BY 1")
        return [row[0] for row in cur.fetchall()]


def _allowed(conn, statement: sql.Composable | str) -> bool:
    """Try `statement`, then roll back. False when refused for lack of privilege; an error raised
    after the privilege check (a NOT NULL column, say) means the privilege was there."""
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
        return True
    except errors.InsufficientPrivilege:
        return False
    except psycopg2.Error:
        return True
    finally:
        conn.rollback()


def _writes(conn, table: sql.Composable, columns: list[str]) -> list[str]:
    """The write operations `conn` may perform on `table`."""
    column = sql.Identifier(columns[0])
    attempts = {
        "INSERT": sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table),
        "UPDATE": sql.SQL("UPDATE {} SET {} = {} WHERE false").format(table, column, column),
        "DELETE": sql.SQL("DELETE FROM {} WHERE false").format(table),
        "TRUNCATE": sql.SQL("TRUNCATE {}").format(table),
    }
    return [op for op, statement in attempts.items() if _allowed(conn, statement)]


def _columns(admin, table: sql.Identifier) -> list[str]:
    schema, name = table.strings
    with admin.cursor() as cur:
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                    "AND NOT attisdropped ORDER BY attnum", (f"{schema}.{name}",))
        return [row[0] for row in cur.fetchall()]


def _creates(conn, schemas: list[str]) -> list[str]:
    """Where `conn` may create objects: schemas, the database (CREATE SCHEMA), temp tables."""
    found = [f"table in {schema}" for schema in schemas
             if _allowed(conn, sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(schema, "zz_privilege_probe")))]
    if _allowed(conn, "CREATE SCHEMA zz_privilege_probe"):
        found.append("schema")
    if _allowed(conn, "CREATE TEMP TABLE zz_privilege_probe (id int)"):
        found.append("temp table")
    return found


def test_pipeline_roles_are_plain_logins(admin) -> None:
    with admin.cursor() as cur:
        cur.execute("""SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication,
                              ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
                                    WHERE m.member = r.oid)
                       FROM pg_roles r WHERE rolname = ANY(%s)""", (list(ROLE_PASSWORDS),))
        rows = {row[0]: row[1:] for row in cur.fetchall()}
    assert set(rows) == set(ROLE_PASSWORDS)
    for role, (superuser, createrole, createdb, bypassrls, replication, member_of) in rows.items():
        assert not (superuser or createrole or createdb or bypassrls), f"{role} has an administrative attribute"
        assert replication == (role == "debezium"), f"{role}: REPLICATION={replication}"
        assert member_of == [], f"{role} inherits the privileges of {member_of}"


def test_debezium_reads_bank_and_writes_only_its_heartbeat(stack: Stack, admin) -> None:
    conn = _connect(stack, "debezium")
    try:
        assert _allowed(conn, "SELECT count(*) FROM bank.customer")
        for table in _tables(admin, "bank"):
            assert _writes(conn, table, _columns(admin, table)) == [], f"debezium may write {table.strings}"
        for table in _tables(admin, "fraud_truth"):
            assert not _allowed(conn, sql.SQL("SELECT 1 FROM {} LIMIT 1").format(table)), f"debezium reads {table.strings}"
        assert _writes(conn, sql.Identifier("cdc", "heartbeat"), ["source", "beat_at"]) == ["INSERT", "UPDATE"]
        assert _creates(conn, _schemas(admin)) == []
    finally:
        conn.close()


def test_filler_cannot_change_schema_roles_or_ground_truth(stack: Stack, admin) -> None:
    conn = _connect(stack, "bank_filler")
    try:
        for table in _tables(admin, "bank"):
            columns = _columns(admin, table)
            assert _writes(conn, table, columns) == ["INSERT", "UPDATE", "DELETE"], table.strings
            assert not _allowed(conn, sql.SQL("DROP TABLE {}").format(table)), f"bank_filler may drop {table.strings}"
            assert not _allowed(conn, sql.SQL("ALTER TABLE {} ADD COLUMN zz_probe int").format(table))
            assert not _allowed(conn, sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(table))
        for table in _tables(admin, "fraud_truth"):
            assert _writes(conn, table, _columns(admin, table)) == ["INSERT"], f"ground truth {table.strings} not append-only"
            assert not _allowed(conn, sql.SQL("DROP TABLE {}").format(table))
        assert not _allowed(conn, "CREATE ROLE zz_privilege_probe LOGIN")
        assert not _allowed(conn, "ALTER ROLE bank_filler SUPERUSER")
        assert not _allowed(conn, "SELECT 1 FROM cdc.heartbeat")
        assert _creates(conn, _schemas(admin)) == []
    finally:
        conn.close()


def test_bank_reader_cannot_write(stack: Stack, admin) -> None:
    conn = _connect(stack, "bank_reader")
    try:
        assert _allowed(conn, "SELECT count(*) FROM bank.card")
        for table in _tables(admin, "bank", "fraud_truth", "cdc"):
            assert _writes(conn, table, _columns(admin, table)) == [], f"bank_reader may write {table.strings}"
        # temporary tables only (reconciliation staging); no table in any schema, no schema
        assert _creates(conn, _schemas(admin)) == ["temp table"]
    finally:
        conn.close()


def test_only_pipeline_roles_connect_to_bank_and_airflow(stack: Stack) -> None:
    with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
        _connect(stack, "airflow", "bank").close()
    for role in PIPELINE_ROLES:
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            _connect(stack, role, "airflow").close()


def _own_client_ports(db_port: int) -> set[int]:
    """Client ports of this test process's own connections to PostgreSQL (they use the superuser)."""
    return {c.laddr.port for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == db_port}


def test_no_running_component_uses_a_superuser(stack: Stack, admin) -> None:
    db_port = int(stack.ctx.env["DB_PORT"])
    with admin.cursor() as cur:
        cur.execute("""SELECT a.usename, a.backend_type, a.application_name, a.client_port, r.rolsuper
                       FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
                       WHERE a.pid <> pg_backend_pid() AND a.backend_type IN ('client backend', 'walsender')""")
        sessions = cur.fetchall()
    own = _own_client_ports(db_port)
    others = [s for s in sessions if s[3] not in own]
    owners = {c.laddr.port: c.pid for c in psutil.net_connections(kind="tcp") if c.raddr and c.raddr.port == db_port}

    def who(port: int) -> str:
        try:
            return " ".join(psutil.Process(owners[port]).cmdline()[:4])
        except (KeyError, psutil.Error):
            return "unknown process"

    superusers = [(user, kind, app, who(port)) for user, kind, app, port, is_super in others if is_super]
    assert superusers == [], f"components connected as a superuser: {superusers}"
    users = {user for user, *_ in others}
    # the stack's running components: Airflow (metadata DB) and Debezium (snapshot/streaming)
    assert {"airflow", "debezium"} <= users, f"expected component sessions, found {sorted(users)}"
    assert users <= set(ROLE_PASSWORDS), f"unexpected login roles in use: {sorted(users - set(ROLE_PASSWORDS))}"
