"""Parallel clients: a long query must not stall another client's inserts."""

from __future__ import annotations

import threading
import time

import pytest

from .conftest import Endpoint

pytestmark = pytest.mark.integration


def test_inserts_complete_while_long_query_runs(ch_endpoint: Endpoint, database: str) -> None:
    loader = ch_endpoint.client()
    loader.command(f"CREATE TABLE {database}.t (id UInt64) ENGINE = MergeTree ORDER BY id")
    loader.insert(f"{database}.t", [(10_000,)], column_names=["id"])  # warm the client (first insert imports numpy)
    finished: dict[str, float] = {}

    def long_query() -> None:
        dbt_like = ch_endpoint.client(send_receive_timeout=120)
        dbt_like.query("SELECT sum(sleepEachRow(0.5)) FROM numbers(6) SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0")
        finished["long"] = time.monotonic()

    worker = threading.Thread(target=long_query)
    start = time.monotonic()
    worker.start()
    time.sleep(0.5)  # the long query is running
    for batch in range(10):
        loader.insert(f"{database}.t", [(batch * 100 + i,) for i in range(100)], column_names=["id"])
    finished["inserts"] = time.monotonic()
    worker.join(120)
    assert loader.command(f"SELECT count() FROM {database}.t") == 1001
    assert finished["inserts"] < finished["long"], finished
    assert finished["inserts"] - start < 2.5  # 10 inserts took well under the 3 s query
    assert finished["long"] - start >= 3.0
