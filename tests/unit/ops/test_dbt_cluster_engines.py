"""The dbt models on one server and on a replicated cluster, from the same project: a real
`dbt parse` with and without the profile's cluster (no database), each model's engine read back
from the manifest and compared with the raw tables' rendering (bankcdc_stack.clickhouse_ddl)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bankcdc_ops.dbt_build import profile_variables
from bankcdc_ops.settings import dbt_project_dir
from bankcdc_stack.clickhouse_ddl import render


def _engines(tmp_path: Path, cluster: str) -> dict[str, str | None]:
    target = tmp_path / (cluster or "single")
    env = {**os.environ, **profile_variables("localhost", 8123, "transformer", "unused", cluster=cluster),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_LOG_PATH": str(target / "logs")}
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run([str(dbt), "parse", "--no-partial-parse", "--project-dir", str(dbt_project_dir()),
                    "--profiles-dir", str(dbt_project_dir()), "--target-path", str(target)],
                   env=env, check=True, capture_output=True, timeout=300)
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    return {n["name"]: n["config"].get("engine") for n in nodes
            if n["resource_type"] == "model" and n["config"]["materialized"] != "view"}


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    tmp_path = tmp_path_factory.mktemp("dbt-parse")
    return _engines(tmp_path, ""), _engines(tmp_path, "bank")


def test_every_table_model_names_its_engine(engines: tuple[dict, dict]) -> None:
    single, _ = engines
    assert {"ods_transactions", "ods_cards", "fraud_amount_probing"} <= set(single)
    assert all(engine and "MergeTree" in engine and "Replicated" not in engine for engine in single.values()), single


def test_on_a_cluster_every_table_model_replicates_as_the_raw_tables_do(engines: tuple[dict, dict]) -> None:
    single, clustered = engines
    assert set(clustered) == set(single)
    for model, engine in single.items():
        raw_rendering = render(f"CREATE TABLE IF NOT EXISTS ods.{model}\n(\n    x Int8\n)\nENGINE = {engine}",
                               "bank")
        assert f"ENGINE = {clustered[model]}" in raw_rendering, (model, clustered[model], raw_rendering)
