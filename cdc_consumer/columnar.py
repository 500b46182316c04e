"""A partition's block built column by column: typed decoding into one Arrow table.

The row path (envelope.decode, converters, RawTable.row) checks and converts every value
in Python, one at a time, and clickhouse-connect serialises each again: most of the consumer's
CPU when it drains a backlog. This builder decodes each event straight into a msgspec struct
made for the raw table, whose field types carry the cheap checks (integer ranges, nulls,
required and unknown columns, epoch-millisecond ranges), then converts and checks whole columns
with Arrow (decimal and timestamp text, their forms and ranges) and hands ClickHouse the block
as one Arrow table, which it reads in C++.

It accepts a subset of what the row path accepts, with the same values: anything else (an event
the row path would dead-letter, a new source column, Debezium's unchanged-TOAST placeholder, a
form it does not parse) makes `build` return None, and the caller builds that block row by row,
which loads or dead-letters each event exactly as before. A table with a column type it has no
plan for is built row by row always (`for_table` returns None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Optional, Sequence

import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from cdc_consumer.converters import DATE_RANGES, DATETIME64_RANGE, INT_RANGES, unwrap
from cdc_consumer.envelope import TS_MS_RANGE, UNAVAILABLE

_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()
_UNAVAILABLE = UNAVAILABLE.encode()
_DECIMAL = re.compile(r"Decimal(?:\d+)?\((\d+),\s*(\d+)\)")
_DATETIME64 = re.compile(r"DateTime64\((\d+)(?:,\s*'[^']*')?\)")
# the forms Debezium writes, which Arrow's parsers read to the same value as the row path's
_TIMESTAMP_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
_UUID_TEXT = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_MS_UNITS = {0: None, 3: "ms", 6: "us", 9: "ns"}  # DateTime64(p) -> Arrow unit (0: not exact from ms)
# what makes a block go back to the row path: msgspec's refusals, invalid UTF-8, Arrow's refusals
_REFUSED = (msgspec.DecodeError, UnicodeDecodeError, pa.ArrowInvalid, OverflowError)

Column = Callable[[Sequence[Any]], pa.Array]  # a column's decoded values -> its Arrow array


class _Refused(Exception):
    """An event or a column's values this builder does not convert exactly: the row path decides."""


class _Object(msgspec.Struct, gc=False):
    """Any JSON object, its fields skipped: a before image the loaded row does not use."""


class _Source(msgspec.Struct, gc=False):
    lsn: Annotated[int, msgspec.Meta(ge=0)]
    ts_ms: Annotated[int, msgspec.Meta(ge=TS_MS_RANGE[0], le=TS_MS_RANGE[1])]
    table: Optional[str] = None


_EmittedMs = Optional[Annotated[int, msgspec.Meta(ge=TS_MS_RANGE[0], le=TS_MS_RANGE[1])]]


@dataclass(frozen=True)
class ColumnarBlock:
    """One partition's block as an Arrow table in the raw table's insert order."""

    data: pa.Table
    tombstones: int
    newest_commit_ms: int | None


def _all_match(values: pa.Array, pattern: str) -> None:
    """Refuse unless every non-null value matches `pattern` (RE2, over the whole array at once)."""
    if pc.all(pc.match_substring_regex(values, pattern)).as_py() not in (True, None):
        raise _Refused


def _in_range(values: pa.Array, low: Any, high: Any) -> pa.Array:
    bounds = pc.min_max(values).as_py()
    if bounds["min"] is not None and not (low <= bounds["min"] and bounds["max"] <= high):
        raise _Refused
    return values


def _typed_column(arrow_type: pa.DataType) -> Column:
    return lambda values: pa.array(values, arrow_type)


def _decimal_column(precision: int, scale: int) -> Column:
    decimal_type = pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
    plain = rf"^-?[0-9]+(\.[0-9]{{1,{scale}}})?$" if scale else r"^-?[0-9]+$"

    def convert(values: Sequence[Any]) -> pa.Array:
        text = pa.array(values, pa.string())
        _all_match(text, plain)
        return text.cast(decimal_type)  # ArrowInvalid when the digits exceed the precision
    return convert


