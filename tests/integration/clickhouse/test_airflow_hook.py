"""The Airflow ClickHouse provider's hook, with its connection from an AIRFLOW_CONN_ variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Endpoint

pytestmark = pytest.mark.integration

SCRIPT = """
import json, sys
from airflow.providers.clickhousedb.hooks.clickhouse import ClickHouseHook
hook = ClickHouseHook(clickhouse_conn_id="ch_test")
table = sys.argv[1] + ".lag"
hook.run(f"CREATE TABLE {table} (stage String, seconds Float64) ENGINE = MergeTree ORDER BY stage")
hook.insert_rows(table, [("kafka", 1.5), ("clickhouse", 2.5)], target_fields=["stage", "seconds"])
rows = hook.get_records(f"SELECT stage, seconds FROM {table} ORDER BY stage")
first = hook.get_first(f"SELECT sum(seconds) FROM {table}")
print(json.dumps({"rows": [list(r) for r in rows], "sum": first[0]}))
"""


def test_clickhouse_hook(ch_endpoint: Endpoint, database: str, tmp_path: Path) -> None:
    conn = {
        "conn_type": "clickhouse", "host": ch_endpoint.host, "port": ch_endpoint.port,
        "login": "default", "password": ch_endpoint.passwords["default"], "schema": database,
    }
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path), AIRFLOW_CONN_CH_TEST=json.dumps(conn), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    out = subprocess.run([sys.executable, "-c", SCRIPT, database], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"rows": [["clickhouse", 2.5], ["kafka", 1.5]], "sum": 4.0}
