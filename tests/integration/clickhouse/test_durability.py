"""chdb-http specific: acknowledged inserts survive kill -9; SIGTERM drains and exits 0."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from .conftest import generated_passwords, start_endpoint, stop_endpoint

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(os.environ.get("CLICKHOUSE_HOST")), reason="tests the chdb-http process itself"),
]


def test_acknowledged_inserts_survive_kill_9(tmp_path) -> None:
    passwords = generated_passwords()
    ep = start_endpoint(tmp_path / "data", passwords, tmp_path / "log")
    acked = 0
    try:
        client = ep.client()
        client.command("CREATE DATABASE durable")
        client.command("CREATE TABLE durable.t (id UInt64, payload String) ENGINE = MergeTree ORDER BY id")
        for batch in range(20):
            client.insert("durable.t", [(batch * 500 + i, "x" * 20) for i in range(500)], column_names=["id", "payload"])
            acked += 500
    finally:
        assert ep.process is not None
        ep.process.send_signal(signal.SIGKILL)
        ep.process.wait(10)
    restarted = start_endpoint(tmp_path / "data", passwords, tmp_path / "log")
    try:
        count, distinct = restarted.client().query("SELECT count(), uniqExact(id) FROM durable.t").result_rows[0]
        assert count == distinct == acked == 10000
    finally:
        assert stop_endpoint(restarted) == 0


def test_sigterm_finishes_in_flight_query_and_exits_0(tmp_path) -> None:
    ep = start_endpoint(tmp_path / "data", generated_passwords(), tmp_path / "log")
    result: dict[str, object] = {}

    def slow() -> None:
        try:
            result["rows"] = ep.client().query("SELECT sleepEachRow(0.5), number FROM numbers(4) SETTINGS max_block_size = 1").result_rows
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            result["error"] = exc

    worker = threading.Thread(target=slow)
    worker.start()
    import time

    time.sleep(0.8)
    assert stop_endpoint(ep) == 0
    worker.join(10)
    assert "error" not in result, result
    assert [r[1] for r in result["rows"]] == [0, 1, 2, 3]
    log = (tmp_path / "log").read_text()
    assert "draining" in log and "stopped" in log
