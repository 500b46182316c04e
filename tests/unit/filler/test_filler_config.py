"""filler.config: flags beat environment, defaults, and errors that name the flag and range."""

from __future__ import annotations

import datetime as dt

import pytest

from filler import config
from filler.errors import ConfigError


def test_defaults_match_a_local_postgresql() -> None:
    s = config.run_settings({}, env={})
    assert (s.db.host, s.db.port, s.db.name, s.db.user, s.db.sslmode) == ("127.0.0.1", 5432, "bank", "bank_filler", "prefer")
    assert s.db.password is None and "password" not in s.db.dsn_kwargs()
    assert s.rate == 50.0 and s.duration == 0.0 and s.sim.seed is None and s.sim.fraud_share == 0.01


def test_environment_then_flags() -> None:
    env = {"DB_HOST": "db.internal", "DB_PORT": "6543", "DB_PASSWORD": "", "FILLER_RATE": "250", "FILLER_SEED": "9"}
    s = config.run_settings({"rate": "300"}, env=env)
    assert s.db.host == "db.internal" and s.db.port == 6543 and s.rate == 300.0 and s.sim.seed == 9
    assert s.db.password == "" and "password" not in s.db.dsn_kwargs()  # empty password: trust auth
    assert config.run_settings({}, env={"DB_PASSWORD": "pw"}).db.dsn_kwargs()["password"] == "pw"


@pytest.mark.parametrize("flags, env, message", [
    ({"rate": "0"}, {}, "--rate must be between 0.1 and 100000 (got '0')"),
    ({"rate": "nan"}, {}, "--rate must be between 0.1 and 100000"),
    ({"fraud_share": "0.51"}, {}, "--fraud-share must be between 0 and 0.5"),
    ({"seed": "1.5"}, {}, "--seed must be between 0 and 9223372036854775807"),
    ({"delete_rate": "-1"}, {}, "--delete-rate must be between 0 and 1000"),
    ({}, {"DB_PORT": "0"}, "DB_PORT (--db-port) must be between 1 and 65535"),
    ({}, {"DB_SSLMODE": "maybe"}, "DB_SSLMODE (--db-sslmode) must be one of disable, allow, prefer"),
    ({"db_host": " "}, {}, "--db-host must not be empty"),
])
def test_bad_values_name_the_flag_and_range(flags, env, message) -> None:
    with pytest.raises(ConfigError) as err:
        config.run_settings(flags, env=env)
    assert message in str(err.value)


def test_backfill_settings_and_end_time() -> None:
    s = config.backfill_settings({"backfill_days": "3", "txns_per_day": "500",
                                  "backfill_end": "2026-01-10T00:00:00Z"}, env={})
    assert (s.backfill_days, s.txns_per_day) == (3, 500)
    assert s.backfill_end == dt.datetime(2026, 1, 10, tzinfo=dt.timezone.utc)
    with pytest.raises(ConfigError, match="--backfill-end must carry a UTC offset"):
        config.backfill_settings({"backfill_end": "2026-01-10T00:00:00"}, env={})
    with pytest.raises(ConfigError, match="--backfill-days must be between 1 and 3650"):
        config.backfill_settings({"backfill_days": "4000"}, env={})
    with pytest.raises(ConfigError, match="FILLER_TXNS_PER_DAY \\(--txns-per-day\\) must be between 1 and 10000000"):
        config.backfill_settings({}, env={"FILLER_TXNS_PER_DAY": "0"})


def test_cli_exit_code_2_names_the_flag(capsys) -> None:
    from filler.cli import main

    assert main(["run", "--rate", "-3"]) == 2
    assert "--rate must be between 0.1 and 100000" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "backfill" in capsys.readouterr().out


def test_db_sslmode_reaches_libpq_and_pgsslrootcert_is_left_to_it() -> None:
    kwargs = config.run_settings({}, env={"DB_SSLMODE": "verify-full"}).db.dsn_kwargs()
    assert kwargs["sslmode"] == "verify-full"
    assert not {"sslrootcert", "sslcert", "sslkey"} & set(kwargs)  # libpq reads PGSSLROOTCERT itself
