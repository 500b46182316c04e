"""What cdc_monitoring measures, stage by stage; each probe returns Figures, never raises on a
service being down (that is itself a breached figure), so every stage records something."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from typing import TYPE_CHECKING

from bankcdc_ops.monitoring import Figure
from bankcdc_ops.settings import CONNECT_CONN_ID, ODS_BUILD_TABLE, debezium_dir, read_threshold
from bankcdc_ops.tables import TABLES

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

log = logging.getLogger(__name__)
UTC = dt.timezone.utc


def expected_connectors() -> dict[str, dict[str, str]]:
    """Connector name -> config, from debezium/*.json (the payloads the stack registers)."""
    found = {}
    for path in sorted(debezium_dir().glob("*.json")):
        payload = json.loads(path.read_text())
        found[payload["name"]] = payload.get("config", {})
    return found


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit]


# -- Kafka Connect -------------------------------------------------------------------------------

def connect_figures() -> list[Figure]:
    """Each connector's and task's state from the Connect REST API: 1 running, 0 anything else."""
    import requests

    from bankcdc_ops.connections import connect_api

    url, auth = connect_api()
    try:
        response = requests.get(f"{url}/connectors", params={"expand": "status"}, auth=auth, timeout=10)
        if response.status_code in (401, 403):
            return [Figure("connect", "reachable", url, 0, failed=True,
                           detail=f"Connect REST refused the credentials of connection {CONNECT_CONN_ID} "
                                  f"({response.status_code}): set its login and password")]
        response.raise_for_status()
        statuses = response.json()
    except (requests.RequestException, ValueError) as exc:
        return [Figure("connect", "reachable", url, 0, failed=True, detail=f"Connect REST did not answer: {exc}")]
    figures = []
    for name in sorted(set(expected_connectors()) | set(statuses)):
        status = (statuses.get(name) or {}).get("status")
        if status is None:
            figures.append(Figure("connect", "connector_running", name, 0, failed=True,
                                  detail="not registered (debezium/*.json names it)"))
            continue
        state = status["connector"]["state"]
        figures.append(Figure("connect", "connector_running", name, float(state == "RUNNING"),
                              failed=state != "RUNNING", detail=f"state={state}"))
        tasks = status.get("tasks") or []
        if not tasks:
            figures.append(Figure("connect", "task_running", f"{name}/-", 0, failed=True, detail="no tasks"))
        for task in tasks:
            ok = task["state"] == "RUNNING"
            detail = f"state={task['state']}" + ("" if ok else f" trace: {_first_line(task.get('trace'))}")
            figures.append(Figure("connect", "task_running", f"{name}/{task['id']}", float(ok),
                                  failed=not ok, detail=detail))
    return figures


# -- PostgreSQL replication slots ----------------------------------------------------------------

SLOTS_SQL = """
SELECT slot_name, active, wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS lag_bytes,
       safe_wal_size
FROM pg_replication_slots
WHERE slot_type = 'logical' AND database = current_database()
ORDER BY slot_name
"""


def replication_slot_figures() -> list[Figure]:
    """Per slot: active, wal_status (reserved/extended fine, unreserved/lost not), lag in bytes."""
    from bankcdc_ops.connections import postgres
    from bankcdc_ops.errors import SourceUnavailableError

    limit = read_threshold("cdc_max_slot_lag_bytes")
    try:
        pg = postgres()
    except SourceUnavailableError as exc:
        return [Figure("replication_slot", "reachable", "postgres_bank", 0, failed=True, detail=str(exc))]
    try:
        with pg.cursor() as cur:
            cur.execute(SLOTS_SQL)
            rows = cur.fetchall()
    finally:
        pg.close()
    figures = []
    expected = {cfg.get("slot.name") for cfg in expected_connectors().values()} - {None}
    seen = {row[0] for row in rows}
    for slot in sorted(expected - seen):
        figures.append(Figure("replication_slot", "active", slot, 0, failed=True, detail="slot does not exist"))
    for slot, active, wal_status, lag_bytes, safe_wal_size in rows:
        figures.append(Figure("replication_slot", "active", slot, float(bool(active)), failed=not active,
                              detail="a walsender is streaming from it" if active else "no consumer attached"))
        at_risk = wal_status in ("unreserved", "lost")
        figures.append(Figure("replication_slot", "wal_at_risk", slot, float(at_risk), failed=at_risk,
                              detail=f"wal_status={wal_status}, safe_wal_size={safe_wal_size}"))
        figures.append(Figure("replication_slot", "lag_bytes", slot, float(lag_bytes or 0), limit,
                              "cdc_max_slot_lag_bytes"))
    return figures


# -- Kafka consumer group ------------------------------------------------------------------------

def kafka_figures() -> list[Figure]:
    """Consumer-group lag per partition of every CDC topic (log end offset - committed offset)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    from cdc_consumer.config import ConsumerSettings
    from bankcdc_ops.connections import kafka_config

    settings = ConsumerSettings.from_env()
    group, pattern = settings.group_id, re.compile(settings.topic_regex)
    limit = read_threshold("cdc_max_consumer_lag_messages")
    config = kafka_config()
    admin = AdminClient({**config, "socket.timeout.ms": 10000})
    try:
        metadata = admin.list_topics(timeout=10)
        partitions = [TopicPartition(topic, p) for topic, meta in sorted(metadata.topics.items())
                      if pattern.match(topic) for p in sorted(meta.partitions)]
        members = len(admin.describe_consumer_groups([group], request_timeout=10)[group].result().members)
        committed_result = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, partitions)], request_timeout=10)[group].result()
        committed = {(tp.topic, tp.partition): tp.offset for tp in committed_result.topic_partitions}
        ends = {tp: f.result() for tp, f in
                admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions}, request_timeout=10).items()}
        starts = {tp: f.result() for tp, f in
                  admin.list_offsets({tp: OffsetSpec.earliest() for tp in partitions}, request_timeout=10).items()}
    except KafkaException as exc:
        return [Figure("kafka", "reachable", config["bootstrap.servers"], 0, failed=True,
                       detail=f"Kafka admin request failed: {exc}")]
    figures = [Figure("kafka", "group_members", group, float(members), failed=members == 0,
                      detail="consumers in the group" if members else "no consumer is running in the group")]
    total = 0
    for tp in partitions:
        end, start = ends[tp].offset, starts[tp].offset
        offset = committed.get((tp.topic, tp.partition), -1)
        lag = max(0, end - offset) if offset >= 0 else max(0, end - start)
        total += lag
        figures.append(Figure("kafka", "consumer_lag_messages", f"{tp.topic}[{tp.partition}]", float(lag),
                              limit, "cdc_max_consumer_lag_messages",
                              detail=f"group={group} committed={offset if offset >= 0 else 'none'} end={end}"))
    figures.append(Figure("kafka", "consumer_lag_total", group, float(total),
                          detail=f"{len(partitions)} partitions"))
    return figures


# -- ClickHouse freshness ------------------------------------------------------------------------

def clickhouse_freshness_figures() -> list[Figure]:
    """Per raw table: age of the newest change loaded (its commit time in PostgreSQL to now)."""
    from bankcdc_ops.connections import reused_clickhouse

    limit = read_threshold("cdc_max_freshness_seconds")
    with reused_clickhouse() as client:
        selects = " UNION ALL ".join(
            f"SELECT '{t.name}' AS tbl, count() AS n, max(_source_ts) AS newest, max(_loaded_at) AS loaded, "
            f"now64(3) AS now FROM {t.raw_relation}" for t in TABLES.values())
        rows = client.query(selects).result_rows
        dead = client.query("SELECT count() FROM raw._dead_letter").result_rows[0][0]
    figures = []
    for table, count, newest, loaded, now in sorted(rows):
        if not count:
            figures.append(Figure("clickhouse", "freshness_seconds", f"raw.{table}", float("inf"), limit,
                                  "cdc_max_freshness_seconds", detail="the raw table is empty"))
            continue
        age = (now - newest).total_seconds()
        figures.append(Figure("clickhouse", "freshness_seconds", f"raw.{table}", age, limit,
                              "cdc_max_freshness_seconds",
                              detail=f"newest commit {newest:%Y-%m-%d %H:%M:%S}, last load {loaded:%H:%M:%S}"))
    figures.append(Figure("clickhouse", "dead_letters", "raw._dead_letter", float(dead),
                          detail="events the consumer could not load"))
    return figures


# -- End to end: Debezium heartbeat from PostgreSQL to ClickHouse --------------------------------

def end_to_end_figures(wait_seconds: float = 15.0) -> list[Figure]:
    """Per connector heartbeat (cdc.heartbeat, upserted by Debezium every heartbeat.interval.ms):

    * heartbeat_age_seconds: now - the newest heartbeat visible in raw.heartbeat. It grows
      whenever any part of the chain stops (Debezium, Kafka, consumer, ClickHouse); healthy,
      it stays under one heartbeat interval plus the transit time.
    * transit_seconds: commit time -> load time of the heartbeat PostgreSQL holds now, once it
      arrives (waits up to `wait_seconds` for it).
    """
    from bankcdc_ops.connections import postgres, reused_clickhouse

    limit = read_threshold("cdc_max_end_to_end_seconds")
    pg = postgres()
    try:
        with pg.cursor() as cur:
            cur.execute("SELECT source, beat_at FROM cdc.heartbeat ORDER BY source")
            pg_beats = dict(cur.fetchall())
    finally:
        pg.close()
    expected = set(expected_connectors())
    figures = []
    with reused_clickhouse() as client:
        for source in sorted(expected | set(pg_beats)):
            beat = pg_beats.get(source)
            if beat is None:
                figures.append(Figure("end_to_end", "heartbeat_age_seconds", source, float("inf"), limit,
                                      "cdc_max_end_to_end_seconds",
                                      detail="no heartbeat row in PostgreSQL cdc.heartbeat yet"))
                continue
            arrived = _wait_for_beat(client, source, beat, wait_seconds)
            newest, now = client.query(
                "SELECT max(beat_at), now64(6) FROM raw.heartbeat WHERE source = {s:String}",
                parameters={"s": source}).result_rows[0]
            if arrived is None:
                age = (now - newest).total_seconds() if newest.year > 1970 else float("inf")
                figures.append(Figure("end_to_end", "heartbeat_age_seconds", source, age, limit,
                                      "cdc_max_end_to_end_seconds",
                                      detail=f"heartbeat committed {beat:%H:%M:%S.%f} in PostgreSQL not in "
                                             f"ClickHouse after {wait_seconds:.0f}s"))
                continue
            beat_at, loaded_at = arrived
            figures.append(Figure("end_to_end", "heartbeat_age_seconds", source, (now - newest).total_seconds(),
                                  limit, "cdc_max_end_to_end_seconds", detail=f"newest heartbeat {newest:%H:%M:%S}"))
            figures.append(Figure("end_to_end", "transit_seconds", source, (loaded_at - beat_at).total_seconds(),
                                  limit, "cdc_max_end_to_end_seconds",
                                  detail=f"committed {beat_at:%H:%M:%S.%f}, loaded {loaded_at:%H:%M:%S.%f}"))
    return figures


def _wait_for_beat(client: "Client", source: str, beat: dt.datetime,
                   wait_seconds: float) -> tuple[dt.datetime, dt.datetime] | None:
    """(beat_at, _loaded_at) of the first heartbeat at or after `beat` in ClickHouse, or None."""
    deadline = time.monotonic() + wait_seconds
    beat_utc = beat.astimezone(UTC).replace(tzinfo=None)
    while True:
        rows = client.query(
            "SELECT beat_at, _loaded_at FROM raw.heartbeat WHERE source = {s:String} "
            "AND beat_at >= {b:DateTime64(6)} ORDER BY beat_at, _loaded_at LIMIT 1",
            parameters={"s": source, "b": beat_utc}).result_rows
        if rows:
            return rows[0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(1.0)


# -- ODS build ----------------------------------------------------------------------------------

def ods_build_figures() -> list[Figure]:
    """Seconds since the last successful dbt_incremental build, and how old its source instant T
    is (what the ODS tables and fraud marts show lags the source by that much).

    Before the first build, soon after the pipeline started (its first heartbeat in ClickHouse,
    less than cdc_max_ods_build_age_seconds ago), both are *warming*, not breached."""
    from bankcdc_ops.connections import reused_clickhouse

    limit = read_threshold("cdc_max_ods_build_age_seconds")
    source_limit = read_threshold("cdc_max_ods_source_age_seconds")
    with reused_clickhouse() as client:
        builds, newest, instant, now = client.query(
            f"SELECT count(), max(finished_at), max(source_instant), now64(3) FROM {ODS_BUILD_TABLE} "
            "WHERE status = 'success'").result_rows[0]
        started, beats = client.query("SELECT min(_loaded_at), count() FROM raw.heartbeat").result_rows[0]
    if not builds:
        running = (now - started).total_seconds() if beats else 0.0
        warming = running < limit
        detail = (f"no successful ODS build yet, {running:.0f} s after the pipeline's first heartbeat: warming up"
                  if warming else f"no successful ODS build in the {running:.0f} s since the pipeline started")
        return [Figure("ods", "seconds_since_build", "dbt_incremental", running, limit,
                       "cdc_max_ods_build_age_seconds", detail=detail, warming=warming),
                Figure("ods", "source_instant_age_seconds", "dbt_incremental", running, source_limit,
                       "cdc_max_ods_source_age_seconds", detail=detail, warming=warming)]
    figures = [Figure("ods", "seconds_since_build", "dbt_incremental", (now - newest).total_seconds(), limit,
                      "cdc_max_ods_build_age_seconds", detail=f"last build finished {newest:%Y-%m-%d %H:%M:%S} UTC")]
    if instant.year > 1970:
        figures.append(Figure("ods", "source_instant_age_seconds", "dbt_incremental",
                              (now - instant).total_seconds(), source_limit, "cdc_max_ods_source_age_seconds",
                              detail=f"ODS and marts show the source as of {instant:%Y-%m-%d %H:%M:%S.%f} UTC"))
    return figures


STAGE_PROBES = {
    "connect": connect_figures,
    "replication_slot": replication_slot_figures,
    "kafka": kafka_figures,
    "clickhouse": clickhouse_freshness_figures,
    "end_to_end": end_to_end_figures,
    "ods": ods_build_figures,
}
