"""Consumer metrics: Prometheus text on /metrics, and a readable summary line in the log."""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("cdc_consumer")


class ConsumerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rows = Counter("cdc_rows_loaded", "Change rows written to ClickHouse raw tables",
                            ["table"], registry=self.registry)
        self.dead_letters = Counter("cdc_dead_letters", "Events sent to the dead-letter table",
                                    ["topic"], registry=self.registry)
        self.tombstones = Counter("cdc_tombstones_skipped", "Kafka tombstones dropped", registry=self.registry)
        self.row_path_blocks = Counter("cdc_row_path_blocks", "Blocks built row by row, not column by column: "
                                       "an event the columnar builder gives back, tombstones only, or a table "
                                       "without a columnar plan", registry=self.registry)
        self.batch_seconds = Histogram("cdc_batch_seconds", "Seconds to write and commit one batch",
                                       buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                       registry=self.registry)
        self.lag = Gauge("cdc_partition_lag", "Messages behind the partition's high watermark",
                         ["topic", "partition"], registry=self.registry)
        self.end_to_end = Gauge("cdc_last_commit_to_load_seconds",
                                "Seconds from PostgreSQL commit to ClickHouse ack, newest row of the last batch",
                                registry=self.registry)
        self.waiting = Gauge("cdc_waiting_for", "1 while the consumer waits for a service that does not answer",
                             ["dependency"], registry=self.registry)
        self._window_start = time.monotonic()
        self._window_rows = 0
        self._window_batches: list[float] = []
        self._window_dlq = 0

    def set_waiting(self, dependency: str | None) -> None:
        """Mark the one dependency waited for (None: waiting for nothing)."""
        for name in ("clickhouse", "kafka"):
            self.waiting.labels(name).set(1 if name == dependency else 0)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        if port:
            start_http_server(port, addr=host, registry=self.registry)
            log.info("metrics on http://%s:%d/metrics", host, port)

    def record_batch(self, rows_by_table: dict[str, int], dead: dict[str, int], seconds: float,
                     newest_commit_ms: int | None) -> None:
        for table, count in rows_by_table.items():
            self.rows.labels(table).inc(count)
        for topic, count in dead.items():
            self.dead_letters.labels(topic).inc(count)
        self.batch_seconds.observe(seconds)
        if newest_commit_ms:
            self.end_to_end.set(max(0.0, time.time() - newest_commit_ms / 1000))
        self._window_rows += sum(rows_by_table.values())
        self._window_dlq += sum(dead.values())
        self._window_batches.append(seconds)

    def maybe_log(self, every: float, total_lag: int) -> None:
        elapsed = time.monotonic() - self._window_start
        if elapsed < every:
            return
        batches = sorted(self._window_batches)
        p95 = batches[int(0.95 * (len(batches) - 1))] if batches else 0.0
        log.info("loaded %d rows in %.0fs (%.0f rows/s), %d batches, batch p95 %.3fs, lag %d messages, "
                 "dead letters +%d", self._window_rows, elapsed, self._window_rows / elapsed, len(batches), p95,
                 total_lag, self._window_dlq)
        self._window_start = time.monotonic()
        self._window_rows = 0
        self._window_dlq = 0
        self._window_batches = []
