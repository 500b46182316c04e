"""The source instant T of a dbt run: a commit time through which every stream has been loaded.

Each Debezium connector emits its changes in commit order, one Kafka partition at a time, and
the consumer loads each partition in offset order. So for one topic-partition of a connector:

* while it is behind (messages past what was loaded), everything committed before the newest
  commit time loaded from it is loaded;
* once it is caught up (loaded, or committed by the consumer group, through the log end read
  *after* the connector's newest heartbeat in raw), everything the connector committed up to
  that heartbeat is loaded too: the heartbeat was emitted after those changes. This is what
  lets an idle stream advance.

T is the earliest such watermark over every partition of every connector, less a margin for
changes of one transaction split across consumer blocks and for commit timestamps that are not
strictly in WAL order. It never goes back: a run's T is at least the previous build's.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from bankcdc_ops.errors import SourceInstantError, SourceInstantPending
from bankcdc_ops.utc import aware_utc

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

ORDER_MARGIN = dt.timedelta(seconds=1)
HEARTBEAT_TABLE = "cdc.heartbeat"  # each connector upserts its own row (source = connector name)


@dataclass(frozen=True)
class Connector:
    """A Debezium connector as the run sees it: its name (= its heartbeat source) and topics."""

    name: str
    topics: tuple[str, ...]   # <prefix>.<schema>.<table>, the heartbeat's excluded

    @staticmethod
    def raw_table(topic: str) -> str:
        return topic.rsplit(".", 1)[1]


def connectors_from(debezium_dir: Path) -> list[Connector]:
    """The connectors of debezium/*.json (the payloads the stack registers)."""
    found = []
    for path in sorted(debezium_dir.glob("*.json")):
        payload = json.loads(path.read_text())
        config = payload.get("config", {})
        prefix = config["topic.prefix"]
        tables = [t.strip() for t in config.get("table.include.list", "").split(",") if t.strip()]
        found.append(Connector(payload["name"], tuple(f"{prefix}.{t}" for t in tables if t != HEARTBEAT_TABLE)))
    return found


@dataclass(frozen=True)
class StreamMark:
    """How far one topic-partition is known loaded, in commit time."""

    connector: str
    topic: str
    partition: int
    caught_up: bool
    watermark: dt.datetime | None   # None: nothing loaded and no heartbeat yet
    detail: str

    @property
    def name(self) -> str:
        return f"{self.topic}[{self.partition}]"

    def describe(self) -> str:
        mark = f"{self.watermark:%H:%M:%S.%f}"[:-3] if self.watermark else "unknown"
        return f"{self.name} ({self.connector}) through {mark}: {self.detail}"


@dataclass(frozen=True)
class SourceInstant:
    source_upper_bound: dt.datetime   # T, aware UTC
    loaded_upper_bound: dt.datetime   # U: ClickHouse's clock when T was chosen, aware UTC
    limited_by: StreamMark
    streams: tuple[StreamMark, ...]

    def describe(self) -> str:
        return (f"source instant T={self.source_upper_bound:%Y-%m-%d %H:%M:%S.%f} UTC "
                f"({(self.loaded_upper_bound - self.source_upper_bound).total_seconds():.1f} s before "
                f"ClickHouse's now), limited by {self.limited_by.describe()}")

    def as_dict(self) -> dict[str, Any]:
        return {"source_upper_bound": self.source_upper_bound.isoformat(),
                "loaded_upper_bound": self.loaded_upper_bound.isoformat(),
                "limited_by": self.limited_by.describe(),
                "streams": [s.describe() for s in self.streams]}


@dataclass(frozen=True)
class _Loaded:
    next_offset: int                 # first offset not in raw
    newest: dt.datetime | None       # newest commit time in raw


def _loaded_progress(ch: "Client", connectors: Iterable[Connector]) -> dict[tuple[str, int], _Loaded]:
    """Per (topic, partition): the raw table's stream_progress projection (clickhouse_init/25_*)."""
    tables = sorted({Connector.raw_table(t) for c in connectors for t in c.topics})
    if not tables:
        return {}
    sql = " UNION ALL ".join(
        f"SELECT _topic, _partition, max(_offset), max(_source_ts) FROM raw.`{t}` GROUP BY _topic, _partition"
        for t in tables)
    return {(topic, int(p)): _Loaded(int(offset) + 1, aware_utc(newest))
            for topic, p, offset, newest in ch.query(sql).result_rows}


def _heartbeats(ch: "Client") -> dict[str, dt.datetime]:
    rows = ch.query("SELECT source, max(_source_ts) FROM raw.heartbeat GROUP BY source").result_rows
    return {source: aware_utc(newest) for source, newest in rows}


def _kafka_offsets(admin: Any, group: str, topics: list[str]) -> tuple[dict, dict]:
    """(consumer group's committed offsets, log-end offsets) of every partition of `topics`,
    the log ends read last."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    try:
        metadata = admin.list_topics(timeout=10).topics
        partitions = [TopicPartition(t, p) for t in topics if t in metadata for p in sorted(metadata[t].partitions)]
        if not partitions:
            return {}, {}
        committed_result = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=10)[group].result()
        committed = {(tp.topic, tp.partition): tp.offset for tp in committed_result.topic_partitions}
        ends = {(tp.topic, tp.partition): future.result().offset for tp, future in
                admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10).items()}
    except KafkaException as exc:
        raise SourceInstantError(f"Kafka did not answer while choosing the source instant: {exc}") from exc
    return committed, ends


def stream_marks(connectors: list[Connector], loaded: dict[tuple[str, int], _Loaded],
                 heartbeats: dict[str, dt.datetime], committed: dict[tuple[str, int], int],
                 ends: dict[tuple[str, int], int]) -> list[StreamMark]:
    """The watermark of every partition (see the module docstring)."""
    marks = []
    for connector in connectors:
        beat = heartbeats.get(connector.name)
        for topic in connector.topics:
            keys = sorted(k for k in ends if k[0] == topic)
            for key in keys:
                progress = loaded.get(key)
                next_loaded = max(progress.next_offset if progress else 0, committed.get(key, -1))
                newest = progress.newest if progress else None
                caught_up = next_loaded >= ends[key]
                if caught_up:
                    known = [t for t in (beat, newest) if t is not None]
                    watermark = max(known) - ORDER_MARGIN if known else None
                    detail = (f"caught up at offset {ends[key]}, heartbeat "
                              + (f"{beat:%H:%M:%S.%f}"[:-3] if beat else "not seen yet"))
                else:
                    watermark = newest - ORDER_MARGIN if newest else None
                    detail = f"{ends[key] - next_loaded} messages to load"
                marks.append(StreamMark(connector.name, topic, key[1], caught_up, watermark, detail))
    return marks


def choose(ch: "Client", admin: Any, connectors: list[Connector], group: str,
           previous: dt.datetime | None) -> SourceInstant:
    """The run's source instant. Raises SourceInstantPending while a stream has nothing to go by,
    SourceInstantError when Kafka does not answer."""
    loaded_upper_bound = aware_utc(ch.query("SELECT now64(6)").result_rows[0][0])
    loaded = _loaded_progress(ch, connectors)
    heartbeats = _heartbeats(ch)
    committed, ends = _kafka_offsets(admin, group, [t for c in connectors for t in c.topics])
    marks = stream_marks(connectors, loaded, heartbeats, committed, ends)
    unknown = [m for m in marks if m.watermark is None]
    if unknown or not marks:
        waiting = ", ".join(m.name for m in unknown) or "every connector's topics (none exists yet)"
        raise SourceInstantPending(f"no source instant yet: nothing loaded and no heartbeat for {waiting}")
    limited_by = min(marks, key=lambda m: m.watermark)
    instant = min(limited_by.watermark, loaded_upper_bound)
    if previous is not None and aware_utc(previous) > instant:
        instant = aware_utc(previous)
    return SourceInstant(instant, loaded_upper_bound, limited_by, tuple(marks))
