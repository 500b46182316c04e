"""Writes a Batch in one database transaction: COPY for inserts, set-based UPDATE/DELETE.

Order inside the transaction (so CDC consumers see parents before children): entities,
activations, closes, transactions, status updates, deletes, ground truth, batch marker.
The batch marker (fraud_truth.filler_batch) makes a retried batch idempotent: after a lost
connection the writer checks whether the batch committed before writing it again.
"""

from __future__ import annotations

import io
import json
import time
from typing import Iterable

from psycopg2.extras import execute_values

from filler.batch import TXN_COLUMNS, Batch
from filler.generators import ACCOUNT_COLUMNS, CARD_COLUMNS, CUSTOMER_COLUMNS, TERMINAL_COLUMNS

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class TimeFormatter:
    """epoch seconds -> timestamptz text; remembers the text of every whole second it formatted."""

    __slots__ = ("_seconds",)

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def prefix(self, sec: int) -> str:
        """'YYYY-MM-DD HH:MM:SS' of whole second `sec` (UTC)."""
        text = self._seconds.get(sec)
        if text is None:
            text = self._seconds[sec] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(sec))
        return text

    def __call__(self, ts: float | None) -> str:
        if ts is None:
            return NULL
        sec = int(ts)
        return f"{self.prefix(sec)}.{int((ts - sec) * 1e6):06d}+00"


def _field(value, fmt_time: TimeFormatter, is_time: bool) -> str:
    if value is None:
        return NULL
    if is_time:
        return fmt_time(value)
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def entity_copy_text(rows: Iterable[tuple], columns: tuple[str, ...]) -> str:
    fmt = TimeFormatter()
    time_cols = [c in ("closed_at", "created_at", "updated_at") for c in columns]
    lines = ["\t".join(_field(v, fmt, t) for v, t in zip(row, time_cols)) for row in rows]
    return "\n".join(lines) + "\n" if lines else ""


