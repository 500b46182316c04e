"""Fixtures for the filler's integration tests: a fresh database (schema.sql applied, a token key
installed) per test module on the stack's PostgreSQL, and a throwaway login role that is a member of bank_filler,
so the filler runs with exactly bank_filler's privileges without touching that role.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psycopg2
import pytest
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

REPO = Path(__file__).resolve().parents[3]
SCHEMA = REPO / "schema.sql"
# one token key for every test database of the session, so two fillers' output can be compared
TOKEN_KEY = secrets.token_urlsafe(32)



def admin_connect(dsn: str, dbname: str | None = None):
    params = parse_dsn(dsn)
    if dbname:
        params["dbname"] = dbname
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn


def psql_binary() -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))
    return str(found[-1]) if found else shutil.which("psql")


def apply_schema(dsn: str, dbname: str) -> subprocess.CompletedProcess:
    """Apply schema.sql the way the stack does: psql -v ON_ERROR_STOP=1 -f schema.sql."""
    params = parse_dsn(dsn)
    env = dict(os.environ)
    if params.get("password"):
        env["PGPASSWORD"] = params["password"]
    argv = [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", params.get("host", "127.0.0.1"),
            "-p", str(params.get("port", 5432)), "-U", params.get("user", "postgres"), "-d", dbname,
            "-f", str(SCHEMA)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


@dataclass
class FillerDb:
    """A fresh database with schema.sql applied, and how to run the filler against it."""

    admin_dsn: str
    name: str
    role: str
    password: str
    env: dict[str, str] = field(default_factory=dict)

    def admin(self):
        return admin_connect(self.admin_dsn, self.name)

    def query(self, q: str, args: tuple = ()) -> list[tuple]:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(q, args or None)
                return cur.fetchall()
        finally:
            conn.close()

    def scalar(self, q: str, args: tuple = ()):
        return self.query(q, args)[0][0]

    def filler(self, *args: str, timeout: float = 120, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "filler", *args], capture_output=True, text=True,
                              env={**self.env, **(extra_env or {})}, timeout=timeout, cwd=REPO)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "filler", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, cwd=REPO)


def _create(admin_dsn: str, label: str) -> FillerDb:
    name = f"filler_test_{label}_{uuid.uuid4().hex[:8]}"
    role = f"{name}_login"
    password = secrets.token_hex(12)
    conn = admin_connect(admin_dsn)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    result = apply_schema(admin_dsn, name)
    assert result.returncode == 0, result.stderr
    conn = admin_connect(admin_dsn, name)
    with conn.cursor() as cur:
        cur.execute("SELECT bank_vault.install_token_key(%s)", (TOKEN_KEY,))
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s IN ROLE bank_filler").format(sql.Identifier(role)),
                    (password,))
    conn.close()
    params = parse_dsn(admin_dsn)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DB_", "FILLER_"))}
    env.update(DB_HOST=params.get("host", "127.0.0.1"), DB_PORT=str(params.get("port", 5432)), DB_NAME=name,
               DB_USER=role, DB_PASSWORD=password, DB_SSLMODE="prefer", FILLER_LOG_INTERVAL="1",
               PYTHONPATH=str(REPO))
    return FillerDb(admin_dsn, name, role, password, env)


def _drop(db: FillerDb) -> None:
    conn = admin_connect(db.admin_dsn)
    with conn.cursor() as cur:
        for _ in range(20):
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (db.name,))
            try:
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db.name)))
                break
            except psycopg2.errors.ObjectInUse:
                time.sleep(0.2)
        cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(db.role)))
    conn.close()


@pytest.fixture(scope="module")
def make_filler_db(pg_admin_dsn: str) -> Iterator:
    """Factory of fresh databases; all dropped when the module ends."""
    made: list[FillerDb] = []

    def make(label: str = "db") -> FillerDb:
        db = _create(pg_admin_dsn, label)
        made.append(db)
        return db

    yield make
    for db in made:
        _drop(db)
