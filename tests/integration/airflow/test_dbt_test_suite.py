"""dbt_test_suite for real: every test of the project over whole tables passes on a built ODS, and
a case that breaks its scenario's rule fails the run, naming the test."""

from __future__ import annotations

import re
from typing import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from .conftest import DagTestRun, dag_test

pytestmark = pytest.mark.integration


def test_the_whole_suite_passes_on_a_built_ods(ods_build: DagTestRun, stack_env: dict[str, str]) -> None:
    run = dag_test(stack_env, "dbt_test_suite", use_executor=True)
    assert run.ok, run.tail()
    passed = re.search(r"dbt build passed: 0 models, (\d+) tests", run.output)
    assert passed and int(passed.group(1)) >= 75, "every test ran (80 today), the full_suite ones included"


@pytest.fixture
def case_breaking_its_rule(ods_build: DagTestRun, ch_admin: Client) -> Iterator[str]:
    """An amount-probing case whose evidence no longer meets the rule (fewer than 3 small purchases)."""
    rows = ch_admin.query("SELECT detection_id, small_count FROM marts.fraud_amount_probing "
                          "ORDER BY detection_id LIMIT 1").result_rows
    assert rows, "the build found no amount-probing case to tamper with"
    detection, count = rows[0]
    update = "ALTER TABLE marts.fraud_amount_probing UPDATE small_count = {n:UInt64} WHERE detection_id = {d:String}"
    ch_admin.command(update, parameters={"n": 1, "d": detection}, settings={"mutations_sync": 2})
    yield detection
    ch_admin.command(update, parameters={"n": count, "d": detection}, settings={"mutations_sync": 2})


def test_a_broken_rule_fails_the_run_naming_the_test(case_breaking_its_rule: str, stack_env: dict[str, str]) -> None:
    run = dag_test(stack_env, "dbt_test_suite", use_executor=True)
    assert run.state == "failed", run.tail()
    assert "assert_fraud_windows_follow_rules" in run.output, run.tail()
