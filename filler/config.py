"""Typed settings, built once from flags and environment, validated at start-up.

Every option has a flag and an environment variable (the flag wins). Database options use the
project-wide names (`DB_HOST`, ...); filler options use `FILLER_<NAME>` (e.g. `FILLER_RATE`).
A bad value raises ConfigError naming the flag and the allowed range.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from filler.errors import ConfigError

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Option:
    """One setting: its flag, environment variable, type, range and default."""

    dest: str
    flag: str
    env: str
    kind: type
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.lo is not None and self.hi is not None:
            return f"between {_num(self.lo)} and {_num(self.hi)}"
        return "a valid value"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


DB_OPTIONS = (
    Option("db_host", "--db-host", "DB_HOST", str, "127.0.0.1", "PostgreSQL host"),
    Option("db_port", "--db-port", "DB_PORT", int, 5432, "PostgreSQL port", 1, 65535),
    Option("db_name", "--db-name", "DB_NAME", str, "bank", "database name"),
    Option("db_user", "--db-user", "DB_USER", str, "bank_filler", "login role"),
    Option("db_sslmode", "--db-sslmode", "DB_SSLMODE", str, "prefer", "libpq sslmode", choices=SSL_MODES),
)
# DB_PASSWORD is read from the environment only (never a flag: it would show in `ps`)

SIM_OPTIONS = (
    Option("seed", "--seed", "FILLER_SEED", int, None,
           "random seed: the same seed and settings give the same rows (ids aside)", 0, MAX_SEED),
    Option("fraud_share", "--fraud-share", "FILLER_FRAUD_SHARE", float, 0.01,
           "share of transactions that belong to injected fraud scenarios", 0.0, 0.5),
    Option("card_close_rate", "--card-close-rate", "FILLER_CARD_CLOSE_RATE", float, 5.0,
           "cards closed per 10,000 transactions", 0.0, 1000.0),
    Option("account_close_rate", "--account-close-rate", "FILLER_ACCOUNT_CLOSE_RATE", float, 2.0,
           "accounts closed (with their cards) per 10,000 transactions", 0.0, 1000.0),
    Option("customer_close_rate", "--customer-close-rate", "FILLER_CUSTOMER_CLOSE_RATE", float, 1.0,
           "customers closed (with accounts and cards) per 10,000 transactions", 0.0, 1000.0),
    Option("terminal_close_rate", "--terminal-close-rate", "FILLER_TERMINAL_CLOSE_RATE", float, 1.0,
           "terminals closed per 10,000 transactions", 0.0, 1000.0),
    Option("delete_rate", "--delete-rate", "FILLER_DELETE_RATE", float, 1.0,
           "hard deletes (unused card or terminal, or a declined transaction) per 10,000 transactions "
           "(continuous mode only)", 0.0, 1000.0),
    Option("new_customer_rate", "--new-customer-rate", "FILLER_NEW_CUSTOMER_RATE", float, 10.0,
           "new customers (with accounts and cards) per 10,000 transactions", 0.0, 10000.0),
)

RUN_OPTIONS = (
    Option("rate", "--rate", "FILLER_RATE", float, 50.0, "target transactions per second", 0.1, 100000.0),
    Option("shard", "--shard", "FILLER_SHARD", str, "0/1",
           "K/N: this filler's share when N fillers write at once, each with its own K (0 .. N-1): it "
           "uses the customers whose id % N == K (their accounts and cards) and makes new ones so; "
           "shard 0 alone changes terminals"),
    Option("duration", "--duration", "FILLER_DURATION", float, 0.0,
           "stop after this many seconds (0 = run until SIGINT/SIGTERM)", 0.0, 31536000.0),
    Option("log_interval", "--log-interval", "FILLER_LOG_INTERVAL", float, 10.0,
           "seconds between progress log lines", 0.5, 3600.0),
)

BACKFILL_OPTIONS = (
    Option("backfill_days", "--backfill-days", "FILLER_BACKFILL_DAYS", int, 7,
           "days of history to write", 1, 3650),
    Option("txns_per_day", "--txns-per-day", "FILLER_TXNS_PER_DAY", int, 10000,
           "transactions per day of history", 1, 10_000_000),
    Option("backfill_end", "--backfill-end", "FILLER_BACKFILL_END", str, None,
           "end of the history as an ISO-8601 time with offset (default: now); fix it for "
           "reproducible runs"),
    Option("log_interval", "--log-interval", "FILLER_LOG_INTERVAL", float, 10.0,
           "seconds between progress log lines", 0.5, 3600.0),
)


@dataclass(frozen=True)
class DbSettings:
    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "bank"
    user: str = "bank_filler"
    password: str | None = field(default=None, repr=False)
    sslmode: str = "prefer"

    def dsn_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(host=self.host, port=self.port, dbname=self.name, user=self.user,
                                      sslmode=self.sslmode, connect_timeout=5,
                                      application_name="bank-cdc-filler")
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def describe(self) -> str:
        """Where the filler writes, as user@host:port/db; never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.name}"


