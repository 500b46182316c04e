"""The columnar builder loads exactly what the row path loads, or gives the block back to it.

Every accepted block is compared value by value with the row path's rows (envelope.decode and
RawTable.row) for the same messages; every form the builder does not convert exactly must make
it return None, so that the row path decides (load, convert or dead-letter).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from cdc_consumer.envelope import UNAVAILABLE, SourceRef, decode
from cdc_consumer.errors import DecodeError
from cdc_consumer.loader import RESERVED_COLUMNS, RawTable

TOPIC = "bank.bank.transaction"
META = {"_op": "LowCardinality(String)", "_lsn": "UInt64", "_version": "UInt64",
        "_source_ts": "DateTime64(3, 'UTC')", "_emitted_ts": "DateTime64(3, 'UTC')",
        "_topic": "LowCardinality(String)", "_partition": "Int32", "_offset": "Int64",
        "_loaded_at": "DateTime64(6, 'UTC')", "_is_deleted": "UInt8"}
# raw.transaction's and raw.customer's source column types, and every other type with a plan
COLUMNS = {
    "transaction_id": "Int64", "card_id": "Int64", "txn_type": "LowCardinality(String)",
    "amount": "Decimal(18, 2)", "card_present": "Bool", "decline_reason": "Nullable(String)",
    "created_at": "DateTime64(6, 'UTC')", "approved_at": "Nullable(DateTime64(6, 'UTC'))",
    "external_ref": "UUID", "date_of_birth": "Date32", "small": "Int8", "count": "UInt32",
    "big": "UInt64", "ratio": "Float64", "opened_on": "Nullable(Date)", **META,
}
ROW = {"transaction_id": 7, "card_id": 3, "txn_type": "purchase", "amount": "145.80", "card_present": False,
       "decline_reason": None, "created_at": "2026-12-07T07:40:12.673631Z", "approved_at": None,
       "external_ref": "626f7728-ddd8-4df7-b010-4fefe4e109b5", "date_of_birth": 890, "small": -128,
       "count": 4294967295, "big": 18446744073709551615, "ratio": 0.25, "opened_on": None}


@dataclass
class Message:
    """What the builders read of a confluent-kafka Message."""

    _value: bytes | None
    _offset: int

    def value(self) -> bytes | None:
        return self._value

    def offset(self) -> int:
        return self._offset


def table(columns: dict[str, str] = COLUMNS) -> RawTable:
    raw = RawTable("transaction", dict(columns), ["transaction_id"])
    raw.refresh_converters()
    return raw


def event(op: str = "c", after: Any = None, before: Any = None, lsn: int = 1000, ts_ms: Any = 1_796_629_231_305,
          **extra: Any) -> bytes:
    source = {"lsn": lsn, "ts_ms": 1_796_629_231_000, "table": "transaction", "schema": "bank",
              **extra.pop("source", {})}
    image = after if after is not None or op == "d" else ROW
    return json.dumps({"before": before, "after": image, "op": op, "ts_ms": ts_ms, "source": source,
                       **extra}).encode()


def messages(*values: bytes | None) -> list[Message]:
    return [Message(value, offset) for offset, value in enumerate(values, start=100)]


def row_path(raw: RawTable, msgs: list[Message]) -> list[list[Any]]:
    rows = []
    for msg in msgs:
        decoded = decode(msg.value(), SourceRef(TOPIC, 2, msg.offset()), "bank")
        if decoded is not None:
            rows.append(raw.row(decoded))
    return rows


def canonical(value: Any) -> Any:
    """Both sides as the stored value: instants as epoch microseconds, decimals exact."""
    if isinstance(value, dt.datetime):
        return round((value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) / dt.timedelta(microseconds=1))
    return value


def columnar_rows(raw: RawTable, msgs: list[Message]) -> list[list[Any]]:
    assert raw.columnar is not None
    block = raw.columnar.build(TOPIC, 2, msgs)
    assert block is not None, "the columnar builder gave the block back"
    assert block.data.column_names == raw.insert_columns
    data = block.data
    for name in ("_source_ts", "_emitted_ts"):  # the row path passes these as the column's ticks
        data = data.set_column(data.column_names.index(name), name, data[name].cast(pa.int64()))
    return [[row[c] for c in raw.insert_columns] for row in data.to_pylist()]


def assert_same_rows(raw: RawTable, msgs: list[Message]) -> None:
    expected = [[canonical(v) for v in row] for row in row_path(raw, msgs)]
    actual = [[canonical(v) for v in row] for row in columnar_rows(raw, msgs)]
    assert actual == expected


def test_every_operation_loads_as_the_row_path_loads_it() -> None:
    updated = {**ROW, "approved_at": "2026-12-07T08:40:12.000001+01:00", "amount": "-0.5", "decline_reason": "ok"}
    assert_same_rows(table(), messages(
        event("c"),
        event("u", updated, before=ROW, lsn=2000),
        event("r", lsn=500, source={"snapshot": "true"}),
        event("d", before=updated, lsn=3000),
        None,  # the tombstone after a delete
        event("c", {**ROW, "created_at": "1900-01-01T00:00:00Z", "date_of_birth": -25567, "amount": "9999999999999999.99",
                    "small": 127, "big": 0, "ratio": 3, "opened_on": 0}, ts_ms=None),
    ))


def test_metadata_columns() -> None:
    raw = table()
    msgs = messages(event("r", lsn=500), None, event("d", before=ROW, lsn=3000, ts_ms=0))
    block = raw.columnar.build(TOPIC, 2, msgs) if raw.columnar else None
    assert block is not None and block.tombstones == 1 and block.newest_commit_ms == 1_796_629_231_000
    meta = block.data.select(["_op", "_lsn", "_version", "_topic", "_partition", "_offset", "_is_deleted"])
    assert meta.to_pylist() == [
        {"_op": "r", "_lsn": 500, "_version": 0, "_topic": TOPIC, "_partition": 2, "_offset": 100, "_is_deleted": 0},
        {"_op": "d", "_lsn": 3000, "_version": 3000, "_topic": TOPIC, "_partition": 2, "_offset": 102,
         "_is_deleted": 1}]
    assert block.data["_emitted_ts"].cast(pa.int64()).to_pylist()[1] == 1_796_629_231_000, "ts_ms 0: the commit time"


def test_milliseconds_fill_a_microsecond_metadata_column() -> None:
    assert_same_rows(table({**COLUMNS, "_emitted_ts": "DateTime64(6, 'UTC')"}), messages(event("c")))


def test_a_missing_nullable_column_is_null() -> None:
    row = {k: v for k, v in ROW.items() if k not in ("decline_reason", "opened_on")}
    assert_same_rows(table(), messages(event("c", row)))


def _with(**changes: Any) -> bytes:
    return event("c", {**ROW, **changes})


@pytest.mark.parametrize("value", [
    _with(transaction_id="7"),                      # an integer as text: the row path converts it
    _with(transaction_id=7.0),
    _with(transaction_id=True),
    _with(small=128),                               # out of Int8's range
    _with(count=-1),
    _with(big=2**64),                               # past UInt64
    _with(amount=145.8),                            # money as a float
    _with(amount=145),                              # money as a JSON number: the row path converts it
    _with(amount="145.801"),                        # more places than the scale
    _with(amount="145.800"),                        # exact, but more places than the scale
    _with(amount="1e2"),                            # a form the row path reads, and this builder does not
    _with(amount=" 12"),
    _with(amount="10000000000000000"),              # past the precision
    _with(amount="NaN"),
    _with(created_at="2026-12-07T07:40:12.673631"),  # no zone: the row path takes it as UTC
    _with(created_at="2026-12-07 07:40:12Z"),
    _with(created_at="2026-12-07T07:40:12.6736319Z"),
    _with(created_at="2026-02-30T07:40:12Z"),
    _with(created_at="2400-01-01T00:00:00Z"),      # outside DateTime64's range
    _with(created_at="1899-12-31T23:59:59.999999Z"),
    _with(created_at=1_796_629_231_305_179),        # epoch microseconds: the row path converts them
    _with(date_of_birth=-25568),                    # before Date32's range
    _with(date_of_birth="2026-01-01"),
    _with(opened_on=-1),                            # before Date's range
    _with(card_present=0),
    _with(external_ref="626f7728ddd84df7b0104fefe4e109b5"),
    _with(external_ref="not-a-uuid"),
    _with(txn_type=None),                           # NULL in a non-nullable column
    _with(txn_type={"nested": 1}),                  # the row path writes its JSON text
    event("u", {**ROW, "txn_type": UNAVAILABLE}, before=ROW),  # unchanged TOAST: the row path fills it
    _with(acquirer_ref="new"),                      # a new source column: the row path adds it
    _with(_op="x"),                                 # collides with the CDC metadata
    event("c", {k: v for k, v in ROW.items() if k != "card_id"}),  # a non-nullable column missing
    event("c", ROW, lsn=2**64),
    event("c", ROW, lsn=-1),
    event("c", ROW, ts_ms=10**14),
    event("c", ROW, source={"table": "card"}),
    event("u", ROW, before=5),
    event("d", before=None),
    event("x"),
    json.dumps({"op": "c", "after": ROW, "source": {"ts_ms": 1}}).encode(),
    json.dumps({"schema": {}, "payload": json.loads(event("c"))}).encode(),  # schemas enabled
    b'{"op": "c", "after": {"txn_type": "\\udc80"}',
    b"\xff\xfe not json",
    b"[1, 2]",
])
def test_what_it_does_not_convert_exactly_goes_to_the_row_path(value: bytes) -> None:
    raw = table()
    assert raw.columnar is not None
    good = event("c")
    assert raw.columnar.build(TOPIC, 2, messages(good, value, good)) is None


def test_only_tombstones_go_to_the_row_path() -> None:
    raw = table()
    assert raw.columnar is not None and raw.columnar.build(TOPIC, 2, messages(None, None)) is None


@pytest.mark.parametrize("value, loaded", [
    (_with(amount="145.800"), False),
    (_with(amount="1e2"), True),
    (_with(created_at="2026-12-07T07:40:12.673631"), True),
    (event("u", {**ROW, "txn_type": UNAVAILABLE}, before=ROW), True),  # filled from the before image
    (_with(small=128), False),
])
def test_the_row_path_still_decides_what_the_builder_gives_back(value: bytes, loaded: bool) -> None:
    """The builder's refusals are not verdicts: some of these events load, row by row."""
    raw = table()
    if loaded:
        assert row_path(raw, messages(value))
    else:
        with pytest.raises(DecodeError):
            row_path(raw, messages(value))


@pytest.mark.parametrize("ch_type", ["Enum8('a' = 1)", "FixedString(4)", "DateTime64(3, 'UTC')", "DateTime",
                                     "Array(String)", "Map(String, String)"])
def test_a_table_with_a_type_without_a_plan_is_built_row_by_row(ch_type: str) -> None:
    assert table({**COLUMNS, "odd": ch_type}).columnar is None
    assert table({**COLUMNS, "_source_ts": "DateTime64(2, 'UTC')"}).columnar is None


def test_any_column_name_is_a_field() -> None:
    columns = {"class": "Int64", "from to": "Nullable(String)", **META}
    raw = table(columns)
    assert_same_rows(raw, messages(event("c", {"class": 1, "from to": "x"}), event("c", {"class": 2})))
    assert RESERVED_COLUMNS.isdisjoint(raw.converters)


def test_money_keeps_its_exact_value() -> None:
    rows = columnar_rows(table(), messages(_with(amount="0.1"), _with(amount="-9999999999999999.99")))
    assert [row[list(COLUMNS).index("amount")] for row in rows] == [Decimal("0.10"), Decimal("-9999999999999999.99")]