def txn_copy_text(rows: list[list]) -> str:
    """COPY text of TXN_COLUMNS rows: the hot path of a backfill, so timestamps are formatted inline."""
    fmt = TimeFormatter()
    seconds, prefix = fmt._seconds, fmt.prefix
    out = []
    append = out.append
    for r in rows:
        cents, reason, created, app, dec, rev, upd = r[5], r[9], r[10], r[11], r[12], r[13], r[14]
        sec = int(created)
        sc = f"{seconds.get(sec) or prefix(sec)}.{int((created - sec) * 1e6):06d}+00"
        if upd is created:
            su = sc
        else:
            sec = int(upd)
            su = f"{seconds.get(sec) or prefix(sec)}.{int((upd - sec) * 1e6):06d}+00"
        # the status timestamp set is the one updated_at repeats (or it is formatted apart)
        sa = NULL if app is None else (su if app is upd else fmt(app))
        sd = NULL if dec is None else (su if dec is upd else fmt(dec))
        sr = NULL if rev is None else (su if rev is upd else fmt(rev))
        append(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\t{r[4]}\t{cents // 100}.{cents % 100:02d}\t{r[6]}\t"
               f"{'t' if r[7] else 'f'}\t{r[8]}\t{NULL if reason is None else reason}\t{sc}\t"
               f"{sa}\t{sd}\t{sr}\t{su}\n")
    return "".join(out)


def _copy(cur, table: str, columns: tuple[str, ...], text: str) -> None:
    if text:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", io.StringIO(text), size=1 << 20)


def _ts(ts: float) -> str:
    return TimeFormatter()(ts)


KEY = {"customer": "customer_id", "account": "account_id", "card": "card_id", "terminal": "terminal_id"}


def write_batch(conn, batch: Batch) -> None:
    """Write and commit `batch` on `conn` (one transaction). Raises psycopg2 errors as they come."""
    with conn.cursor() as cur:
        _copy(cur, "bank.customer", CUSTOMER_COLUMNS, entity_copy_text(batch.customers, CUSTOMER_COLUMNS))
        _copy(cur, "bank.account", ACCOUNT_COLUMNS, entity_copy_text(batch.accounts, ACCOUNT_COLUMNS))
        _copy(cur, "bank.terminal", TERMINAL_COLUMNS, entity_copy_text(batch.terminals, TERMINAL_COLUMNS))
        _copy(cur, "bank.card", CARD_COLUMNS, entity_copy_text(batch.cards, CARD_COLUMNS))
        for table, rows in batch.activations.items():
            if rows:
                applied = execute_values(cur, f"""
                    UPDATE bank.{table} AS x SET status = 'active', updated_at = v.at::timestamptz
                    FROM (VALUES %s) AS v(id, at)
                    WHERE x.{KEY[table]} = v.id AND x.status = 'inactive'
                    RETURNING x.{KEY[table]}""",
                                         [(i, _ts(at)) for i, at in rows], page_size=1000, fetch=True)
                batch.activated[table] = sorted(i for (i,) in applied)
        # parents first so a cascade close never leaves an active child under a closed parent
        for table in ("customer", "account", "card", "terminal"):
            rows = batch.closes[table]
            if rows:
                execute_values(cur, f"""
                    UPDATE bank.{table} AS x
                    SET status = 'closed', closed_at = v.at::timestamptz,
                        updated_at = greatest(x.updated_at, v.at::timestamptz)
                    FROM (VALUES %s) AS v(id, at)
                    WHERE x.{KEY[table]} = v.id AND x.status <> 'closed'""",
                               [(i, _ts(at)) for i, at in rows], page_size=1000)
        text = batch.txn_copy if batch.txn_copy is not None else txn_copy_text(batch.transactions)
        _copy(cur, 'bank."transaction"', TXN_COLUMNS, text)
        if batch.txn_updates:
            execute_values(cur, """
                UPDATE bank."transaction" AS t
                SET status = v.status::bank.txn_status,
                    decline_reason = v.reason,
                    -- a change never predates the state it follows: another filler's clock may
                    -- have approved the row a moment "after" this filler's reversal time
                    approved_at = CASE WHEN v.status = 'approved'
                                       THEN greatest(v.at::timestamptz, t.created_at) ELSE t.approved_at END,
                    declined_at = CASE WHEN v.status = 'declined'
                                       THEN greatest(v.at::timestamptz, t.created_at) ELSE t.declined_at END,
                    reversed_at = CASE WHEN v.status = 'reversed'
                                       THEN greatest(v.at::timestamptz, coalesce(t.approved_at, t.created_at))
                                       ELSE t.reversed_at END,
                    updated_at = greatest(t.updated_at, v.at::timestamptz, t.approved_at)
                FROM (VALUES %s) AS v(id, status, reason, at)
                WHERE t.transaction_id = v.id
                  -- only from the status the change follows: a filler beside this one may have
                  -- resolved the same pending transaction first (its change wins, this one is void)
                  AND (t.status = 'pending' OR (v.status = 'reversed' AND t.status = 'approved'))""",
                           [(i, s, r, _ts(at)) for i, s, r, at in batch.txn_updates], page_size=1000)
        if batch.delete_transactions:
            cur.execute("""
                DELETE FROM bank."transaction" AS t
                WHERE t.transaction_id = ANY(%s)
                  AND NOT EXISTS (SELECT 1 FROM fraud_truth.scenario_transaction s
                                  WHERE s.transaction_id = t.transaction_id)""", (batch.delete_transactions,))
            batch.deleted["transaction"] = cur.rowcount
        if batch.delete_cards:
            cur.execute("""
                DELETE FROM bank.card AS c
                WHERE c.card_id = ANY(%s) AND c.status = 'inactive'
                  AND NOT EXISTS (SELECT 1 FROM bank."transaction" t WHERE t.card_id = c.card_id)
                  AND NOT EXISTS (SELECT 1 FROM fraud_truth.scenario s WHERE s.card_id = c.card_id)""",
                        (batch.delete_cards,))
            batch.deleted["card"] = cur.rowcount
        if batch.delete_terminals:
            cur.execute("""
                DELETE FROM bank.terminal AS x
                WHERE x.terminal_id = ANY(%s) AND x.status = 'inactive'
                  AND NOT EXISTS (SELECT 1 FROM bank."transaction" t WHERE t.terminal_id = x.terminal_id)""",
                        (batch.delete_terminals,))
            batch.deleted["terminal"] = cur.rowcount
        if batch.scenarios:
            execute_values(cur, """
                INSERT INTO fraud_truth.scenario (scenario_id, kind, card_id, window_start, window_end, params)
                VALUES %s""",
                           [(s.scenario_id, s.kind, s.card_id, _ts(s.window_start), _ts(s.window_end),
                             json.dumps(s.params, sort_keys=True)) for s in batch.scenarios])
            links = "".join(f"{s.scenario_id}\t{t}\n" for s in batch.scenarios for t in s.transaction_ids)
            _copy(cur, "fraud_truth.scenario_transaction", ("scenario_id", "transaction_id"), links)
        counters = batch.counters()
        columns = ", ".join(counters)
        cur.execute(f"""
            INSERT INTO fraud_truth.filler_batch (batch_id, run_id, seq, mode, {columns})
            VALUES (%s, %s, %s, %s, {', '.join(['%s'] * len(counters))})""",
                    (str(batch.batch_id), str(batch.run_id), batch.seq, batch.mode, *counters.values()))
    conn.commit()


def describe_refusal(exc: Exception, batch: Batch) -> str:
    """What PostgreSQL refused in a batch, naming the constraint, the table and the row."""
    diag = getattr(exc, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or "a check"
    table = ".".join(p for p in (getattr(diag, "schema_name", None), getattr(diag, "table_name", None)) if p)
    detail = getattr(diag, "message_detail", None) or getattr(diag, "message_primary", None) or str(exc).strip()
    return (f"PostgreSQL refused {batch.mode} batch {batch.seq} ({batch.batch_id}) on constraint {constraint}"
            f"{' of ' + table if table else ''}: {detail}; the batch was rolled back whole, earlier batches "
            "are complete")


def batch_committed(conn, batch: Batch) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM fraud_truth.filler_batch WHERE batch_id = %s", (str(batch.batch_id),))
        found = cur.fetchone() is not None
    conn.rollback()
    return found
