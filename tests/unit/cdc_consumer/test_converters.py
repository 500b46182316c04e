"""Exact values: money as decimals, timestamps to the microsecond in UTC, ranges enforced."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from cdc_consumer.converters import convert_row, converter_for
from cdc_consumer.errors import DecodeError


def test_money_stays_exact_and_floats_are_refused() -> None:
    money = converter_for("Decimal(18, 2)")
    assert money("12345678.91") == Decimal("12345678.91")
    with pytest.raises(ValueError, match="float"):
        money(0.1)
    with pytest.raises(ValueError, match="does not fit"):
        money("1" * 17)
    with pytest.raises(ValueError, match="decimal places"):
        money("1.001")


def test_timestamptz_keeps_microseconds_and_zone() -> None:
    ts = converter_for("DateTime64(6, 'UTC')")
    assert ts("2026-11-23T09:36:02.123456Z") == dt.datetime(2026, 11, 23, 9, 36, 2, 123456, tzinfo=dt.timezone.utc)
    assert ts("2026-11-23T10:36:02.000001+01:00") == dt.datetime(2026, 11, 23, 9, 36, 2, 1, tzinfo=dt.timezone.utc)


def test_dates_integers_nullability() -> None:
    assert converter_for("Date32")(20000) == dt.date(2024, 10, 4)
    assert converter_for("Nullable(Int64)")(None) is None
    with pytest.raises(ValueError, match="NULL"):
        converter_for("Int64")(None)
    with pytest.raises(ValueError, match="out of range"):
        converter_for("Int32")(2**40)
    assert converter_for("LowCardinality(String)")("EUR") == "EUR"


def test_convert_row_names_the_column() -> None:
    with pytest.raises(DecodeError, match="column amount"):
        convert_row({"amount": "abc"}, {"amount": converter_for("Decimal(18, 2)")})


def test_dates_and_timestamps_outside_clickhouse_ranges_are_refused_not_wrapped() -> None:
    date32, ts = converter_for("Nullable(Date32)"), converter_for("DateTime64(6, 'UTC')")
    assert date32(0) == dt.date(1970, 1, 1)
    with pytest.raises(ValueError, match="outside Date32's range"):
        date32("5000-01-31")
    with pytest.raises(ValueError, match="outside DateTime64's range"):
        ts("2400-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="not an epoch time"):
        ts(10**30)
    with pytest.raises(ValueError, match="not an ISO-8601 timestamp"):
        ts("yesterday")


def test_text_with_a_lone_surrogate_is_refused_as_invalid_utf8() -> None:
    text = converter_for("String")
    assert text("Zürich €") == "Zürich €"
    with pytest.raises(ValueError, match="not valid UTF-8"):
        text("bad \udc80 byte")