def _timestamp_column(values: Sequence[Any]) -> pa.Array:
    text = pa.array(values, pa.string())
    _all_match(text, _TIMESTAMP_TEXT)
    return _in_range(text.cast(pa.timestamp("us", "UTC")), *DATETIME64_RANGE)


def _uuid_column(values: Sequence[Any]) -> pa.Array:
    text = pa.array(values, pa.string())
    _all_match(text, _UUID_TEXT)
    return text


@dataclass(frozen=True)
class _Plan:
    kind: Any          # the msgspec type a JSON value must have
    convert: Column
    nullable: bool


def _plan(ch_type: str) -> _Plan | None:
    """How one ClickHouse column type is decoded and converted, or None when it has no exact plan."""
    inner, nullable = unwrap(ch_type)
    plan: tuple[Any, Column] | None = None
    decimal, datetime64 = _DECIMAL.fullmatch(inner), _DATETIME64.fullmatch(inner)
    if inner in INT_RANGES:
        low, high = INT_RANGES[inner]
        # msgspec checks bounds only within int64; pa.array refuses a UInt64 past 2^64-1
        meta = msgspec.Meta(ge=low, le=high) if high < 2**63 else msgspec.Meta(ge=low)
        plan = Annotated[int, meta], _typed_column(getattr(pa, inner.lower())())
    elif decimal:
        plan = str, _decimal_column(int(decimal.group(1)), int(decimal.group(2)))
    elif datetime64 and datetime64.group(1) == "6":
        plan = str, _timestamp_column
    elif inner in DATE_RANGES:
        low, high = (day.toordinal() - _EPOCH_ORDINAL for day in DATE_RANGES[inner])
        plan = Annotated[int, msgspec.Meta(ge=low, le=high)], _typed_column(pa.date32())
    elif inner == "Bool":
        plan = bool, _typed_column(pa.bool_())
    elif inner in ("Float32", "Float64"):
        plan = float, _typed_column(pa.float32() if inner == "Float32" else pa.float64())
    elif inner == "String":
        plan = str, _typed_column(pa.string())
    elif inner == "UUID":
        plan = str, _uuid_column
    if plan is None:
        return None
    kind, convert = plan
    return _Plan(Optional[kind] if nullable else kind, convert, nullable)


def _ms_unit(ch_type: str) -> str | None:
    """The Arrow unit that holds epoch milliseconds exactly in a DateTime64(p) column, or None."""
    match = _DATETIME64.fullmatch(ch_type)
    return _MS_UNITS.get(int(match.group(1))) if match else None


