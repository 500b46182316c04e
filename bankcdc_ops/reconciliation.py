"""PostgreSQL against ODS, per table and per day: counts and sums, then the keys behind a difference.

What is compared: the rows created before the cutoff T, the source instant of the last
successful dbt_incremental build (ODS shows the source as of T), per UTC day of created_at: row
count, sum of keys, sum of amounts (transaction), count per status. PostgreSQL is read in one
REPEATABLE READ snapshot; ODS as its live rows (FINAL, not is_deleted: dbt macro live_rows).
Before the first build there is nothing to compare.

A day that differs is narrowed to its hours, and each differing hour to its keys. A key that
differs is *in flight*, not a mismatch, when
  * PostgreSQL changed it at or after T minus the settle window (Airflow Variable
    reconciliation_settle_seconds: a transaction's updated_at is its start, not its commit), or
  * raw holds a newer change of it than ODS (ODS catches up on the next dbt_incremental run).
Anything else fails the run, with example keys and what differs.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bankcdc_ops.errors import NothingToReconcile, ReconciliationError
from bankcdc_ops.tables import SourceTable, source_table
from bankcdc_ops.utc import naive_utc

log = logging.getLogger(__name__)
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1)
# keys per IN query: an hour a backlog filled can hold 100,000s of keys in flight, and the chDB
# engine read a parameter array of about 130,000 keys as `IN` row by row: one query ran 20 minutes
# on both cores; 10,000 keys take tens of milliseconds
KEYS_PER_QUERY = 10_000


def _metrics(table: SourceTable) -> list[str]:
    return ["rows", "key_sum"] + (["amount_sum"] if table.amount else []) + [f"status_{s}" for s in table.statuses]


def _pg_aggregates(table: SourceTable, bucket: str) -> str:
    expr = ("(created_at AT TIME ZONE 'UTC')::date" if bucket == "day"
            else "date_trunc('hour', created_at AT TIME ZONE 'UTC')")
    cols = ["count(*)", f'sum("{table.key}")'] + ([f'sum("{table.amount}")'] if table.amount else [])
    cols += [f"count(*) FILTER (WHERE status::text = '{s}')" for s in table.statuses]
    return (f"SELECT {expr} AS bucket, {', '.join(cols)} FROM {table.pg_relation} "
            "WHERE created_at >= %(since)s AND created_at < %(until)s GROUP BY 1 ORDER BY 1")


def _ch_live(table: SourceTable) -> str:
    return f"(SELECT * FROM {table.ods_relation} FINAL WHERE NOT is_deleted)"


def _ch_aggregates(table: SourceTable, bucket: str) -> str:
    expr = "toDate(created_at)" if bucket == "day" else "toStartOfHour(created_at)"
    cols = ["count()", f"sum(`{table.key}`)"] + ([f"sum(`{table.amount}`)"] if table.amount else [])
    cols += [f"countIf(toString(status) = '{s}')" for s in table.statuses]
    return (f"SELECT {expr} AS bucket, {', '.join(cols)} FROM {_ch_live(table)} "
            "WHERE created_at >= {since:DateTime64(6, 'UTC')} AND created_at < {until:DateTime64(6, 'UTC')} "
            "GROUP BY bucket ORDER BY bucket")


def _norm(value: Any) -> Any:
    """Datetimes as naive UTC; numbers compare as numbers already (Decimal(5) == 5)."""
    return naive_utc(value) if isinstance(value, dt.datetime) else value


@dataclass
class KeyDiff:
    key: int
    kind: str                  # missing_in_ods | extra_in_ods | differs
    pg: tuple | None
    ods: tuple | None

    def describe(self) -> str:
        return f"{self.key} {self.kind}: postgres={self.pg} ods={self.ods}"


@dataclass
class TableReport:
    table: str
    cutoff: dt.datetime
    days: int = 0
    matching_days: int = 0
    in_flight_keys: int = 0
    day_diffs: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    mismatched_keys: list[KeyDiff] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"{self.table}: {self.days} days compared (created_at < {self.cutoff:%Y-%m-%d %H:%M:%S} UTC), "
                f"{self.matching_days} equal, {self.in_flight_keys} keys in flight")
        if self.mismatched_keys:
            text += f", {len(self.mismatched_keys)} keys differ"
        return text


class Reconciler:
    """One table: PostgreSQL snapshot (REPEATABLE READ) against ODS live rows."""

    def __init__(self, table: SourceTable, pg: Any, ch: Any, keys_per_query: int = KEYS_PER_QUERY) -> None:
        self.table, self.pg, self.ch = table, pg, ch
        self.keys_per_query = keys_per_query

    def run(self, source_instant: dt.datetime, settle_seconds: float, lookback_days: int = 0) -> TableReport:
        cutoff = naive_utc(source_instant)
        changed_since = cutoff - dt.timedelta(seconds=settle_seconds)
        since = (dt.datetime.combine(cutoff.date() - dt.timedelta(days=lookback_days - 1), dt.time())
                 if lookback_days > 0 else EPOCH)
        report = TableReport(self.table.name, cutoff)
        pg_days, ch_days = self._aggregates("day", since, cutoff)
        report.days = len(set(pg_days) | set(ch_days))
        for day in sorted(set(pg_days) | set(ch_days)):
            diffs = _diff_metrics(_metrics(self.table), pg_days.get(day), ch_days.get(day))
            if not diffs:
                report.matching_days += 1
                continue
            start = max(dt.datetime.combine(day, dt.time()), since)
            end = min(start.replace(hour=0) + dt.timedelta(days=1), cutoff)
            mismatched, in_flight = self._keys_of_day(start, end, changed_since)
            report.in_flight_keys += in_flight
            if mismatched:
                report.day_diffs[day.isoformat()] = diffs
                report.mismatched_keys.extend(mismatched)
            else:
                report.matching_days += 1
                log.debug("%s %s: totals differ only by %d keys in flight (%s)", self.table.name, day, in_flight,
                         ", ".join(f"{m} pg={p} ods={o}" for m, (p, o) in diffs.items()))
        return report

    def _aggregates(self, bucket: str, since: dt.datetime, until: dt.datetime) -> tuple[dict, dict]:
        with self.pg.cursor() as cur:
            cur.execute(_pg_aggregates(self.table, bucket),
                        {"since": since.replace(tzinfo=UTC), "until": until.replace(tzinfo=UTC)})
            pg = {_bucket(row[0]): tuple(_norm(v) for v in row[1:]) for row in cur.fetchall()}
        rows = self.ch.query(_ch_aggregates(self.table, bucket), parameters={"since": since, "until": until}).result_rows
        ch = {_bucket(row[0]): tuple(_norm(v) for v in row[1:]) for row in rows}
        return pg, ch

    def _keys_of_day(self, start: dt.datetime, end: dt.datetime,
                     changed_since: dt.datetime) -> tuple[list[KeyDiff], int]:
        pg_hours, ch_hours = self._aggregates("hour", start, end)
        mismatched: list[KeyDiff] = []
        in_flight = 0
        for hour in sorted(set(pg_hours) | set(ch_hours)):
            if pg_hours.get(hour) == ch_hours.get(hour):
                continue
            diffs, pg_updated = self._key_diffs(hour, min(hour + dt.timedelta(hours=1), end))
            real, excused = self._excuse_in_flight(diffs, pg_updated, changed_since)
            mismatched.extend(real)
            in_flight += excused
        return mismatched, in_flight

    def _key_diffs(self, start: dt.datetime, end: dt.datetime) -> tuple[list[KeyDiff], dict[int, dt.datetime]]:
        """Keys created in [start, end) whose live state differs; and PostgreSQL's updated_at per key."""
        t = self.table
        amount_pg = f', "{t.amount}"' if t.amount else ""
        amount_ch = f", `{t.amount}`" if t.amount else ""
        with self.pg.cursor() as cur:
            cur.execute(f'SELECT "{t.key}", status::text{amount_pg}, updated_at FROM {t.pg_relation} '
                        "WHERE created_at >= %(a)s AND created_at < %(b)s",
                        {"a": start.replace(tzinfo=UTC), "b": end.replace(tzinfo=UTC)})
            pg = {row[0]: row for row in cur.fetchall()}
        rows = self.ch.query(
            f"SELECT `{t.key}`, toString(status){amount_ch} FROM {_ch_live(t)} "
            "WHERE created_at >= {a:DateTime64(6, 'UTC')} AND created_at < {b:DateTime64(6, 'UTC')}",
            parameters={"a": start, "b": end}).result_rows
        ods = {row[0]: tuple(row) for row in rows}
        diffs = []
        for key in sorted(set(pg) | set(ods)):
            p, o = pg.get(key), ods.get(key)
            if p is None:
                diffs.append(KeyDiff(key, "extra_in_ods", None, o))
            elif o is None:
                diffs.append(KeyDiff(key, "missing_in_ods", p[:-1], None))
            elif tuple(p[1:-1]) != tuple(o[1:]):
                diffs.append(KeyDiff(key, "differs", p[:-1], o))
        return diffs, {key: naive_utc(row[-1]) for key, row in pg.items()}

    def _excuse_in_flight(self, diffs: list[KeyDiff], pg_updated: dict[int, dt.datetime],
                          changed_since: dt.datetime) -> tuple[list[KeyDiff], int]:
        """Split differing keys into real mismatches and keys in flight (see the module docstring)."""
        if not diffs:
            return [], 0
        t = self.table
        keys = [d.key for d in diffs]
        raw: dict[int, tuple] = {}
        ods: dict[int, tuple] = {}
        for start in range(0, len(keys), self.keys_per_query):
            chunk = keys[start:start + self.keys_per_query]
            raw.update(self.ch.query(
                f"SELECT `{t.key}`, max((_version, _lsn)) FROM {t.raw_relation} WHERE `{t.key}` IN {{k:Array(Int64)}} "
                f"GROUP BY `{t.key}`", parameters={"k": chunk}).result_rows)
            ods.update(self.ch.query(
                f"SELECT `{t.key}`, (change_version, change_lsn) FROM {t.ods_relation} FINAL "
                f"WHERE `{t.key}` IN {{k:Array(Int64)}}", parameters={"k": chunk}).result_rows)
        real = []
        for diff in diffs:
            changed_late = diff.key in pg_updated and pg_updated[diff.key] >= changed_since
            ods_behind = diff.key in raw and tuple(raw[diff.key]) > tuple(ods.get(diff.key, (-1, -1)))
            if not (changed_late or ods_behind):
                real.append(diff)
        return real, len(diffs) - len(real)


