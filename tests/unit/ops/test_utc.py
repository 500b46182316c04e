import datetime as dt

from bankcdc_ops.utc import UTC, aware_utc, naive_utc

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def test_aware_utc_takes_naive_values_as_utc() -> None:
    assert aware_utc(dt.datetime(2026, 12, 1, 10, 0)) == dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_aware_utc_converts_other_zones_to_utc() -> None:
    moment = aware_utc(dt.datetime(2026, 12, 1, 12, 0, tzinfo=PLUS_TWO))
    assert moment.tzinfo is UTC and moment.hour == 10


def test_naive_utc_drops_the_zone_after_converting() -> None:
    assert naive_utc(dt.datetime(2026, 12, 1, 12, 0, 0, 5, tzinfo=PLUS_TWO)) == dt.datetime(2026, 12, 1, 10, 0, 0, 5)


def test_naive_utc_keeps_naive_values() -> None:
    moment = dt.datetime(2026, 12, 1, 10, 0)
    assert naive_utc(moment) is moment


def test_round_trip() -> None:
    moment = dt.datetime(2026, 12, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert aware_utc(naive_utc(moment)) == moment
