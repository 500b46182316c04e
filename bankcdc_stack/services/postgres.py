"""PostgreSQL: Debian's server, a cluster of our own under the state dir, logical WAL."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from bankcdc_stack.errors import ConfigError, MissingDependencyError, ServiceFailedError
from bankcdc_stack.pgauth import scram_sha256_verifier
from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service, log
from bankcdc_stack.settings import HOST

MIN_MAJOR = 15
# login roles of the pipeline -> the secret holding each one's password
ROLE_PASSWORDS = {
    "bank_filler": "FILLER_DB_PASSWORD",
    "debezium": "DEBEZIUM_DB_PASSWORD",
    "bank_reader": "BANK_READER_DB_PASSWORD",
    "airflow": "AIRFLOW_DB_PASSWORD",
}
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "wal_level": "logical",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    # a replication slot whose consumer is gone may not fill the disk
    "max_slot_wal_keep_size": "4GB",
    "wal_sender_timeout": "60s",
    "shared_buffers": "256MB",
    # a backfill's WAL does not force checkpoints: after each, the first change to a page logs it whole
    "max_wal_size": "4GB",
    "max_connections": "200",
    "synchronous_commit": "on",
    "log_line_prefix": "%m [%p] %q%u@%d ",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}


def find_bindir() -> Path:
    """The newest installed PostgreSQL server (>= 15)."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    usable = [p for p in candidates if p.parent.name.isdigit() and int(p.parent.name) >= MIN_MAJOR]
    if usable:
        return usable[-1]
    found = shutil.which("pg_config")
    if found:
        bindir = Path(subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "postgres").exists():
            return bindir
    raise MissingDependencyError(
        f"PostgreSQL server >= {MIN_MAJOR} not found: install it with "
        "`sudo apt-get install -y postgresql` (./stack does this for you)"
    )


# where the cluster lives when the state dir is in a folder the postgres OS user cannot enter
# (a clone in root's 0700 home): one folder per state dir, named after its path
SHARED_ROOT = Path("/var/lib/bankcdc")


def reachable_by(user: str, path: Path) -> bool:
    """Can `user` enter every folder from / down to `path` (the execute bit that applies to it)?"""
    import grp
    import pwd

    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            break
        mode = folder.stat()
        if mode.st_uid == entry.pw_uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid in groups:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