@dataclass(frozen=True)
class SimSettings:
    """What the simulated bank does (shared by continuous and backfill modes)."""

    seed: int | None = None
    fraud_share: float = 0.01
    card_close_rate: float = 5.0
    account_close_rate: float = 2.0
    customer_close_rate: float = 1.0
    terminal_close_rate: float = 1.0
    delete_rate: float = 1.0
    new_customer_rate: float = 10.0


@dataclass(frozen=True)
class Shard:
    """Which customers (with their accounts and cards) one of several fillers at once owns."""

    index: int = 0
    count: int = 1

    def owns(self, customer_id: int) -> bool:
        return customer_id % self.count == self.index

    @property
    def owns_terminals(self) -> bool:
        return self.index == 0

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


MAX_SHARDS = 1024


def parse_shard(raw: str, source: str = "--shard") -> Shard:
    try:
        index, count = (int(part) for part in raw.split("/"))
    except ValueError:
        raise ConfigError(f"{source} must be K/N, e.g. 0/2 and 1/2 for two fillers (got {raw!r})") from None
    if not 1 <= count <= MAX_SHARDS or not 0 <= index < count:
        raise ConfigError(f"{source} must be K/N with 1 <= N <= {MAX_SHARDS} and 0 <= K < N (got {raw!r})")
    return Shard(index, count)


@dataclass(frozen=True)
class RunSettings:
    db: DbSettings
    sim: SimSettings
    rate: float = 50.0
    shard: Shard = Shard()
    duration: float = 0.0
    log_interval: float = 10.0


@dataclass(frozen=True)
class BackfillSettings:
    db: DbSettings
    sim: SimSettings
    backfill_days: int = 7
    txns_per_day: int = 10000
    backfill_end: dt.datetime | None = None
    log_interval: float = 10.0


@dataclass
class _Reader:
    """Resolves options from parsed flags (argparse namespace dict) then the environment."""

    flags: Mapping[str, Any]
    env: Mapping[str, str]
    values: dict[str, Any] = field(default_factory=dict)

    def read(self, options: tuple[Option, ...]) -> dict[str, Any]:
        out = {}
        for opt in options:
            raw = self.flags.get(opt.dest)
            source = opt.flag
            if raw is None and self.env.get(opt.env, "") != "":
                raw, source = self.env[opt.env], f"{opt.env} ({opt.flag})"
            out[opt.dest] = opt.default if raw is None else _convert(opt, raw, source)
        return out


def _convert(opt: Option, raw: Any, source: str) -> Any:
    def bad() -> ConfigError:
        return ConfigError(f"{source} must be {opt.allowed()} (got {raw!r})")

    if opt.kind is str:
        value = str(raw).strip()
        if opt.choices and value not in opt.choices:
            raise bad()
        if not value:
            raise ConfigError(f"{source} must not be empty")
        return value
    try:
        value = opt.kind(raw)
    except (TypeError, ValueError):
        raise bad() from None
    if isinstance(value, float) and value != value:  # NaN
        raise bad()
    if opt.lo is not None and value < opt.lo or opt.hi is not None and value > opt.hi:
        raise bad()
    return value


def _db(reader: _Reader) -> DbSettings:
    v = reader.read(DB_OPTIONS)
    return DbSettings(host=v["db_host"], port=v["db_port"], name=v["db_name"], user=v["db_user"],
                      password=reader.env.get("DB_PASSWORD"), sslmode=v["db_sslmode"])


def _sim(reader: _Reader) -> SimSettings:
    return SimSettings(**reader.read(SIM_OPTIONS))


def parse_time(raw: str, source: str = "--backfill-end") -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{source} must be an ISO-8601 time with offset, e.g. 2026-01-31T00:00:00+00:00 "
                          f"(got {raw!r})") from None
    if value.tzinfo is None:
        raise ConfigError(f"{source} must carry a UTC offset, e.g. 2026-01-31T00:00:00+00:00 (got {raw!r})")
    return value


def db_settings(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> DbSettings:
    return _db(_Reader(flags, os.environ if env is None else env))


def run_settings(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> RunSettings:
    reader = _Reader(flags, os.environ if env is None else env)
    values = reader.read(RUN_OPTIONS)
    shard_source = "--shard" if flags.get("shard") is not None else "FILLER_SHARD (--shard)"
    values["shard"] = parse_shard(values["shard"], shard_source)
    return RunSettings(db=_db(reader), sim=_sim(reader), **values)


def backfill_settings(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> BackfillSettings:
    reader = _Reader(flags, os.environ if env is None else env)
    values = reader.read(BACKFILL_OPTIONS)
    end = values.pop("backfill_end")
    return BackfillSettings(db=_db(reader), sim=_sim(reader),
                            backfill_end=None if end is None else parse_time(end), **values)


OPTION_GROUPS: dict[str, tuple[Option, ...]] = {
    "db": DB_OPTIONS, "sim": SIM_OPTIONS, "run": RUN_OPTIONS, "backfill": BACKFILL_OPTIONS,
}
