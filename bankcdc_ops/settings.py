"""Names shared by the DAGs and their logic: connection ids, Airflow Variables, project paths.

Connections are looked up by id only (AIRFLOW_CONN_<ID> in both run modes, see
bankcdc_stack.environment and docker-compose.yml); no credential is ever read here.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from bankcdc_ops.errors import ParamError

POSTGRES_CONN_ID = "postgres_bank"
CLICKHOUSE_CONN_ID = "clickhouse_dwh"            # transformer: reads raw, owns stg/ods/marts, appends monitoring
CLICKHOUSE_RAW_CONN_ID = "clickhouse_raw_loader"  # loader: the only role that writes raw (pg_to_ch)
CLICKHOUSE_ANALYST_CONN_ID = "clickhouse_analyst"  # analyst: the fraud pages in the Airflow UI
KAFKA_CONN_ID = "kafka_default"
CONNECT_CONN_ID = "kafka_connect"
AIRFLOW_API_CONN_ID = "airflow_api"              # Airflow's REST API, to write the notes of DAG runs

# dbt_incremental starts a run this often, never two at once; dbt builds share one pool slot
DBT_RUN_INTERVAL = dt.timedelta(seconds=30)
DBT_POOL = "dbt"

MONITORING_TABLE = "monitoring.cdc_lag"
ODS_BUILD_TABLE = "monitoring.ods_build"


@dataclass(frozen=True)
class Threshold:
    """A limit read from an Airflow Variable at run time, with the default used when it is unset."""

    variable: str
    default: float
    unit: str
    description: str


THRESHOLDS: dict[str, Threshold] = {t.variable: t for t in (
    Threshold("cdc_max_slot_lag_bytes", 256 * 1024**2, "bytes",
              "WAL a replication slot may hold back (current WAL LSN - confirmed flush LSN)"),
    Threshold("cdc_max_consumer_lag_messages", 100_000, "messages",
              "Kafka messages a consumer-group partition may be behind the log end"),
    Threshold("cdc_max_freshness_seconds", 1800, "seconds",
              "age of the newest change loaded into a raw table (commit time in PostgreSQL to now)"),
    Threshold("cdc_max_end_to_end_seconds", 120, "seconds",
              "age of the newest Debezium heartbeat seen in ClickHouse, and its commit-to-load time"),
    Threshold("cdc_max_ods_build_age_seconds", 1800, "seconds",
              "time since the last successful dbt_incremental build"),
    Threshold("cdc_max_ods_source_age_seconds", 900, "seconds",
              "age of the source instant the last successful dbt_incremental build showed"),
)}

RECONCILIATION_SETTLE_VARIABLE = "reconciliation_settle_seconds"
RECONCILIATION_SETTLE_DEFAULT = 120.0
"""Rows changed in PostgreSQL after the source instant minus this are in flight: not compared."""


def repo_root() -> Path:
    """The bank-cdc checkout: $BANKCDC_HOME, else the folder this package was installed from
    (editable install), else the working directory (the production image's WORKDIR)."""
    explicit = os.environ.get("BANKCDC_HOME", "").strip()
    if explicit:
        return Path(explicit).resolve()
    here = Path(__file__).resolve().parents[1]
    if (here / "dbt" / "dbt_project.yml").exists():
        return here
    return Path.cwd()


def dbt_project_dir() -> Path:
    """$DBT_PROJECT_DIR, else <repo>/dbt."""
    explicit = os.environ.get("DBT_PROJECT_DIR", "").strip()
    return Path(explicit).resolve() if explicit else repo_root() / "dbt"


def debezium_dir() -> Path:
    return repo_root() / "debezium"


def read_threshold(variable: str) -> float:
    """The threshold's Airflow Variable as a number, or its default when unset."""
    spec = THRESHOLDS[variable]
    return read_number_variable(variable, spec.default, f"{spec.unit}: {spec.description}")


def read_number_variable(variable: str, default: float, meaning: str) -> float:
    """A non-negative number from an Airflow Variable (read at run time, never at parse time)."""
    from airflow.sdk import Variable

    raw = Variable.get(variable, default=None)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ParamError(f"Airflow Variable {variable}={raw!r} is not a number >= 0: set it to {meaning}, "
                         f"or delete it to use the default {default:g}")
    return value
