"""dbt-clickhouse (http driver) against the endpoint: debug, seed, run (incremental twice, a dictionary), test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Endpoint

pytestmark = pytest.mark.integration
PROJECT = Path(__file__).parent / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"


def _dbt(ep: Endpoint, tmp: Path, *args: str) -> str:
    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_CH_PASSWORD=ep.passwords["default"])
    cmd = [str(DBT), *args, "--project-dir", str(PROJECT), "--profiles-dir", str(tmp)]
    if args[0] != "debug":
        cmd += ["--target-path", str(tmp / "target")]
    out = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    return out.stdout


def test_dbt_seed_run_incremental_test(ch_endpoint: Endpoint, database: str, tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text(
        f"""
chdb_http_conformance:
  target: dev
  outputs:
    dev:
      type: clickhouse
      driver: http
      host: {ch_endpoint.host}
      port: {ch_endpoint.port}
      user: default
      password: "{{{{ env_var('DBT_CH_PASSWORD') }}}}"
      schema: {database}
      secure: false
      threads: 2
"""
    )
    (tmp_path / "logs").mkdir()
    os.environ.setdefault("DBT_LOG_PATH", str(tmp_path / "logs"))
    assert "All checks passed" in _dbt(ch_endpoint, tmp_path, "debug")
    _dbt(ch_endpoint, tmp_path, "seed")
    _dbt(ch_endpoint, tmp_path, "run")
    client = ch_endpoint.client()
    assert client.query(f"SELECT count(), countIf(is_closed_card) FROM {database}.fct_txns").result_rows == [(4, 1)]
    # a dictionary model: CLICKHOUSE source with the profile's user and password, read back with dictGet
    assert client.query(f"SELECT number, dictGet('{database}.card_status_dict', 'status', number) FROM numbers(1, 3) "
                        "ORDER BY number").result_rows == [(1, "active"), (2, "active"), (3, "closed")]
    client.command(f"INSERT INTO {database}.txns VALUES (5, 2, 1.00, '2024-05-02 09:00:00')")
    _dbt(ch_endpoint, tmp_path, "run", "--select", "fct_txns")
    assert client.query(f"SELECT count(), uniqExact(txn_id), max(txn_id) FROM {database}.fct_txns").result_rows == [(5, 5, 5)]
    assert "PASS=" in _dbt(ch_endpoint, tmp_path, "test")
