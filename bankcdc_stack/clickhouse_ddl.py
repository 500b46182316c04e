"""The ClickHouse DDL of bank-cdc, for one server or for a replicated cluster, from one source.

clickhouse_init/*.sql is the single-node DDL, applied as written by the local stack and by
clickhouse-server's /docker-entrypoint-initdb.d (docker-compose.yml). For a cluster
(docker-compose.cluster.yml) every statement is rendered from that same text: `ON CLUSTER`
after each database and table name, each MergeTree-family engine made Replicated with the
server's macros (`{shard}`, `{replica}`, `{uuid}`), and the non-replicated dedup window made the
replicated one, so a consumer block retried against any replica still collapses into one.
A statement the renderer cannot place on a cluster is an error, never applied as written.

    python -m bankcdc_stack.clickhouse_ddl render --cluster bank   # print the cluster DDL
    python -m bankcdc_stack.clickhouse_ddl apply --cluster bank    # apply it (compose one-shot)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

INIT_DIR = Path(__file__).resolve().parent.parent / "clickhouse_init"
# the server's own defaults (default_replica_path, default_replica_name): `{uuid}` keeps a table
# recreated under the same name off the old one's Keeper path; ON CLUSTER shares one UUID
REPLICA_PATH = "/clickhouse/tables/{uuid}/{shard}"
REPLICA_NAME = "{replica}"

_COMMENT = re.compile(r"^\s*--.*$", re.MULTILINE)
_CLUSTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_CREATE_DATABASE = re.compile(r"^(CREATE DATABASE IF NOT EXISTS [a-z_]+)(?=\s|$)")
_CREATE_TABLE = re.compile(r"^(CREATE TABLE IF NOT EXISTS [a-z_]+\.[a-z_]+)(?=\s)")
_ALTER_TABLE = re.compile(r"^(ALTER TABLE [a-z_]+\.[a-z_]+)(?=\s)")
_ENGINE = re.compile(r"\bENGINE = (\w*)MergeTree\b(?:\(([^()]*)\))?")
_ANY_ENGINE = re.compile(r"\bENGINE\s*=")
_DEDUP_WINDOW = re.compile(r"\bnon_replicated_deduplication_window\b")


class DdlError(ValueError):
    """A statement of clickhouse_init/ that cannot be rendered for a cluster; names it and why."""


def statements(text: str) -> list[str]:
    """Statements of a SQL file: `--` comment lines dropped, split on `;` at the end of a line."""
    body = _COMMENT.sub("", text)
    return [part.strip() for part in re.split(r";\s*$", body, flags=re.MULTILINE) if part.strip()]


def _replicated_engine(match: re.Match[str]) -> str:
    family, args = match.group(1), (match.group(2) or "").strip()
    replica_args = f"'{REPLICA_PATH}', '{REPLICA_NAME}'" + (f", {args}" if args else "")
    return f"ENGINE = Replicated{family}MergeTree({replica_args})"


def render(statement: str, cluster: str | None) -> str:
    """`statement` for one server (`cluster` None: unchanged) or for every replica of `cluster`."""
    if cluster is None:
        return statement
    if not _CLUSTER_NAME.fullmatch(cluster):
        raise DdlError(f"cluster name {cluster!r} is invalid: use the name remote_servers gives the cluster")
    on_cluster = rf"\1 ON CLUSTER '{cluster}'"
    first_line = statement.splitlines()[0]
    if _CREATE_DATABASE.match(statement):
        return _CREATE_DATABASE.sub(on_cluster, statement, count=1)
    if _ALTER_TABLE.match(statement):
        return _ALTER_TABLE.sub(on_cluster, statement, count=1)
    if not _CREATE_TABLE.match(statement):
        raise DdlError(f"{first_line!r}: only CREATE DATABASE, CREATE TABLE and ALTER TABLE render for a cluster")
    engine = _ENGINE.search(statement)
    if len(_ANY_ENGINE.findall(statement)) != 1 or not engine:
        raise DdlError(f"{first_line!r}: a cluster table needs one MergeTree-family engine to replicate")
    if "Replicated" in engine.group(0):
        raise DdlError(f"{first_line!r}: write the single-node engine; the cluster rendering replicates it")
    rendered = _CREATE_TABLE.sub(on_cluster, statement, count=1)
    rendered = _ENGINE.sub(_replicated_engine, rendered, count=1)
    return _DEDUP_WINDOW.sub("replicated_deduplication_window", rendered)


def folder_statements(folder: Path = INIT_DIR, cluster: str | None = None) -> Iterator[str]:
    """Every statement of `folder`'s *.sql in file order, rendered for `cluster`."""
    for path in sorted(folder.glob("*.sql")):
        for statement in statements(path.read_text()):
            try:
                yield render(statement, cluster)
            except DdlError as exc:
                raise DdlError(f"{path.name}: {exc}") from None


