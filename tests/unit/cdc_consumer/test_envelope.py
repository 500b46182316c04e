"""Decoding Debezium envelopes: every operation, tombstones, TOAST placeholders, malformed input."""

from __future__ import annotations

import json

import pytest

from cdc_consumer.envelope import UNAVAILABLE, SourceRef, decode, table_of
from cdc_consumer.errors import DecodeError

REF = SourceRef("bank.bank.card", 0, 42)


def event(op: str, before: dict | None, after: dict | None, lsn: int = 1000, snapshot: str = "false") -> bytes:
    return json.dumps({
        "before": before, "after": after, "op": op, "ts_ms": 1_700_000_000_500,
        "source": {"lsn": lsn, "ts_ms": 1_700_000_000_000, "table": "card", "schema": "bank", "snapshot": snapshot},
    }).encode()


def test_insert_update_delete_and_snapshot_read() -> None:
    created = decode(event("c", None, {"card_id": 1, "status": "active"}), REF, "bank")
    assert created and created.op == "c" and created.row == {"card_id": 1, "status": "active"}
    assert created.version == created.lsn == 1000 and created.commit_ts_ms == 1_700_000_000_000

    updated = decode(event("u", {"card_id": 1, "status": "active"}, {"card_id": 1, "status": "closed"}, 2000), REF, "bank")
    assert updated and updated.row["status"] == "closed" and updated.before == {"card_id": 1, "status": "active"}

    deleted = decode(event("d", {"card_id": 1, "status": "closed"}, None, 3000), REF, "bank")
    assert deleted and deleted.is_delete and deleted.row == {"card_id": 1, "status": "closed"}

    read = decode(event("r", None, {"card_id": 1, "status": "active"}, 5000, snapshot="true"), REF, "bank")
    assert read and read.version == 0 and read.lsn == 5000, "snapshot reads rank below every streamed change"


def test_tombstone_is_dropped() -> None:
    assert decode(None, REF, "bank") is None


def test_unchanged_toast_placeholder_never_becomes_a_value() -> None:
    before = {"card_id": 1, "notes": "x" * 10_000, "status": "active"}
    after = {"card_id": 1, "notes": UNAVAILABLE, "status": "closed"}
    filled = decode(event("u", before, after), REF, "bank")
    assert filled and filled.row["notes"] == "x" * 10_000
    no_before = decode(event("u", None, after), REF, "bank")
    assert no_before and "notes" not in no_before.row and UNAVAILABLE not in no_before.row.values()


@pytest.mark.parametrize("payload, message", [
    (b"\xff\xfe not json", "not JSON"),
    (b'{"op": "c", "after": {"a": "Bad \xff Test"}, "source": {"lsn": 1, "ts_ms": 1}}', "not JSON: 'utf-8' codec"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"op": "x", "source": {}}).encode(), "unknown or missing op"),
    (json.dumps({"op": "c", "after": {"a": 1}}).encode(), "missing source"),
    (json.dumps({"op": "c", "after": None, "source": {"lsn": 1, "ts_ms": 1}}).encode(), "without its after"),
    (json.dumps({"op": "c", "after": {"a": 1}, "source": {"ts_ms": 1}}).encode(), "lsn"),
])
def test_malformed_events_raise_decode_error(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(payload, REF, "bank")


def test_topic_names_map_to_tables() -> None:
    assert table_of("bank.bank.transaction", "bank") == "transaction"
    with pytest.raises(DecodeError):
        table_of("other.topic", "bank")


@pytest.mark.parametrize("text", [
    '"\\udc80 lone surrogate"',      # msgspec refuses it, Python's json reads it
    "123456789012345678901234567890",  # beyond 64 bits
    "1.5e400",                         # msgspec refuses it, json reads inf
])
def test_values_decode_exactly_as_json_reads_them(text: str) -> None:
    """The fast decoder falls back to json where they differ, so json decides every value."""
    value = f'{{"card_id": 1, "status": {text}}}'
    raw = event("c", None, {"card_id": 1}).replace(b'{"card_id": 1}', value.encode())
    decoded = decode(raw, REF, "bank")
    assert decoded and decoded.row == json.loads(value)
