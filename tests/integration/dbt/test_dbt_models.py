"""Issue 6, dbt part: the real dbt project against the session's live stack.

The filler writes (closes, hard deletes, fraud scenarios included), CDC catches up, dbt builds;
then ODS must equal PostgreSQL row for row, a re-run and two runs at once must change nothing,
and the fraud marts must hold one case per injected episode (recall and precision 1.0).
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest
from clickhouse_connect.driver.client import Client

from bankcdc_ops.dbt_cli import DbtResult, run_dbt

from ..cdc_helpers import TABLE_KEYS, assert_raw_equals_pg, caught_up_run_settings
from ..fraud_score import fraud_scores
from ..ods_compare import ODS_TABLES, assert_ods_matches_pg

pytestmark = pytest.mark.integration
MARTS = ("marts.fraud_rapid_withdrawals", "marts.fraud_closed_card_attempts", "marts.fraud_amount_probing")
BUILD_COLUMNS = "built_at, dbt_run_id"


def _dbt(stack_env: dict[str, str], work: Path, *args: str) -> DbtResult:
    result = run_dbt(list(args), stack_env, work)
    assert result.ok, f"dbt {' '.join(args)} failed:\n{result.tail()}"
    return result


def _write(filler_env: dict[str, str], seconds: int) -> None:
    """The continuous filler with more fraud, closes and deletes than by default."""
    out = subprocess.run([sys.executable, "-m", "filler", "run", "--rate", "150", "--duration", str(seconds),
                          "--fraud-share", "0.08", "--card-close-rate", "40", "--delete-rate", "60"],
                         env=filler_env, capture_output=True, text=True, timeout=seconds + 120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def _caught_up(stack_env: dict[str, str], pg_dsn: str, ch: Client) -> dict[str, str]:
    """Once raw equals PostgreSQL: the stack environment for a dbt run that reads all of raw."""
    assert_raw_equals_pg(pg_dsn, ch)
    return {**stack_env, **caught_up_run_settings(ch)}


def _fingerprint(ch: Client) -> dict[str, tuple[int, int]]:
    """(rows, content hash) of every ODS table and mart, ignoring which run wrote a row."""
    relations = [t.ods for t in ODS_TABLES.values()] + ["ods.ods_card_status_history",
                                                        "ods.ods_account_status_history", *MARTS]
    out = {}
    for rel in relations:
        out[rel] = tuple(ch.query(f"SELECT count(), sum(cityHash64(* EXCEPT ({BUILD_COLUMNS}))) "
                                  f"FROM {rel}").result_rows[0])
    return out


@pytest.fixture(scope="module")
def built(stack_env: dict[str, str], filler_env: dict[str, str], pg_admin_dsn: str, ch: Client,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A first build on the seeded history, live changes, then an incremental build."""
    work = tmp_path_factory.mktemp("dbt")
    _write(filler_env, 20)
    first = _dbt(_caught_up(stack_env, pg_admin_dsn, ch), work, "build")
    _write(filler_env, 25)
    env = _caught_up(stack_env, pg_admin_dsn, ch)
    incremental_started = ch.query("SELECT now()").result_rows[0][0]
    incremental = _dbt(env, work, "build")
    return {"first": first, "incremental": incremental, "incremental_started": incremental_started, "work": work}


def test_dbt_debug_is_clean(stack_env: dict[str, str], tmp_path: Path) -> None:
    out = _dbt(stack_env, tmp_path, "debug").stdout
    assert "All checks passed!" in out
    assert "[WARN" not in out and "ERROR" not in out, out[-3000:]


def test_build_runs_every_model_and_test(built: dict[str, Any]) -> None:
    for name in ("first", "incremental"):
        out = built[name].stdout
        assert "ERROR=0" in out and "SKIP=0" in out, out[-3000:]
        assert "PASS=" in out


def test_ods_equals_postgres_row_for_row_and_deletes_are_gone(built: dict, pg_admin_dsn: str, ch: Client) -> None:
    deletes = {t: ch.query(f"SELECT count() FROM raw.`{t}` WHERE _is_deleted").result_rows[0][0] for t in TABLE_KEYS}
    assert sum(deletes.values()) > 0, f"the filler made no hard deletes, the test proves nothing: {deletes}"
    assert_ods_matches_pg(pg_admin_dsn, ch)
    for table, key in TABLE_KEYS.items():
        rel = ODS_TABLES[table].ods
        rows, keys = ch.query(f"SELECT count(), uniqExact({key}) FROM {rel}").result_rows[0]
        assert rows == keys, f"{rel}: {rows} rows for {keys} keys (read without FINAL)"