def _bucket(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return naive_utc(value)
    return value


def _diff_metrics(names: list[str], pg: tuple | None, ods: tuple | None) -> dict[str, tuple[Any, Any]]:
    zero = tuple(Decimal(0) for _ in names)
    pg, ods = pg or zero, ods or zero
    return {name: (p, o) for name, p, o in zip(names, pg, ods) if p != o}


def reconcile(table_name: str, settle_seconds: float, lookback_days: int = 0, examples: int = 5) -> dict[str, Any]:
    """Reconcile one table as of the last build's source instant; raises ReconciliationError naming
    the days and example keys that differ, NothingToReconcile before the first build."""
    from bankcdc_ops.connections import clickhouse, postgres
    from bankcdc_ops.dbt_build import previous_build

    table = source_table(table_name)
    ch = clickhouse()
    instant = previous_build(ch).source_upper_bound
    if instant is None:
        ch.close()
        raise NothingToReconcile(f"{table.name}: no successful dbt_incremental build yet, so ODS shows no source "
                                 "instant to compare PostgreSQL with; the next run after the first build will")
    pg = postgres(application="bankcdc-reconciliation")
    pg.set_session(isolation_level="REPEATABLE READ", readonly=True, autocommit=False)
    try:
        report = Reconciler(table, pg, ch).run(instant, settle_seconds, lookback_days)
    finally:
        pg.rollback()
        pg.close()
        ch.close()
    log.info("%s", report.summary())
    if report.mismatched_keys:
        lines = [report.summary()]
        for day, diffs in sorted(report.day_diffs.items()):
            lines.append(f"  {day}: " + ", ".join(f"{m} postgres={p} ods={o}" for m, (p, o) in diffs.items()))
        lines.append(f"  example keys ({table.key}):")
        lines += [f"    {d.describe()}" for d in report.mismatched_keys[:examples]]
        message = "\n".join(lines)
        log.error("%s", message)
        raise ReconciliationError(f"{table.name}: PostgreSQL and {table.ods_relation} differ\n{message}")
    return {"table": table.name, "days": report.days, "matching_days": report.matching_days,
            "in_flight_keys": report.in_flight_keys, "cutoff": report.cutoff.isoformat()}
