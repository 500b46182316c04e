"""dbt through astronomer-cosmos: the project, a profile built from the clickhouse_dwh
connection, and the record of each successful ODS build.

Profile: Cosmos' own ClickHouse mapping (cosmos.profiles.clickhouse) claims only `generic`
connections flagged with extra.clickhouse, and defaults to the native protocol on port 9000.
Our connection is the ClickHouse provider's `clickhousedb` type over HTTP (port 8123, what
chdb_http and clickhouse-server both serve), so a subclass maps that connection type. Cosmos
writes the password into the profile as an environment-variable reference
(`{{ env_var('COSMOS_CONN_CLICKHOUSEDB_PASSWORD') }}`) set only for the dbt process; it never
appears in the DAG, the profile file or the logs.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior
from cosmos.profiles.base import DbtProfileConfigVars
from cosmos.profiles.clickhouse import ClickhouseUserPasswordProfileMapping

from bankcdc_ops.settings import CLICKHOUSE_CONN_ID, ODS_BUILD_TABLE, dbt_project_dir

log = logging.getLogger(__name__)

DBT_PROFILE = "bank_cdc"         # dbt_project.yml's profile
DBT_TARGET = "airflow"


class ClickHouseHttpProfileMapping(ClickhouseUserPasswordProfileMapping):
    """dbt-clickhouse profile (HTTP driver) from an Airflow `clickhousedb` connection."""

    airflow_connection_type = "clickhousedb"
    default_port = 8123
    required_fields = ["host", "user", "schema"]
    airflow_param_mapping = {
        "host": "host",
        "user": "login",
        "password": "password",
        "port": "port",
        "schema": "schema",
        "secure": "extra.secure",
    }

    def _set_default_param(self, profile_dict: dict[str, Any]) -> dict[str, Any]:
        profile_dict.setdefault("driver", "http")
        return super()._set_default_param(profile_dict)


# the same session settings as dbt/profiles.yml (which dbt users run by hand)
PROFILE_ARGS: dict[str, Any] = {
    "driver": "http",
    "schema": "ods",
    "connect_timeout": 10,
    "send_receive_timeout": 600,
    # lightweight DELETE of the delete+insert incremental strategy, synchronous
    "custom_settings": {"mutations_sync": 2},
}


def profile_config(conn_id: str = CLICKHOUSE_CONN_ID) -> ProfileConfig:
    return ProfileConfig(profile_name=DBT_PROFILE, target_name=DBT_TARGET,
                         profile_mapping=ClickHouseHttpProfileMapping(
                             conn_id=conn_id, profile_args=PROFILE_ARGS,
                             dbt_config_vars=DbtProfileConfigVars(send_anonymous_usage_stats=False)))


def project_config(project_dir: Path | None = None) -> ProjectConfig:
    return ProjectConfig(dbt_project_path=project_dir or dbt_project_dir())


def execution_config() -> ExecutionConfig:
    """dbt runs inside the task's process (dbtRunner): dbt-core and dbt-clickhouse are installed
    beside Airflow from the project's pinned requirements. The executable path is only what
    Cosmos checks exists when `dbt` is not on PATH (an Airflow started without the venv activated)."""
    return ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER,
                           dbt_executable_path=Path(sys.executable).with_name("dbt"))


def render_config() -> RenderConfig:
    """One task per model; the project's tests as one task after every model (TestBehavior.AFTER_ALL).

    LoadMode.DBT_LS renders from `dbt ls` with a mock profile (no connection lookup while
    parsing); Cosmos caches its output per DAG and re-runs it only when the project changes.
    """
    return RenderConfig(load_method=LoadMode.DBT_LS, invocation_mode=InvocationMode.DBT_RUNNER,
                        test_behavior=TestBehavior.AFTER_ALL, emit_datasets=False, enable_mock_profile=True)


# every model task of one DAG run reads raw up to the same instant (the run's start minus dbt's
# run_settle_s), so ODS tables, their SCD2 histories and the marts describe one moment even while
# the filler writes, and a task retried after a crash reads exactly what its first try read
# (Airflow's datetimes are UTC; the macro reads the text as UTC)
UPPER_BOUND_TEMPLATE = "{{ (dag_run.start_date - macros.timedelta(seconds=2)).strftime('%Y-%m-%d %H:%M:%S.%f') }}"


def operator_args() -> dict[str, Any]:
    """Arguments of every Cosmos dbt task: the run's shared upper bound as the dbt var upper_bound
    (see dbt/macros/cdc.sql run_upper_bound)."""
    return {"vars": {"upper_bound": UPPER_BOUND_TEMPLATE}}


def record_ods_build(dag_run_id: str, started_at: dt.datetime, models: list[str]) -> dict[str, Any]:
    """Append the successful build to monitoring.ods_build (cdc_monitoring reads its age)."""
    from bankcdc_ops.connections import clickhouse

    finished_at = dt.datetime.now(dt.timezone.utc)
    client = clickhouse()
    try:
        client.insert(ODS_BUILD_TABLE, [[finished_at, started_at, dag_run_id, models]],
                      column_names=["finished_at", "started_at", "dag_run_id", "models"])
    finally:
        client.close()
    seconds = (finished_at - started_at).total_seconds()
    log.info("ODS build of run %s recorded in %s: %d models, %.0fs", dag_run_id, ODS_BUILD_TABLE, len(models), seconds)
    return {"finished_at": finished_at.isoformat(), "seconds": seconds, "models": len(models)}