def test_collapsing_deletes_write_patch_parts_not_mutations(built: dict, ch: Client) -> None:
    """The post-hook's DELETE costs the rows it deletes: no mutation over every part of the table."""
    superseded = ch.query("SELECT count() FROM raw.`transaction` WHERE _op = 'u'").result_rows[0][0]
    assert superseded > 0, "no transaction changed after its insert: no incremental run deleted anything"
    collapsed = ch.query("SELECT database, name, create_table_query FROM system.tables "
                         "WHERE database IN ('ods', 'marts') AND engine LIKE '%MergeTree'").result_rows
    names = {f"{db}.{name}" for db, name, _ in collapsed}
    assert {t.ods for t in ODS_TABLES.values()} | set(MARTS) <= names
    for db, name, ddl in collapsed:
        if name != "dbt_watermarks":
            assert "enable_block_number_column = 1" in ddl and "enable_block_offset_column = 1" in ddl, \
                f"{db}.{name} cannot take patch parts:\n{ddl}"
    # other tests of the session tamper with ODS through ALTER ... UPDATE: only the build's own count
    mutations = ch.query("SELECT database, table, command FROM system.mutations "
                         "WHERE database IN ('ods', 'marts') AND create_time >= {t:DateTime}",
                         parameters={"t": built["incremental_started"]}).result_rows
    assert not mutations, f"the incremental build's collapsing deletes ran as mutations: {mutations[:3]}"


def test_rerun_changes_nothing(built: dict, stack_env: dict[str, str], ch: Client) -> None:
    before = _fingerprint(ch)
    _dbt(stack_env, built["work"], "run")
    assert _fingerprint(ch) == before


def test_two_runs_at_once_leave_the_same_result(built: dict, stack_env: dict[str, str], filler_env: dict[str, str],
                                                pg_admin_dsn: str, ch: Client, tmp_path: Path) -> None:
    _write(filler_env, 15)
    env = _caught_up(stack_env, pg_admin_dsn, ch)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda i: run_dbt(["run"], env, tmp_path / f"run{i}"), range(2)))
    for run in runs:
        assert run.ok, run.tail()
    assert_ods_matches_pg(pg_admin_dsn, ch)
    for table, key in TABLE_KEYS.items():
        rel = ODS_TABLES[table].ods
        rows, keys = ch.query(f"SELECT count(), uniqExact({key}) FROM {rel}").result_rows[0]
        assert rows == keys, f"{rel}: {rows} rows for {keys} keys after two runs at once"
    after_both = _fingerprint(ch)
    _dbt(stack_env, tmp_path / "single", "run")
    assert _fingerprint(ch) == after_both


def test_fraud_marts_find_every_injected_scenario(built: dict, pg_admin_dsn: str, ch: Client,
                                                  record_property: Callable[[str, object], None]) -> None:
    scores = fraud_scores(pg_admin_dsn, ch)
    summary = {kind: s.summary() for kind, s in scores.items()}
    record_property("fraud_scores", summary)
    print("fraud precision/recall:", summary)
    for kind, s in scores.items():
        assert s.truth > 0, f"no {kind} scenario injected: recall would be vacuous"
        assert s.recall == 1.0, f"{kind}: recall {s.recall:.3f}, missed {s.missed[:5]}"
        assert s.precision == 1.0, f"{kind}: precision {s.precision:.3f} (one case per episode), " \
                                   f"unmatched or duplicate cases {s.false_alarms[:5]}"


def test_stg_passes_on_explicit_columns_only(built: dict, stack_env: dict[str, str], ch: Client,
                                             tmp_path: Path) -> None:
    """A column the consumer adds to a raw table (schema drift) does not leak into stg."""
    ch.command("ALTER TABLE raw.terminal ADD COLUMN IF NOT EXISTS dbt_probe_extra Nullable(String)")
    try:
        _dbt(stack_env, tmp_path, "run", "--select", "stg_terminals")
        columns = [r[0] for r in ch.query("SELECT name FROM system.columns WHERE database = 'stg' "
                                          "AND table = 'stg_terminals'").result_rows]
        assert "dbt_probe_extra" not in columns and "terminal_id" in columns
    finally:
        ch.command("ALTER TABLE raw.terminal DROP COLUMN IF EXISTS dbt_probe_extra")


def test_docs_generate(built: dict, stack_env: dict[str, str], tmp_path: Path) -> None:
    _dbt(stack_env, tmp_path, "docs", "generate")
    assert (tmp_path / "target" / "catalog.json").stat().st_size > 0
    assert (tmp_path / "target" / "index.html").exists()
