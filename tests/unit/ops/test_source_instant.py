"""The source instant T chosen from stream progress, without services."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from bankcdc_ops.source_instant import ORDER_MARGIN, Connector, _Loaded, connectors_from, stream_marks

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
DIMS = Connector("bank-dims", ("bank.bank.card",))
TXN = Connector("bank-transactions", ("bank.bank.transaction",))


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_topics_come_from_the_connector_payloads_without_the_heartbeat(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"name": "bank-dims", "config": {
        "topic.prefix": "bank", "table.include.list": "bank.customer, bank.card,cdc.heartbeat"}}))
    assert connectors_from(tmp_path) == [Connector("bank-dims", ("bank.bank.customer", "bank.bank.card"))]


def test_a_partition_behind_is_known_through_its_newest_commit_loaded() -> None:
    marks = stream_marks([TXN], {("bank.bank.transaction", 0): _Loaded(100, at(50))}, {"bank-transactions": at(60)},
                         {}, {("bank.bank.transaction", 0): 130})
    assert [(m.caught_up, m.watermark) for m in marks] == [(False, at(50) - ORDER_MARGIN)]
    assert "30 messages to load" in marks[0].describe()


def test_a_caught_up_idle_partition_advances_with_its_connectors_heartbeat() -> None:
    loaded = {("bank.bank.card", 0): _Loaded(10, at(5))}
    marks = stream_marks([DIMS], loaded, {"bank-dims": at(40), "bank-transactions": at(90)}, {},
                         {("bank.bank.card", 0): 10})
    assert marks[0].caught_up and marks[0].watermark == at(40) - ORDER_MARGIN, "its own heartbeat, not the other's"


def test_the_consumer_groups_commit_counts_as_loaded_past_tombstones_and_dead_letters() -> None:
    loaded = {("bank.bank.card", 0): _Loaded(8, at(5))}   # offsets 8 and 9: a tombstone, a dead letter
    marks = stream_marks([DIMS], loaded, {"bank-dims": at(40)}, {("bank.bank.card", 0): 10},
                         {("bank.bank.card", 0): 10})
    assert marks[0].caught_up and marks[0].watermark == at(40) - ORDER_MARGIN


def test_a_stream_with_nothing_loaded_and_no_heartbeat_has_no_watermark() -> None:
    marks = stream_marks([DIMS], {}, {}, {}, {("bank.bank.card", 0): 0})
    assert marks[0].caught_up and marks[0].watermark is None
    assert "heartbeat not seen yet" in marks[0].describe()
