"""bankcdc_ops without services: param validation, threshold figures and their states, the failure message."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from bankcdc_ops.backfill import BackfillRequest, _range_filter, _raw_row, _token
from bankcdc_ops.errors import ParamError
from bankcdc_ops.monitoring import Figure
from bankcdc_ops.reconciliation import _diff_metrics
from bankcdc_ops.tables import TABLES


def test_backfill_params_are_validated_with_the_param_named() -> None:
    ok = BackfillRequest.from_params({"table": "card", "start_date": "2026-01-02", "end_date": "2026-01-02"})
    assert ok.table.key == "card_id" and ok.start == ok.end == dt.date(2026, 1, 2)
    assert BackfillRequest.from_params({"table": "customer", "start_date": None, "end_date": ""}).start is None
    for params, fragment in [
        ({}, "param table is required"),
        ({"table": "cards"}, "unknown table 'cards'"),
        ({"table": "card", "start_date": "02/01/2026"}, "param start_date='02/01/2026' is not a date"),
        ({"table": "card", "start_date": "2026-01-03", "end_date": "2026-01-02"}, "is after end_date"),
        ({"table": "card", "start_date": "2999-01-01"}, "is in the future"),
        ({"table": "card", "chunk_rows": 0}, "param chunk_rows=0"),
        ({"table": "card", "chunk_rows": True}, "param chunk_rows=True"),
    ]:
        with pytest.raises(ParamError, match=fragment.replace("(", r"\(")):
            BackfillRequest.from_params(params)


def test_backfill_range_is_inclusive_in_utc() -> None:
    request = BackfillRequest.from_params({"table": "transaction", "start_date": "2026-01-02",
                                           "end_date": "2026-01-03"})
    where, args = _range_filter(request)
    assert where == " WHERE created_at >= %s AND created_at < %s"
    assert args == [dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc), dt.datetime(2026, 1, 4, tzinfo=dt.timezone.utc)]


def test_backfill_rows_rank_below_streamed_changes_and_blocks_are_deterministic() -> None:
    updated = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    source = ["card_id", "status", "updated_at"]
    insert = ["card_id", "status", "updated_at", "_op", "_lsn", "_version", "_source_ts", "_emitted_ts",
              "_topic", "_partition", "_offset", "_is_deleted"]
    row = _raw_row((7, "active", updated), source, insert, 0, 2)
    assert row == [7, "active", updated, "r", 0, 0, updated, updated, "pg_to_ch", -1, 7, 0]
    rows = [(7, "active", updated), (9, "closed", updated)]
    token = _token(TABLES["card"], rows, 0)
    assert token == _token(TABLES["card"], list(rows), 0) and token.startswith("pg_to_ch:card:7-9:")
    assert _token(TABLES["card"], [(7, "blocked", updated), rows[1]], 0) != token


def test_figure_breach_and_message_name_stage_figure_and_variable() -> None:
    fine = Figure("kafka", "consumer_lag_messages", "bank.bank.transaction[1]", 10, 100, "cdc_max_consumer_lag_messages")
    assert not fine.breached and "(limit 100, Variable cdc_max_consumer_lag_messages)" in fine.describe()
    over = Figure("replication_slot", "lag_bytes", "dbz_bank_txn", 5000, 1000, "cdc_max_slot_lag_bytes")
    assert over.breached
    assert over.describe() == "[replication_slot] dbz_bank_txn lag_bytes=5000 > 1000, Variable cdc_max_slot_lag_bytes"
    assert Figure("ods", "seconds_since_build", "dbt_incremental", math.inf, 1800).breached
    assert Figure("connect", "task_running", "bank-dims/0", 0, failed=True, detail="state=FAILED").breached
    assert not Figure("clickhouse", "dead_letters", "raw._dead_letter", 12).breached, "recorded only"


def test_reconciliation_totals_compare_as_numbers_and_missing_days_as_zero() -> None:
    from decimal import Decimal

    names = ["rows", "key_sum", "amount_sum"]
    assert _diff_metrics(names, (3, Decimal("6"), Decimal("10.50")), (3, 6, Decimal("10.5"))) == {}
    assert _diff_metrics(names, (3, 6, Decimal("10.50")), None) == {
        "rows": (3, 0), "key_sum": (6, 0), "amount_sum": (Decimal("10.50"), 0)}
    assert _diff_metrics(names, (3, 6, Decimal("10.50")), (3, 6, Decimal("11.50"))) == {
        "amount_sum": (Decimal("10.50"), Decimal("11.50"))}


def test_a_warming_figure_is_recorded_and_shown_but_never_a_breach() -> None:
    warming = Figure("ods", "seconds_since_build", "dbt_incremental", 90, 60, "cdc_max_ods_build_age_seconds",
                     warming=True)
    assert warming.state == "warming" and not warming.breached, "over its threshold, yet soon after start"
    assert Figure("ods", "seconds_since_build", "dbt_incremental", 90, 60).state == "breached"
    assert Figure("connect", "connector_running", "bank-dims", 0, failed=True, warming=True).breached, \
        "a failed state check is never excused"
