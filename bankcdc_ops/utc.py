"""One form for datetimes that clients hand back naive (meaning UTC) or aware.

clickhouse-connect returns DateTime64 values naive or aware depending on the column and the
client's settings; comparisons and query parameters need one form or the other.
"""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def aware_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` as an aware datetime in UTC; a naive one is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` as a naive datetime meaning UTC; a naive one is returned unchanged."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment
