"""The consume loop: Kafka -> decoded, converted rows -> ClickHouse raw, offsets committed after the ack."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message, TopicPartition

from cdc_consumer.columnar import ColumnarBlock
from cdc_consumer.config import ConsumerSettings
from cdc_consumer.envelope import SourceRef, decode, table_of
from cdc_consumer.errors import ConfigError, DecodeError, DependencyUnavailable, LoadError
from cdc_consumer.kafka_log import kafka_logger
from cdc_consumer.loader import DeadLetter, RawLoader, RawTable
from cdc_consumer.metrics import ConsumerMetrics

log = logging.getLogger("cdc_consumer")
KAFKA_CHECK_SECONDS = 20.0
# concurrent inserts of one batch: enough for a batch's usual blocks (five tables, the transaction
# topic's partitions), few enough not to crowd ClickHouse; the loader's one client is thread-safe
# (no session) and pools 8 connections
INSERT_THREADS = 4
PartitionKey = tuple[str, int]


class CdcConsumer:
    def __init__(self, settings: ConsumerSettings, loader: RawLoader | None = None,
                 metrics: ConsumerMetrics | None = None) -> None:
        self.settings = settings
        self.loader = loader or RawLoader(settings)
        self.metrics = metrics or ConsumerMetrics()
        self.inserts = ThreadPoolExecutor(INSERT_THREADS, thread_name_prefix="insert")
        self.stop_event = threading.Event()
        self.buffers: dict[PartitionKey, list[Message]] = defaultdict(list)
        self.buffered = 0
        self.oldest_buffered_at: float | None = None
        self.oldest_produced_at: float | None = None   # its Kafka timestamp, epoch seconds
        self.caught_up = False                         # the last consume() drained what was fetched
        self.auth_error: KafkaError | None = None
        self.consumer = Consumer({
            **settings.kafka_client(),
            "group.id": settings.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 5000,   # pick up new table topics quickly
            "fetch.wait.max.ms": 50,
            "fetch.min.bytes": 1,
            "client.id": settings.client_id,
            # round-robin over every topic's partitions spreads bank.bank.transaction's, which carry
            # most rows, across the group; the sticky assignors balance partition counts only, and
            # were measured giving one of two consumers all three (docs/scaling.md)
            "partition.assignment.strategy": "roundrobin",
            # a consumer that died without leaving (kill -9, lost host) holds its partitions until its
            # session expires: 10 s, not librdkafka's 45 s, before a restarted one takes over
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 2000,
            "reconnect.backoff.ms": 500,
            "logger": kafka_logger(),
            "error_cb": self._on_kafka_error,
        })

    # -- rebalance ------------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each newly assigned partition after what ClickHouse holds or the group committed,
        whichever is further: a previous owner may have loaded a block and died before committing."""
        if not partitions:
            return
        committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=30)}
        for tp in partitions:
            start = committed.get((tp.topic, tp.partition), -1001)
            try:
                loaded = self.loader.loaded_offset(tp.topic, tp.partition,
                                                   table_of(tp.topic, self.settings.topic_prefix))
            except DecodeError:
                loaded = None
            if loaded is not None and loaded + 1 > start:
                log.info("%s[%d]: ClickHouse already holds up to offset %d (committed %s): resuming at %d",
                         tp.topic, tp.partition, loaded, start if start >= 0 else "none", loaded + 1)
                start = loaded + 1
            if start >= 0:
                tp.offset = start
        consumer.assign(partitions)
        log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Load and commit what is buffered before the partitions go, so their next owner starts after
        it. If that fails, the buffer is dropped: the next owner re-reads it from the committed offset."""
        try:
            self.flush()
        except LoadError as exc:
            log.warning("flush on revoke failed (%s); the next owner re-reads from the committed offset", exc)
        self._drop_buffers()
        consumer.unassign()
        if partitions:
            log.info("revoked %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group gave the partitions away already (this consumer missed its session timeout):
        another owner reads them, so the buffer is dropped, not loaded."""
        self._drop_buffers()
        consumer.unassign()
        log.warning("lost %s to the group (session timed out); their unloaded messages are left to the new owner",
                    ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))

    def _drop_buffers(self) -> None:
        self.buffers.clear()
        self.buffered = 0
        self.oldest_buffered_at = self.oldest_produced_at = None

    # -- loop -----------------------------------------------------------------------------------
    def _on_kafka_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            self.auth_error = error
        log.log(logging.ERROR if error.fatal() else logging.WARNING, "kafka: %s", error.str())

    def check_kafka(self, timeout: float = KAFKA_CHECK_SECONDS) -> None:
        """Raise DependencyUnavailable when no broker answers at the configured address within
        `timeout`, and ConfigError as soon as one answers and refuses the consumer's credentials."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                metadata = self.consumer.list_topics(timeout=min(2.0, max(deadline - time.monotonic(), 0.1)))
                break
            except KafkaException as exc:
                self.consumer.poll(0)  # serves error_cb, where an authentication failure is reported
                error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                if self.auth_error is not None or (error is not None and error.code() == KafkaError._AUTHENTICATION):
                    raise ConfigError(f"Kafka at {self.settings.bootstrap_servers} refused CDC_KAFKA_USER="
                                      f"{self.settings.kafka_user}: {(self.auth_error or error).str()}; check "
                                      "CDC_KAFKA_USER and KAFKA_CONSUMER_PASSWORD") from None
                if time.monotonic() >= deadline:
                    raise DependencyUnavailable("kafka", f"no Kafka broker answered at KAFKA_BOOTSTRAP_SERVERS="
                                                         f"{self.settings.bootstrap_servers} within {timeout:.0f}s "
                                                         f"({error.str() if error else exc}): check the address "
                                                         "and that Kafka is running") from exc
        if not metadata.brokers:
            raise DependencyUnavailable("kafka", f"Kafka at KAFKA_BOOTSTRAP_SERVERS="
                                                 f"{self.settings.bootstrap_servers} lists no broker")

    def run(self) -> None:
        """Consume until stopped (Kafka checked first: see check_kafka)."""
        self.check_kafka()
        self.consumer.subscribe([self.settings.topic_regex], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)
        log.info("consuming %s as %s of group %s into %s on %s:%d (batches of %d rows or %.2fs)",
                 self.settings.topic_regex, self.settings.client_id, self.settings.group_id,
                 self.settings.raw_database,
                 self.settings.clickhouse_host, self.settings.clickhouse_port,
                 self.settings.batch_max_rows, self.settings.batch_max_seconds)
        try:
            while not self.stop_event.is_set():
                wanted = min(max(1, self.settings.batch_max_rows - self.buffered), 5000)
                messages = self.consumer.consume(num_messages=wanted, timeout=0.05)
                self.caught_up = len(messages) < wanted
                for msg in messages:
                    self._accept(msg)
                if self._due():
                    self._flush_with_retry()
                self.metrics.maybe_log(self.settings.log_every_seconds, self._total_lag())
            self._flush_with_retry()
        finally:
            self.close()
            log.info("consumer stopped cleanly")

    def close(self) -> None:
        self.consumer.close()
        self.inserts.shutdown()
        self.loader.close()

    def request_stop(self, *_: Any) -> None:
        log.info("stop requested: finishing the current batch")
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def _accept(self, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                return
            if error.fatal():
                raise KafkaException(error)
            log.warning("kafka: %s", error)
            return
        self.buffers[(msg.topic(), msg.partition())].append(msg)
        self.buffered += 1
        if self.oldest_buffered_at is None:
            self.oldest_buffered_at = time.monotonic()
            kind, produced_ms = msg.timestamp()
            self.oldest_produced_at = produced_ms / 1000 if kind != TIMESTAMP_NOT_AVAILABLE else None

    def _due(self) -> bool:
        """A full batch, or its oldest message buffered CDC_BATCH_MAX_SECONDS. At the head of the
        stream the wait counts from when Kafka received that message, so a message that arrived
        during the previous flush does not wait a whole batch period more; behind the head (a
        backlog) it counts from when it was consumed, so the batches stay full."""
        if not self.buffered:
            return False
        if self.buffered >= self.settings.batch_max_rows:
            return True
        now = time.monotonic()
        age = now - (self.oldest_buffered_at or now)
        if self.caught_up and self.oldest_produced_at is not None:
            age = max(age, time.time() - self.oldest_produced_at)
        return age >= self.settings.batch_max_seconds

    def _flush_with_retry(self) -> None:
        delay = 0.5
        while self.buffered:
            try:
                self.flush()
                return
            except LoadError as exc:
                if self.stop_event.is_set():
                    log.error("giving up on the current batch at shutdown (not committed, will be re-read): %s", exc)
                    return
                log.error("%s; retrying the same blocks in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 15.0)
                self._reconnect_loader()

    def _reconnect_loader(self) -> None:
        try:
            self.loader.close()
            self.loader = RawLoader(self.settings)
        except Exception as exc:  # noqa: BLE001 - ClickHouse still down; next retry tries again
            log.warning("ClickHouse not reachable yet: %s", exc)

    # -- one batch ------------------------------------------------------------------------------
    def flush(self) -> None:
        """Load every buffered partition's block, then commit their offsets.

        Each partition's block goes to ClickHouse as soon as it is built, beside the others (at
        most INSERT_THREADS at once), while the next one is decoded: a batch costs about its
        slowest insert, not the sum of them. Within a partition the order is unchanged (dead
        letters, then the block), and the next batch starts only after every insert of this one
        returned, so each partition's blocks still reach ClickHouse one after another in offset
        order. If any insert fails, the others are awaited first and the whole batch is retried:
        the blocks that did land are dropped by their deduplication tokens.
        """
        if not self.buffered:
            return
        started = time.monotonic()
        rows_by_table: dict[str, int] = defaultdict(int)
        dead_by_topic: dict[str, int] = defaultdict(int)
        newest_commit_ms: int | None = None
        commits: list[TopicPartition] = []
        loads: list[Future[None]] = []
        try:
            for (topic, partition), messages in sorted(self.buffers.items()):
                if not messages:
                    continue
                token = f"{topic}:{partition}:{messages[0].offset()}-{messages[-1].offset()}"
                table_name, rows, dead, newest = self._build_block(topic, partition, messages)
                table = self.loader.tables[table_name] if rows else None
                loads.append(self.inserts.submit(self._load_partition, table, rows, dead, token))
                if dead:
                    dead_by_topic[topic] += len(dead)
                if table is not None:
                    rows_by_table[table.name] += len(rows)
                if newest and (newest_commit_ms is None or newest > newest_commit_ms):
                    newest_commit_ms = newest
                commits.append(TopicPartition(topic, partition, messages[-1].offset() + 1))
        finally:
            wait(loads)
        for load in loads:
            load.result()  # raises the first failure, now that every insert has returned
        if commits:
            self._commit(commits)
        self._drop_buffers()
        self.metrics.record_batch(dict(rows_by_table), dict(dead_by_topic), time.monotonic() - started,
                                  newest_commit_ms)

    def _load_partition(self, table: RawTable | None, rows: list[list[Any]] | pa.Table, dead: list[DeadLetter],
                        token: str) -> None:
        """One partition's share of a batch: its dead letters first, then its block."""
        if dead:
            self.loader.insert_dead_letters(dead, token)
            for letter in dead:
                log.warning("dead letter %s[%d]@%d: %s", letter.topic, letter.partition, letter.offset, letter.error)
        if table is not None:
            self.loader.insert_block(table, rows, token)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        """Commit after ClickHouse acknowledged. A failed commit (the broker or group coordinator is
        gone) loses nothing: the rows are in ClickHouse, the next batch's commit covers them, and
        a restart resumes after the highest offset ClickHouse holds."""
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("offset commit failed (%s); the rows are loaded, a later commit covers them", exc)

    def _build_block(self, topic: str, partition: int, messages: list[Message]
                     ) -> tuple[str, list[list[Any]] | pa.Table, list[DeadLetter], int | None]:
        """One partition's messages as a block in offset order: built column by column when the
        table's ColumnarBuilder takes every message, else row by row, where what cannot be loaded
        becomes a dead letter."""
        columnar = self._columnar_block(topic, partition, messages)
        if columnar is not None:
            if columnar.tombstones:
                self.metrics.tombstones.inc(columnar.tombstones)
            return table_of(topic, self.settings.topic_prefix), columnar.data, [], columnar.newest_commit_ms
        self.metrics.row_path_blocks.inc()
        return self._build_rows(topic, partition, messages)

    def _columnar_block(self, topic: str, partition: int, messages: list[Message]) -> ColumnarBlock | None:
        try:
            table = self.loader.table_for(table_of(topic, self.settings.topic_prefix))
        except DecodeError:
            return None  # the row path dead-letters each message with the reason
        return table.columnar.build(topic, partition, messages) if table.columnar else None

    def _build_rows(self, topic: str, partition: int, messages: list[Message]
                    ) -> tuple[str, list[list[Any]], list[DeadLetter], int | None]:
        """Rows of one partition's messages, in offset order; what cannot be loaded becomes dead letters."""
        rows: list[list[Any]] = []
        dead: list[DeadLetter] = []
        table_name = ""
        newest: int | None = None
        for msg in messages:
            ref = SourceRef(topic, partition, msg.offset())
            try:
                event = decode(msg.value(), ref, self.settings.topic_prefix)
                if event is None:
                    self.metrics.tombstones.inc()
                    continue
                table = self.loader.table_for(event.table)
                unknown = [c for c in event.row if c not in table.columns]
                if unknown:
                    self.loader.add_columns(table, unknown)
                    table = self.loader.table_for(event.table)
                rows.append(table.row(event))
                table_name = table.name
                newest = max(newest or 0, event.commit_ts_ms)
            except DecodeError as exc:
                dead.append(DeadLetter(topic, partition, msg.offset(), msg.key() or b"", msg.value() or b"",
                                       str(exc)))
            except LoadError:
                raise  # ClickHouse trouble, not this message's: the batch is retried
            except Exception as exc:  # noqa: BLE001 - one message the checks above missed must not stop the pipeline
                log.exception("unexpected failure converting %s[%d]@%d", topic, partition, msg.offset())
                dead.append(DeadLetter(topic, partition, msg.offset(), msg.key() or b"", msg.value() or b"",
                                       f"cannot convert this event ({type(exc).__name__}: {exc})"))
        return table_name, rows, dead, newest

    def _total_lag(self) -> int:
        total = 0
        try:
            assignment = self.consumer.assignment()
            positions = self.consumer.position(assignment) if assignment else []
        except KafkaException:
            return -1
        for tp in positions:
            try:
                _, high = self.consumer.get_watermark_offsets(tp, timeout=1, cached=True)
            except KafkaException:
                continue
            lag = max(0, high - tp.offset) if tp.offset >= 0 else high
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
            total += lag
        return total