class ColumnarBuilder:
    """Builds one raw table's blocks; made by `for_table` from the table's column types."""

    def __init__(self, table: str, source: dict[str, _Plan], order: list[str], ms_units: dict[str, str]) -> None:
        self.table = table
        self.order = order
        self.source_columns = list(source)
        self.conversions = [plan.convert for plan in source.values()]
        self.ms_units = ms_units
        # fields c0, c1, ... renamed to the columns, so that any column name is a valid field; a
        # nullable column may be absent (None), any other must be present; no reference cycles, so
        # the structs need no garbage-collector tracking
        fields = [(f"c{i}", plan.kind, None) if plan.nullable else (f"c{i}", plan.kind)
                  for i, plan in enumerate(source.values())]
        row = msgspec.defstruct(f"{table}_row", fields, kw_only=True, forbid_unknown_fields=True, gc=False,
                                rename={f"c{i}": name for i, name in enumerate(source)})
        envelope = msgspec.defstruct(f"{table}_event", [
            ("op", Literal["c", "u", "r", "d"]), ("source", _Source), ("before", Optional[_Object], None),
            ("after", Optional[row], None), ("ts_ms", _EmittedMs, None)], kw_only=True, gc=False)
        deleted = msgspec.defstruct(f"{table}_delete", [
            ("before", row), ("after", Optional[_Object], None)], kw_only=True, gc=False)
        self._decode = msgspec.json.Decoder(envelope).decode
        self._decode_delete = msgspec.json.Decoder(deleted).decode

    @classmethod
    def for_table(cls, table: str, columns: dict[str, str], reserved: frozenset[str]) -> ColumnarBuilder | None:
        """A builder for a raw table (columns in table order, `reserved` the CDC metadata and
        server-side columns), or None when a column's type has no exact columnar plan."""
        source: dict[str, _Plan] = {}
        for name, ch_type in columns.items():
            if name in reserved:
                continue
            plan = _plan(ch_type)
            if plan is None:
                return None
            source[name] = plan
        ms_units = {name: _ms_unit(columns.get(name, "")) for name in ("_source_ts", "_emitted_ts")}
        if None in ms_units.values():
            return None
        order = [c for c in columns if c != "_loaded_at"]
        return cls(table, source, order, ms_units)

    def build(self, topic: str, partition: int, messages: Sequence[Any]) -> ColumnarBlock | None:
        """The block of one partition's messages (confluent-kafka Messages, in offset order), or
        None when any of them needs the row path."""
        try:
            return self._build(topic, partition, messages)
        except (_Refused, *_REFUSED):
            return None

    def _build(self, topic: str, partition: int, messages: Sequence[Any]) -> ColumnarBlock:
        rows, ops, lsns, commit_ms, emitted_ms, offsets = [], [], [], [], [], []
        astuple, decode, table = msgspec.structs.astuple, self._decode, self.table
        tombstones = 0
        for msg in messages:
            value = msg.value()
            if value is None:
                tombstones += 1
                continue
            if _UNAVAILABLE in value:
                raise _Refused  # the row path fills it from the before image
            event = decode(value)
            source = event.source
            if source.table is not None and source.table != table:
                raise _Refused
            if event.op == "d":
                row = self._decode_delete(value).before
            elif event.after is None:
                raise _Refused
            else:
                row = event.after
            rows.append(astuple(row))
            ops.append(event.op)
            lsns.append(source.lsn)
            commit_ms.append(source.ts_ms)
            emitted_ms.append(event.ts_ms or source.ts_ms)
            offsets.append(msg.offset())
        if not rows:
            raise _Refused  # only tombstones: nothing to insert, the row path counts them
        columns = dict(zip(self.source_columns,
                           (convert(values) for convert, values in zip(self.conversions, zip(*rows)))))
        count = len(rows)
        op = pa.array(ops, pa.string())
        lsn = pa.array(lsns, pa.uint64())  # OverflowError past 2^64-1: the row path dead-letters it
        columns.update({
            "_op": op, "_lsn": lsn,
            "_version": lsn if "r" not in ops else pa.array([0 if o == "r" else n for o, n in zip(ops, lsns)],
                                                             pa.uint64()),
            "_source_ts": _milliseconds(commit_ms, self.ms_units["_source_ts"]),
            "_emitted_ts": _milliseconds(emitted_ms, self.ms_units["_emitted_ts"]),
            "_topic": pa.repeat(pa.scalar(topic, pa.string()), count),
            "_partition": pa.repeat(pa.scalar(partition, pa.int32()), count),
            "_offset": pa.array(offsets, pa.int64()),
            "_is_deleted": pc.equal(op, "d").cast(pa.uint8()),
        })
        data = pa.Table.from_arrays([columns[name] for name in self.order], names=self.order)
        return ColumnarBlock(data, tombstones, max(commit_ms))


def _milliseconds(values: list[int], unit: str) -> pa.Array:
    stamps = pa.array(values, pa.timestamp("ms", "UTC"))
    return stamps if unit == "ms" else stamps.cast(pa.timestamp(unit, "UTC"))

