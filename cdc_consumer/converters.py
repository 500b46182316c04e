"""Debezium JSON values -> Python values of the raw table's exact ClickHouse column types.

Connectors run with `decimal.handling.mode=string` (money arrives as the exact
decimal text, never a float) and the default adaptive time precision:
timestamptz arrives as ISO-8601 text with microseconds and zone, date as days
since the epoch, time as microseconds. The ClickHouse column type decides the
conversion, so clickhouse_init's DDL is the one description of the raw layer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from cdc_consumer.errors import DecodeError

Converter = Callable[[Any], Any]
_EPOCH = dt.date(1970, 1, 1)
INT_RANGES = {
    "Int8": (-(2**7), 2**7 - 1), "Int16": (-(2**15), 2**15 - 1), "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1), "UInt8": (0, 2**8 - 1), "UInt16": (0, 2**16 - 1),
    "UInt32": (0, 2**32 - 1), "UInt64": (0, 2**64 - 1),
}
_DECIMAL = re.compile(r"Decimal(?:\d+)?\((\d+),\s*(\d+)\)")
# what ClickHouse can store: Date32/DateTime64 1900-01-01 .. 2299-12-31, Date 1970-01-01 .. 2149-06-06;
# ClickHouse does not check a Native insert, so a value outside would be stored as a different one
_UTC = dt.timezone.utc
DATETIME64_RANGE = (dt.datetime(1900, 1, 1, tzinfo=_UTC), dt.datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=_UTC))
DATE_RANGES = {"Date32": (dt.date(1900, 1, 1), dt.date(2299, 12, 31)),
                "Date": (dt.date(1970, 1, 1), dt.date(2149, 6, 6))}
_DATETIME_RANGE = (dt.datetime(1970, 1, 1, tzinfo=_UTC), dt.datetime(2106, 2, 7, 6, 28, 15, tzinfo=_UTC))


def _integer(low: int, high: int) -> Converter:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"{number} out of range [{low}, {high}]")
        return number
    return convert


def _decimal(precision: int, scale: int) -> Converter:
    limit = Decimal(10) ** (precision - scale)

    def convert(value: Any) -> Decimal:
        if isinstance(value, float):
            raise ValueError("decimal arrived as a float; connectors must use decimal.handling.mode=string")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal") from None
        if not number.is_finite() or abs(number) >= limit:
            raise ValueError(f"{value} does not fit Decimal({precision}, {scale})")
        if number.as_tuple().exponent < -scale:
            raise ValueError(f"{value} has more than {scale} decimal places")
        return number
    return convert


def _in_range(value: Any, bounds: tuple[Any, Any], ch_type: str) -> Any:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{value.isoformat()} is outside {ch_type}'s range {low.isoformat()} .. {high.isoformat()}")
    return value


def _parse_timestamp(value: Any) -> dt.datetime:
    """ZonedTimestamp text ('2026-11-23T09:36:02.123456Z') or epoch micro/milliseconds."""
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 timestamp ClickHouse can hold") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_UTC)
        return moment.astimezone(_UTC)
    if isinstance(value, int) and not isinstance(value, bool):
        micros = value if abs(value) > 10**14 else value * 1000
        try:
            return dt.datetime(1970, 1, 1, tzinfo=_UTC) + dt.timedelta(microseconds=micros)
        except OverflowError:
            raise ValueError(f"{value} is not an epoch time ClickHouse can hold") from None
    raise ValueError(f"expected a timestamp, got {value!r}")


def _timestamp(bounds: tuple[dt.datetime, dt.datetime], ch_type: str) -> Converter:
    return lambda value: _in_range(_parse_timestamp(value), bounds, ch_type)


def _parse_date(value: Any) -> dt.date:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return _EPOCH + dt.timedelta(days=value)
        except OverflowError:
            raise ValueError(f"{value} days since 1970-01-01 is not a date ClickHouse can hold") from None
    if isinstance(value, str):
        return dt.date.fromisoformat(value)
    raise ValueError(f"expected a date, got {value!r}")


def _date(bounds: tuple[dt.date, dt.date], ch_type: str) -> Converter:
    return lambda value: _in_range(_parse_date(value), bounds, ch_type)


def _string(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON allows lone surrogates (\udc80); UTF-8 and ClickHouse do not
        raise ValueError(f"not valid UTF-8 text: {text[exc.start:exc.end]!r} at character {exc.start} "
                         "(a lone UTF-16 surrogate)") from None
    return text


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected a boolean, got {value!r}")


def unwrap(ch_type: str) -> tuple[str, bool]:
    """(the type inside Nullable and LowCardinality, whether it is Nullable)."""
    nullable = False
    inner = ch_type
    while True:
        if inner.startswith("Nullable(") and inner.endswith(")"):
            nullable, inner = True, inner[len("Nullable("):-1]
        elif inner.startswith("LowCardinality(") and inner.endswith(")"):
            inner = inner[len("LowCardinality("):-1]
        else:
            return inner, nullable


def converter_for(ch_type: str) -> Converter:
    """A converter for one ClickHouse column type (Nullable/LowCardinality unwrapped)."""
    inner, nullable = unwrap(ch_type)
    base: Converter
    decimal = _DECIMAL.fullmatch(inner)
    if inner in INT_RANGES:
        base = _integer(*INT_RANGES[inner])
    elif decimal:
        base = _decimal(int(decimal.group(1)), int(decimal.group(2)))
    elif inner.startswith("DateTime64"):
        base = _timestamp(DATETIME64_RANGE, "DateTime64")
    elif inner.startswith("DateTime"):
        base = _timestamp(_DATETIME_RANGE, "DateTime")
    elif inner in DATE_RANGES:
        base = _date(DATE_RANGES[inner], inner)
    elif inner == "Bool":
        base = _boolean
    elif inner in ("Float32", "Float64"):
        base = float
    else:  # String, FixedString, UUID, Enum: their text form
        base = _string

    def convert(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise ValueError("NULL in a non-nullable column")
        return base(value)
    return convert


def convert_row(row: dict[str, Any], converters: dict[str, Converter]) -> dict[str, Any]:
    converted = {}
    for column, value in row.items():
        try:
            converted[column] = converters[column](value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise DecodeError(f"column {column}: {exc}") from exc
    return converted
