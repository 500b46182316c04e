"""ClickHouse values as the pages' JSON carries them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from bankcdc_ops.utc import aware_utc


def jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 in UTC (ClickHouse's naive ones are UTC), decimals as exact strings."""
    if isinstance(value, dt.datetime):
        return aware_utc(value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def plot_time(value: dt.datetime) -> str:
    """A chart's time in UTC, without an offset: plotly.js reads date strings as wall-clock time."""
    return aware_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
