"""librdkafka's repeated connection failures reach the log once per interval, with a count."""

from __future__ import annotations

import logging

from cdc_consumer.kafka_log import RepeatFilter


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("cdc_consumer.kafka", logging.ERROR, __file__, 1, message, (), None)


def test_a_repeated_line_is_held_back_and_counted(monkeypatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("cdc_consumer.kafka_log.time.monotonic", lambda: clock[0])
    kept = RepeatFilter(every=30.0)
    line = "FAIL 127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after {}ms in state CONNECT)"
    assert kept.filter(_record(line.format(0)))
    assert not any(kept.filter(_record(line.format(i))) for i in range(1, 50))
    assert kept.filter(_record("a different line"))
    clock[0] += 31.0
    summary = _record(line.format(2))
    assert kept.filter(summary)
    assert summary.getMessage().endswith("(and 49 more like it in 31s)")
