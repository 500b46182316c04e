"""The DAG folder imports cleanly, without connection lookups, and each DAG has its expected tasks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import DAGS, REPO, airflow_cli

pytestmark = pytest.mark.integration

SCRIPT = """
import json, os
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        "fileloc": os.path.basename(dag.fileloc), "tags": sorted(dag.tags), "doc_md": dag.doc_md or "",
        "max_active_runs": dag.max_active_runs, "schedule": str(dag.schedule),
        "catchup": dag.catchup, "tasks": sorted(t.task_id for t in dag.tasks),
        "default_retries": (dag.default_args or {}).get("retries"),
        "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        "in_triggerer": sorted(t.task_id for t in dag.tasks if getattr(t, "start_from_trigger", False)),
        "pools": {t.task_id: t.pool for t in dag.tasks},
    }
print("DAGBAG_JSON=" + json.dumps({"errors": {k: v for k, v in bag.import_errors.items()}, "dags": dags}))
"""


def _ancestors(upstream: dict[str, list[str]], task_id: str) -> set[str]:
    seen: set[str] = set()
    pending = list(upstream[task_id])
    while pending:
        task = pending.pop()
        if task not in seen:
            seen.add(task)
            pending.extend(upstream[task])
    return seen


def _models() -> list[str]:
    return sorted(p.stem for p in (REPO / "dbt" / "models").rglob("*.sql"))


@pytest.fixture(scope="module")
def dagbag(stack: object, stack_env: dict[str, str]) -> dict:
    """Parse the DAG folder as the dag-processor does, with the stack's Airflow environment minus
    every AIRFLOW_CONN_*: parsing must not look a connection up."""
    from bankcdc_stack.stack import Stack

    env = Stack(stack_env).services["airflow"].env()
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW_CONN_")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("DAGBAG_JSON=")]
    assert out.returncode == 0 and line, out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads(line[-1].split("=", 1)[1])


def test_dag_folder_imports_without_errors(dagbag: dict) -> None:
    assert dagbag["errors"] == {}
    assert set(dagbag["dags"]) == {"dbt_incremental", "dbt_test_suite", "cdc_monitoring", "pg_to_ch", "reconciliation"}


def test_dags_are_documented_tagged_and_named_after_their_file(dagbag: dict) -> None:
    for dag_id, dag in dagbag["dags"].items():
        assert dag["fileloc"] == f"{dag_id}.py", "file name = dag_id"
        assert "bank-cdc" in dag["tags"] and len(dag["tags"]) >= 2, dag_id
        assert dag["doc_md"].strip().startswith("###"), f"{dag_id}: doc_md shown in the UI"
        assert dag["default_retries"] is not None, f"{dag_id}: retries set explicitly (default_args)"
        assert dag["catchup"] is False, dag_id


def test_dbt_incremental_is_one_build_and_one_triggerer_task_per_model(dagbag: dict) -> None:
    dag = dagbag["dags"]["dbt_incremental"]
    models = _models()
    assert len(models) >= 10
    assert dag["tasks"] == sorted([f"dbt.{m}" for m in models] + ["dbt_build"])
    assert dag["in_triggerer"] == sorted(f"dbt.{m}" for m in models), "model tasks start no worker process"
    assert dag["max_active_runs"] == 1, "no overlapping runs"
    assert dag["schedule"] == "0:00:30", "a run every 30 s, never two at once"
    assert "dbt.stg_transactions" in dag["upstream"]["dbt.ods_transactions"], "edges show dbt's lineage"
    assert dag["upstream"]["dbt_build"] == [], "the build is not held back by its model tasks"
    assert dag["pools"]["dbt_build"] == dagbag["dags"]["dbt_test_suite"]["pools"]["dbt_test"] == "dbt"


def test_monitoring_backfill_and_reconciliation_tasks(dagbag: dict) -> None:
    dags = dagbag["dags"]
    assert dags["cdc_monitoring"]["tasks"] == sorted(
        ["connect", "replication_slots", "kafka", "clickhouse_freshness", "end_to_end", "ods_build"])
    assert dags["cdc_monitoring"]["max_active_runs"] == 1
    assert dags["cdc_monitoring"]["in_triggerer"] == dags["cdc_monitoring"]["tasks"], "no worker process a minute"
    assert dags["pg_to_ch"]["tasks"] == ["copy_rows", "validate_params"]
    assert dags["pg_to_ch"]["upstream"]["copy_rows"] == ["validate_params"]
    assert dags["pg_to_ch"]["schedule"] == "None", "triggered by hand"
    assert dags["cdc_monitoring"]["schedule"] == "* * * * *"
    assert dags["reconciliation"]["tasks"] == sorted(
        f"reconcile_{t}" for t in ("customer", "account", "card", "terminal", "transaction"))


def test_dag_files_hold_no_credentials_or_sql() -> None:
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        for word in ("password", "PASSWORD", "SELECT ", "INSERT ", "psycopg2.connect", "get_client("):
            assert word not in text, f"{path.name} contains {word!r}: logic and secrets live elsewhere"


def test_the_test_stack_keeps_its_dags_paused(stack_env: dict[str, str]) -> None:
    """The dev stack unpauses its DAGs at creation; the test stack does not (tests/conftest.py)."""
    def listed() -> dict | None:
        out = airflow_cli(stack_env, "dags", "list", "-o", "json", timeout=300)
        listing = [line for line in out.stdout.splitlines() if line.startswith("[")]  # after CLI warnings
        if out.returncode != 0 or not listing:
            return None
        rows = {d["dag_id"]: d for d in json.loads(listing[-1])}
        return rows if {"cdc_monitoring", "dbt_incremental", "dbt_test_suite", "reconciliation",
                        "pg_to_ch"} <= set(rows) else None

    from ..cdc_helpers import wait_for

    rows = wait_for(listed, timeout=300, interval=10, what="the dag-processor to register the DAGs")
    paused = {dag_id: str(row["is_paused"]).lower() for dag_id, row in rows.items()}
    assert set(paused.values()) == {"true"}, paused
