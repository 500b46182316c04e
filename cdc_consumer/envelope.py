"""Debezium change events (JSON converter, schemas disabled) decoded into typed change records.

Ordering: a change's version is its source LSN. Changes to one row are
serialised by PostgreSQL's row locks, so their LSNs grow in commit order.
Snapshot reads get version 0: they rank below every streamed change of the
same key, including a change whose LSN precedes the snapshot's LSN but whose
transaction committed after it. Wall-clock time never orders anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec

from cdc_consumer.errors import DecodeError

# msgspec's decoder: the same values as json.loads (any-size ints, last of duplicate keys wins) at
# a fraction of its CPU, the largest single cost of a consumer draining a backlog
_JSON = msgspec.json.Decoder()

OPERATIONS = {"c": "insert", "u": "update", "d": "delete", "r": "snapshot"}
UNAVAILABLE = "__debezium_unavailable_value"
MAX_LSN = 2**64 - 1                      # pg_lsn is 64 bits; raw _lsn/_version are UInt64
# _source_ts/_emitted_ts are DateTime64(3): 1900-01-01 .. 2299-12-31 in epoch milliseconds
TS_MS_RANGE = (-2208988800000, 10413791999999)


@dataclass(frozen=True)
class SourceRef:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class ChangeEvent:
    table: str
    op: str                       # one of OPERATIONS' keys
    row: dict[str, Any]           # after image, or before image for deletes
    before: dict[str, Any] | None
    lsn: int
    version: int                  # 0 for snapshot reads, else lsn
    commit_ts_ms: int             # source.ts_ms: commit time in PostgreSQL
    emitted_ts_ms: int            # payload ts_ms: when Debezium processed it
    ref: SourceRef

    @property
    def is_delete(self) -> bool:
        return self.op == "d"


def table_of(topic: str, prefix: str) -> str:
    """`<prefix>.<schema>.<table>` -> `<table>`."""
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != prefix:
        raise DecodeError(f"topic {topic!r} is not {prefix}.<schema>.<table>")
    return parts[2]


def decode(value: bytes | None, ref: SourceRef, prefix: str) -> ChangeEvent | None:
    """A Debezium message -> ChangeEvent; None for tombstones; DecodeError for anything malformed."""
    if value is None:
        return None  # tombstone after a delete: compaction marker, not a change
    try:
        payload = _JSON.decode(value)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        # msgspec refuses a few texts Python's json reads (a lone UTF-16 surrogate escape, an
        # overflowing float) and raises UnicodeDecodeError itself on invalid UTF-8: json decides,
        # so the outcome and its message are json's
        try:
            payload = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError(f"not JSON: {exc}") from exc
    if isinstance(payload, dict) and "payload" in payload and "schema" in payload:
        payload = payload["payload"]  # tolerate a converter with schemas enabled
    if not isinstance(payload, dict):
        raise DecodeError("event is not a JSON object")
    op = payload.get("op")
    if op not in OPERATIONS:
        raise DecodeError(f"unknown or missing op {op!r}")
    source = payload.get("source")
    if not isinstance(source, dict):
        raise DecodeError("missing source block")
    before, after = payload.get("before"), payload.get("after")
    row = before if op == "d" else after
    if not isinstance(row, dict):
        raise DecodeError(f"op {op!r} without its {'before' if op == 'd' else 'after'} image")
    if before is not None and not isinstance(before, dict):
        raise DecodeError("before image is not an object")
    try:
        lsn = int(source["lsn"])
        commit_ts = int(source["ts_ms"])
        emitted_ts = int(payload.get("ts_ms") or commit_ts)
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"source block lacks a numeric lsn/ts_ms: {exc}") from exc
    if not 0 <= lsn <= MAX_LSN:
        raise DecodeError(f"source.lsn {lsn} is not a PostgreSQL LSN (0 .. 2^64-1)")
    for name, ms in (("source.ts_ms", commit_ts), ("ts_ms", emitted_ts)):
        if not TS_MS_RANGE[0] <= ms <= TS_MS_RANGE[1]:
            raise DecodeError(f"{name} {ms} is not an epoch time in milliseconds between 1900 and 2299")
    table = table_of(ref.topic, prefix)
    if source.get("table") not in (None, table):
        raise DecodeError(f"event for table {source.get('table')!r} on topic {ref.topic!r}")
    row = _fill_unchanged_toast(row, before)
    return ChangeEvent(
        table=table, op=op, row=row, before=before, lsn=lsn,
        version=0 if op == "r" else lsn, commit_ts_ms=commit_ts, emitted_ts_ms=emitted_ts, ref=ref,
    )


def _fill_unchanged_toast(row: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Replace Debezium's unchanged-TOAST placeholder with the before image's value.

    Tables with large values have REPLICA IDENTITY FULL, so the before image
    carries the real value; where it does not, the column is left out and the
    loader keeps the previous value instead of writing the placeholder.
    """
    if UNAVAILABLE not in row.values():
        return row
    filled = dict(row)
    for column, value in row.items():
        if value == UNAVAILABLE:
            prior = (before or {}).get(column)
            if prior is not None and prior != UNAVAILABLE:
                filled[column] = prior
            else:
                del filled[column]
    return filled
