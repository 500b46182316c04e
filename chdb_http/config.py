"""The endpoint's settings: command line over environment over defaults, validated at start-up."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_USERS_FILE = Path(__file__).resolve().parent.parent / "clickhouse_init" / "users.xml"


class ConfigError(ValueError):
    """A bad setting; the message names it and how to fix it."""


@dataclass(frozen=True)
class EndpointConfig:
    host: str
    port: int
    data_dir: Path
    users_file: Path
    log_level: str
    check_only: bool = False


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chdb-http",
        description="Serve ClickHouse's HTTP interface from one chDB data directory (local stand-in for clickhouse-server).",
    )
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", default=None, help="port to listen on (default $CLICKHOUSE_PORT or 8123)")
    p.add_argument("--data-dir", default=None, help="chDB data directory, owned by this process (default $CHDB_DATA_DIR)")
    p.add_argument(
        "--users-file",
        default=None,
        help=f"clickhouse-server users.xml (default $CLICKHOUSE_USERS_FILE or {REPO_USERS_FILE})",
    )
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING or ERROR (default $CHDB_HTTP_LOG_LEVEL or INFO)")
    p.add_argument("--check-config", action="store_true",
                   help="validate the settings and the users file, print them (never a password) and exit")
    return p


def load_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> EndpointConfig:
    """Resolve and validate the configuration."""
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    host = args.host or "127.0.0.1"
    port_text = args.port or env.get("CLICKHOUSE_PORT") or "8123"
    try:
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigError(f"port {port_text!r} is not a TCP port: pass --port N or set CLICKHOUSE_PORT to 1..65535") from None
    data_dir_text = args.data_dir or env.get("CHDB_DATA_DIR")
    if not data_dir_text:
        raise ConfigError("no data directory: pass --data-dir PATH or set CHDB_DATA_DIR")
    data_dir = Path(data_dir_text).expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"CHDB_DATA_DIR / --data-dir {data_dir} exists and is not a directory")
    users_file = Path(args.users_file or env.get("CLICKHOUSE_USERS_FILE") or REPO_USERS_FILE).expanduser()
    if not users_file.is_file():
        raise ConfigError(f"users file {users_file} does not exist: pass --users-file or set CLICKHOUSE_USERS_FILE")
    level = (args.log_level or env.get("CHDB_HTTP_LOG_LEVEL") or "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"log level {level!r}: use --log-level / CHDB_HTTP_LOG_LEVEL DEBUG, INFO, WARNING or ERROR")
    return EndpointConfig(host, port, data_dir, users_file, level, args.check_config)