def apply_folder(folder: Path, client_kwargs: Mapping[str, object], cluster: str | None = None) -> int:
    """Apply `folder`'s statements, rendered for `cluster`, through one clickhouse-connect client
    made from `client_kwargs`. Every statement is rendered before the first runs. Returns how many ran."""
    import clickhouse_connect

    rendered = list(folder_statements(folder, cluster))
    client = clickhouse_connect.get_client(autogenerate_session_id=False, **client_kwargs)
    try:
        for statement in rendered:
            client.command(statement)
    finally:
        client.close()
    return len(rendered)


def client_kwargs_from_env(env: Mapping[str, str]) -> dict[str, object]:
    """clickhouse-connect arguments for user `default` from CLICKHOUSE_HOST, CLICKHOUSE_PORT,
    CLICKHOUSE_SECURE, CLICKHOUSE_CA_CERT and CLICKHOUSE_PASSWORD. ValueError names a bad setting."""
    port_text = env.get("CLICKHOUSE_PORT", "").strip() or "8123"
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"CLICKHOUSE_PORT={port_text!r} is invalid: set it to ClickHouse's HTTP(S) port")
    from cdc_consumer.config import FLAGS

    secure_text = env.get("CLICKHOUSE_SECURE", "").strip().lower() or "false"
    if secure_text not in FLAGS:
        raise ValueError(f"CLICKHOUSE_SECURE={secure_text!r} is invalid: set it to true (HTTPS) or false (HTTP)")
    if not env.get("CLICKHOUSE_PASSWORD"):
        raise ValueError("CLICKHOUSE_PASSWORD is not set: give the password of ClickHouse's `default` user")
    kwargs: dict[str, object] = {"host": env.get("CLICKHOUSE_HOST", "").strip() or "127.0.0.1",
                                 "port": int(port_text), "username": "default",
                                 "password": env["CLICKHOUSE_PASSWORD"], "secure": FLAGS[secure_text]}
    ca_cert = env.get("CLICKHOUSE_CA_CERT", "").strip()
    if kwargs["secure"] and ca_cert:
        kwargs["ca_cert"] = ca_cert
    return kwargs


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bankcdc_stack.clickhouse_ddl",
                                     description="Render or apply clickhouse_init/ for one server or a cluster.")
    parser.add_argument("action", choices=["render", "apply"],
                        help="render: print the statements; apply: run them against CLICKHOUSE_HOST")
    parser.add_argument("--cluster", default=None,
                        help="the remote_servers cluster to replicate on (unset: one server, the DDL as written)")
    parser.add_argument("--dir", type=Path, default=INIT_DIR, help="the DDL folder (default: clickhouse_init/)")
    args = parser.parse_args(argv)
    from clickhouse_connect.driver.exceptions import ClickHouseError

    env = os.environ if env is None else env
    try:
        if args.action == "render":
            for statement in folder_statements(args.dir, args.cluster):
                print(f"{statement};\n")
            return 0
        count = apply_folder(args.dir, client_kwargs_from_env(env), args.cluster)
    except ValueError as exc:  # DdlError, or a bad setting: exit 2, not worth a restart
        print(f"clickhouse_ddl: {exc}", file=sys.stderr)
        return 2
    except ClickHouseError as exc:
        print(f"clickhouse_ddl: ClickHouse at {env.get('CLICKHOUSE_HOST', '127.0.0.1')} refused or failed: {exc}",
              file=sys.stderr)
        return 1
    where = f"on cluster {args.cluster}" if args.cluster else "on one server"
    print(f"clickhouse_ddl: applied {count} statements from {args.dir.name}/ {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
