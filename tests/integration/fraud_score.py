"""Fraud marts scored against the filler's ground truth (fraud_truth.scenario), per scenario, at
the episode level.

A case (mart row) matches an injected episode (truth row) when kind (scenario) and card_id are
equal and the windows [window_start, window_end] overlap (filler/scenarios.py). Matching is one
to one: a second case for an episode already matched is a duplicate, not a hit. recall =
matched episodes / episodes, precision = matched cases / cases. The closed-card rule flags a
card, not an episode (every attempt after the close is one case), so the filler's episodes on
one closed card count as one: from its first attempt to its last. Reusable by the dbt and
Airflow tests.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import psycopg2
from clickhouse_connect.driver.client import Client

from filler.scenarios import CLOSED_CARD_ATTEMPTS, KINDS

MARTS = {kind: f"marts.fraud_{kind}" for kind in KINDS}
ONE_CASE_PER_CARD = {CLOSED_CARD_ATTEMPTS}
Window = tuple[int, dt.datetime, dt.datetime]  # card_id, start, end


@dataclass
class Score:
    kind: str
    truth: int
    detected: int
    matched_truth: int
    matched_detections: int
    missed: list[Window] = field(default_factory=list)
    false_alarms: list[Window] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.matched_truth / self.truth if self.truth else 1.0

    @property
    def precision(self) -> float:
        return self.matched_detections / self.detected if self.detected else 1.0

    def summary(self) -> dict:
        return {"truth": self.truth, "detected": self.detected, "recall": round(self.recall, 4),
                "precision": round(self.precision, 4), "missed_examples": self.missed[:5],
                "false_alarm_examples": self.false_alarms[:5]}


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def truth_windows(pg_dsn: str, until: dt.datetime | None = None) -> dict[str, list[Window]]:
    """Injected scenarios per kind; `until` keeps those that ended by then (aware UTC)."""
    with psycopg2.connect(pg_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT kind, card_id, window_start, window_end FROM fraud_truth.scenario "
                    "WHERE %s::timestamptz IS NULL OR window_end <= %s", (until, until))
        rows = cur.fetchall()
    out: dict[str, list[Window]] = defaultdict(list)
    per_card: dict[tuple[str, int], tuple[dt.datetime, dt.datetime]] = {}
    for kind, card, start, end in rows:
        if kind in ONE_CASE_PER_CARD:
            first, last = per_card.get((kind, card), (_utc(start), _utc(end)))
            per_card[(kind, card)] = (min(first, _utc(start)), max(last, _utc(end)))
        else:
            out[kind].append((card, _utc(start), _utc(end)))
    for (kind, card), (start, end) in per_card.items():
        out[kind].append((card, start, end))
    return out


def detected_windows(ch: Client, until: dt.datetime | None = None) -> dict[str, list[Window]]:
    out: dict[str, list[Window]] = {}
    for kind, mart in MARTS.items():
        rows = ch.query(f"SELECT card_id, window_start, window_end FROM {mart} "
                        "WHERE {u:Nullable(DateTime64(6))} IS NULL OR window_end <= {u:Nullable(DateTime64(6))}",
                        parameters={"u": until}).result_rows
        out[kind] = [(card, _utc(start), _utc(end)) for card, start, end in rows]
    return out


def _overlaps(a: Window, b: Window) -> bool:
    return a[0] == b[0] and a[1] <= b[2] and b[1] <= a[2]


def score(truth: dict[str, list[Window]], detected: dict[str, list[Window]]) -> dict[str, Score]:
    result = {}
    for kind in KINDS:
        t_rows, d_rows = sorted(truth.get(kind, [])), sorted(detected.get(kind, []))
        unmatched = list(d_rows)
        missed = []
        for t in t_rows:
            hit = next((d for d in unmatched if _overlaps(t, d)), None)
            if hit is None:
                missed.append(t)
            else:
                unmatched.remove(hit)
        result[kind] = Score(kind, len(t_rows), len(d_rows), len(t_rows) - len(missed),
                             len(d_rows) - len(unmatched), missed, unmatched)
    return result


def fraud_scores(pg_dsn: str, ch: Client, until: dt.datetime | None = None) -> dict[str, Score]:
    """Precision and recall of each fraud mart against fraud_truth (windows ended by `until`)."""
    return score(truth_windows(pg_dsn, until), detected_windows(ch, until))
