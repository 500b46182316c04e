"""Consumers scale out in one group: three share the partitions at 1,000 tx/s, one is killed with
kill -9 mid-stream, a fourth joins; ODS then equals PostgreSQL with nothing lost and nothing twice.

Each instance is a real `cdc_consumer run` the stack starts (CONSUMER_INSTANCES); at each
rebalance the members load what they buffered before they give partitions up, and each newly
assigned partition resumes after the highest offset ClickHouse holds.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import psutil
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka.admin import AdminClient

from bankcdc_stack.kafka_access import CONSUMER_GROUP
from bankcdc_stack.stack import Stack

from ..cdc_helpers import assert_raw_equals_pg, kafka_client, wait_for
from ..conftest import isolated_stack_env
from .recovery import Filler, build_ods, ods_integrity, raw_redeliveries, wait_streaming

pytestmark = pytest.mark.integration
RATE = 1000          # filler transactions per second, as the issue asks
STREAM_SECONDS = 15  # how long each group shape carries the load
CDC_TOPICS = r"bank\.[a-z0-9_]+\.[a-z0-9_]+"


def with_instances(count: int) -> Stack:
    """The session's stack (same state dir and ports) as seen with CONSUMER_INSTANCES=count."""
    return Stack({**isolated_stack_env(), "CONSUMER_INSTANCES": str(count)})


def group_members(admin: AdminClient) -> dict[str, int]:
    """client.id -> partitions assigned, per live member of the consumer group."""
    group = admin.describe_consumer_groups([CONSUMER_GROUP], request_timeout=10)[CONSUMER_GROUP].result()
    members: dict[str, int] = {}
    for member in group.members:
        members[member.client_id] = members.get(member.client_id, 0) + len(member.assignment.topic_partitions)
    return members


def cdc_partitions(admin: AdminClient) -> int:
    """Partitions of every topic the consumers subscribe to (cdc_consumer.config's default regex)."""
    topics = admin.list_topics(timeout=10).topics
    return sum(len(meta.partitions) for name, meta in topics.items() if re.fullmatch(CDC_TOPICS, name))


def wait_group(admin: AdminClient, clients: set[str], timeout: float = 90) -> dict[str, int]:
    """Until exactly `clients` are members, every partition is assigned, and each holds one. A
    rebalance revokes before it assigns, so the group passes through shapes with partitions
    unowned."""
    total = cdc_partitions(admin)

    def settled() -> dict[str, int] | None:
        members = group_members(admin)
        return members if set(members) == clients and all(members.values()) and sum(members.values()) == total \
            else None
    try:
        return wait_for(settled, timeout=timeout, interval=1, what=f"group members {sorted(clients)}")
    except AssertionError:
        raise AssertionError(f"group has {group_members(admin)}, wanted {sorted(clients)} sharing all {total} "
                             "partitions") from None


def kill_tree(stack: Stack, name: str) -> int:
    """SIGKILL instance `name` with its supervisor, so nothing restarts it."""
    proc = next(p for p in stack.services["consumer"].processes() if p.name == name).process()
    assert proc is not None, f"{name} is not running"
    victims = [proc, *proc.children(recursive=True)]
    for victim in victims:
        victim.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    return len(victims)


def test_three_consumers_lose_one_gain_a_fourth_and_ods_equals_postgres(
        stack: Stack, filler_env: dict[str, str], stack_env: dict[str, str], pg_admin_dsn: str,
        ch: Client, tmp_path: Path) -> None:
    admin = AdminClient(kafka_client(stack_env))
    filler = Filler(filler_env, RATE)
    try:
        wait_streaming(ch)
        three = with_instances(3)
        three.up(["consumer"])
        wait_group(admin, {"cdc-consumer", "cdc-consumer-2", "cdc-consumer-3"})
        time.sleep(STREAM_SECONDS)

        assert kill_tree(three, "consumer-2") >= 2, "the supervisor and its consumer"
        # its partitions move once its session (10 s) expires; the survivors keep loading meanwhile
        wait_group(admin, {"cdc-consumer", "cdc-consumer-3"}, timeout=60)
        four = with_instances(4)
        four.up(["consumer"])  # starts consumer-2 again and adds consumer-4
        assert len(wait_group(admin, {f"cdc-{p.name}" for p in four.services["consumer"].processes()})) == 4
        time.sleep(STREAM_SECONDS)
        assert filler.proc.poll() is None, "the filler rode out the rebalances"
    finally:
        filler.stop()
        single = with_instances(1)
        single.services["consumer"].stop()  # every instance, also those past CONSUMER_INSTANCES=1
        single.up(["consumer"])
    assert_raw_equals_pg(pg_admin_dsn, ch, timeout=300)
    build_ods(stack_env, ch, tmp_path)
    integrity = ods_integrity(pg_admin_dsn, ch)
    assert (integrity.lost, integrity.duplicated, integrity.extra) == (0, 0, 0), integrity
    assert not integrity.mismatches, integrity.mismatches
    # each partition's blocks resumed after what ClickHouse held: no event was loaded twice
    assert raw_redeliveries(ch) == 0
