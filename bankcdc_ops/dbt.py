"""What the dbt DAGs run: dbt_incremental's one build per run and dbt_test_suite's whole suite.

dbt connects with dbt/profiles.yml (the same profile as dbt by hand), its variables filled from
the clickhouse_dwh connection for the dbt invocation only; the password never reaches a file or
a log.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, Callable

from bankcdc_ops.dbt_build import (FULL_TEST_SUITE, INCREMENTAL_BUILD, MODELS_XCOM_KEY, BuildOutcome,
                                   previous_build, profile_variables, record_build, run_build, run_settings,
                                   trust_variables)
from bankcdc_ops.errors import DbtBuildError, SourceInstantPending
from bankcdc_ops.run_notes import set_run_note
from bankcdc_ops.settings import CLICKHOUSE_CONN_ID, debezium_dir

if TYPE_CHECKING:
    from bankcdc_ops.source_instant import SourceInstant

log = logging.getLogger(__name__)


def profile_environment(conn_id: str = CLICKHOUSE_CONN_ID,
                        get_connection: Callable[[str], Any] | None = None) -> dict[str, str]:
    """dbt/profiles.yml's variables from the ClickHouse connection (HTTP interface; HTTPS with its
    extra `secure`, trusting its extra `ca_cert`, see bankcdc_ops.connections.clickhouse_tls; a
    replicated cluster with its extra `cluster`, docker-compose.cluster.yml).
    `get_connection` looks the connection up (default: the Task SDK's, inside a task)."""
    from bankcdc_ops.connections import clickhouse_tls

    if get_connection is None:
        from airflow.sdk import Connection

        get_connection = Connection.get
    conn = get_connection(conn_id)
    extra = conn.extra_dejson or {}
    secure, ca_cert = clickhouse_tls(extra, conn_id)
    return {**profile_variables(conn.host or "localhost", conn.port or 8123, conn.login or "", conn.password or "",
                                secure, str(extra.get("cluster") or "").strip()), **trust_variables(ca_cert)}


def incremental_build(context: dict[str, Any]) -> dict[str, Any]:
    """dbt_incremental: choose the run's source instant, build every model once as of it, record it.

    Skips (nothing to build yet) while a stream has reported nothing; raises DbtBuildError naming
    every failed model and test."""
    from airflow.exceptions import AirflowSkipException

    from bankcdc_ops import source_instant
    from bankcdc_ops.connections import clickhouse, kafka_config
    from cdc_consumer.config import ConsumerSettings
    from confluent_kafka.admin import AdminClient

    ti, run_id = context["ti"], context["run_id"]
    started_at = dt.datetime.now(dt.timezone.utc)
    ch = clickhouse()
    try:
        previous = previous_build(ch)
        admin = AdminClient({**kafka_config(), "socket.timeout.ms": 10000})
        try:
            instant = source_instant.choose(ch, admin, source_instant.connectors_from(debezium_dir()),
                                            ConsumerSettings.from_env().group_id, previous.source_upper_bound)
        except SourceInstantPending as exc:
            raise AirflowSkipException(f"warming up, nothing to build yet: {exc}") from exc
        log.info("%s", instant.describe())
        for stream in instant.streams:
            log.info("  %s", stream.describe())
        env = {**profile_environment(), **run_settings(instant.source_upper_bound, instant.loaded_upper_bound,
                                                       previous.loaded_upper_bound, test_scope="run")}
        outcome = run_build(INCREMENTAL_BUILD, env, lambda models: ti.xcom_push(key=MODELS_XCOM_KEY, value=models),
                            label=_label(run_id))
        record_build(ch, run_id, started_at, outcome, instant.source_upper_bound, instant.loaded_upper_bound)
    finally:
        ch.close()
    set_run_note(context["dag"].dag_id, run_id, _note(instant, outcome))
    for name, result in sorted(outcome.models.items()):
        log.info("%-8s %s: %s", result.status.upper(), name, result.message)
    _raise_on_failure(outcome)
    log.info("%s; source instant %s recorded in monitoring.ods_build", outcome.summary(),
             instant.source_upper_bound.isoformat())
    return {"source_instant": instant.source_upper_bound.isoformat(),
            "loaded_upper_bound": instant.loaded_upper_bound.isoformat(),
            "limited_by": instant.limited_by.describe(), "dbt_seconds": round(outcome.seconds, 2),
            "cpu_seconds": round(outcome.cpu_seconds, 2), "models": len(outcome.models)}


def full_test_suite(context: dict[str, Any]) -> dict[str, Any]:
    """dbt_test_suite: every test of the project over whole tables; raises naming each failed test."""
    env = {**profile_environment(), **run_settings(None, None, None, test_scope="full")}
    outcome = run_build(FULL_TEST_SUITE, env, lambda _models: None, label=_label(context["run_id"]))
    _raise_on_failure(outcome)
    log.info("%s", outcome.summary())
    return {"dbt_seconds": round(outcome.seconds, 2), "cpu_seconds": round(outcome.cpu_seconds, 2)}


def _note(instant: SourceInstant, outcome: BuildOutcome) -> str:
    """The run's note in the UI: what the run shows of the source, and how the build went."""
    return (f"**Source instant T: {instant.source_upper_bound:%Y-%m-%d %H:%M:%S.%f} UTC.** ODS and the fraud marts "
            f"of this run show every change committed in PostgreSQL by then.\n\n"
            f"Limited by {instant.limited_by.describe()}.\n\n{outcome.summary()}.")


def _raise_on_failure(outcome: BuildOutcome) -> None:
    if not outcome.ok:
        raise DbtBuildError(outcome.summary())


def _label(run_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in run_id)[:80]