class PostgresService(Service):
    name = "postgres"
    start_timeout = 60.0

    @property
    def root(self) -> Path:
        """<state dir>/postgres, or a folder under /var/lib/bankcdc when the postgres OS user
        cannot reach the state dir (PostgreSQL runs as that user when the stack runs as root)."""
        own = self.settings.state_dir / "postgres"
        user = self._os_user()
        if user is None or reachable_by(user, own):
            return own
        digest = hashlib.sha256(str(self.settings.state_dir.resolve()).encode()).hexdigest()[:12]
        return SHARED_ROOT / digest / "postgres"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def ports(self) -> list[tuple[int, str]]:
        return [(self.settings.db_port, "DB_PORT")]

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed("postgres")]

    def check_installed(self) -> None:
        find_bindir()

    def _os_user(self) -> str | None:
        """PostgreSQL refuses to run as root: as root, run it as the `postgres` OS user."""
        if os.geteuid() != 0:
            return None
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise MissingDependencyError(
                "running as root needs the `postgres` OS user to own the cluster: "
                "install Debian's postgresql package (it creates it) or run the stack as a normal user"
            ) from exc
        return "postgres"

    def _chown(self, path: Path) -> None:
        user = self._os_user()
        if user:
            shutil.chown(path, user, user)

    def prepare(self) -> None:
        bindir = find_bindir()
        if not self.root.is_relative_to(self.settings.state_dir):
            log.info("postgres: the postgres OS user cannot enter %s (a private folder); the cluster lives in "
                     "%s instead", self.settings.state_dir, self.root)
            SHARED_ROOT.mkdir(mode=0o755, exist_ok=True)
            self.root.parent.mkdir(mode=0o755, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.root)
        self._chown(self.socket_dir)
        if (self.data_dir / "PG_VERSION").exists():
            return
        log.info("postgres: initialising a new cluster in %s", self.data_dir)
        pwfile = self.root / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.ctx.secrets["POSTGRES_PASSWORD"] + "\n")
        self._chown(pwfile)
        try:
            result = subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--pwfile", str(pwfile),
                 "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
                capture_output=True, text=True, user=self._os_user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ServiceFailedError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        (self.data_dir / "pg_hba.conf").write_text(
            "# bank-cdc local cluster: loopback only, passwords always\n"
            "local   all          all                    scram-sha-256\n"
            f"host    all          all    {HOST}/32   scram-sha-256\n"
            f"host    replication  all    {HOST}/32   scram-sha-256\n"
        )

    def launch(self) -> None:
        argv = [str(find_bindir() / "postgres"), "-D", str(self.data_dir),
                "-c", f"port={self.settings.db_port}", "-c", f"unix_socket_directories={self.socket_dir}"]
        for key, value in SERVER_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        self.processes()[0].spawn(argv, env=self.ctx.child_env(), cwd=self.root, user=self._os_user())

    def stop_signal(self, proc: ManagedProcess) -> int:
        return signal.SIGINT  # "fast" shutdown: don't wait for clients to disconnect

    def connect(self, dbname: str = "postgres"):
        return psycopg2.connect(
            host=HOST, port=self.settings.db_port, user="postgres",
            password=self.ctx.secrets["POSTGRES_PASSWORD"], dbname=dbname, connect_timeout=3,
        )

    def health(self) -> Health:
        try:
            with self.connect() as conn, conn.cursor() as cur:
                cur.execute("SHOW wal_level")
                wal_level = cur.fetchone()[0]
            conn.close()
        except psycopg2.Error as exc:
            return Health(False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        if wal_level != "logical":
            return Health(False, f"wal_level={wal_level}, expected logical")
        return Health(True, "accepting connections, wal_level=logical")

    def after_healthy(self) -> None:
        """Databases, schema.sql, role passwords: all idempotent."""
        conn = self.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in ("bank", "airflow"):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = 'airflow'")
            if cur.fetchone() is None:
                cur.execute("CREATE ROLE airflow LOGIN")
            # Airflow's metadata user owns its database and nothing else (docker/postgres/10-bank-cdc.sh)
            cur.execute("ALTER ROLE airflow LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION")
            cur.execute("ALTER DATABASE airflow OWNER TO airflow")
            cur.execute("REVOKE CONNECT, TEMPORARY ON DATABASE airflow FROM PUBLIC")
        conn.close()
        self.apply_schema()
        conn = self.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            for role, secret in ROLE_PASSWORDS.items():
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cur.fetchone() is not None:
                    verifier = scram_sha256_verifier(self.ctx.secrets[secret])
                    cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), (verifier,))
        conn.close()
        self.install_token_key()

    def install_token_key(self) -> None:
        """Give PostgreSQL BANK_TOKEN_KEY, the key of the PAN and national id tokens (schema.sql,
        bank_vault). A key different from the installed one is refused, not rotated."""
        filled = self._call_vault("install_token_key", self.ctx.secrets["BANK_TOKEN_KEY"])
        if filled:
            log.info("postgres: gave %d rows written before card-data protection their tokens", filled)

    def rotate_token_key(self, new_key: str) -> int:
        """Tokenise with `new_key` from now on and re-tokenise every card and customer, in one
        transaction. Returns the rows re-tokenised."""
        return self._call_vault("rotate_token_key", new_key)

    def _call_vault(self, function: str, key: str) -> int:
        conn = self.connect(dbname="bank")
        try:
            with conn, conn.cursor() as cur:
                # a failing statement would otherwise be logged with the key in it
                cur.execute("SET LOCAL log_min_error_statement = panic")
                cur.execute(sql.SQL("SELECT bank_vault.{}(%s)").format(sql.Identifier(function)), (key,))
                return int(cur.fetchone()[0])
        except psycopg2.Error as exc:
            hint = f" ({exc.diag.message_hint})" if exc.diag.message_hint else ""
            raise ConfigError(f"{exc.diag.message_primary or exc}{hint}") from None
        finally:
            conn.close()

    def apply_schema(self) -> None:
        schema = self.settings.repo_root / "schema.sql"
        if not schema.exists():
            return
        env = dict(self.ctx.env, PGPASSWORD=self.ctx.secrets["POSTGRES_PASSWORD"])
        result = subprocess.run(
            [str(find_bindir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST,
             "-p", str(self.settings.db_port), "-U", "postgres", "-d", "bank", "-f", str(schema)],
            capture_output=True, text=True, env=env,
        )
        if result.returncode != 0:
            raise ServiceFailedError(f"applying {schema} failed:\n{result.stderr.strip()}")
