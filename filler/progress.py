"""Running totals and readable progress log lines."""

from __future__ import annotations

import logging
import threading
import time

from filler.batch import Batch

log = logging.getLogger("filler")


class Progress:
    def __init__(self, mode: str, interval: float, target_rate: float | None = None):
        self.mode = mode
        self.interval = interval
        self.target_rate = target_rate
        self.totals: dict[str, int] = {}
        self.batches = 0
        self.started = time.monotonic()
        self._last_log = self.started
        self._last_txns = 0
        self._lock = threading.Lock()

    @property
    def transactions(self) -> int:
        return self.totals.get("transactions", 0)

    def add(self, batch: Batch) -> None:
        with self._lock:
            self.batches += 1
            for key, value in batch.counters().items():
                self.totals[key] = self.totals.get(key, 0) + value

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.transactions / elapsed if elapsed > 0 else 0.0

    def maybe_log(self, extra: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_log < self.interval:
            return
        window = now - self._last_log
        recent = (self.transactions - self._last_txns) / window if window >= 1.0 else self.rate()
        self._last_log, self._last_txns = now, self.transactions
        log.info("%s", self.line(recent, extra))

    def line(self, recent: float, extra: str = "") -> str:
        t = self.totals
        target = f" (target {self.target_rate:,.0f})" if self.target_rate else ""
        deletes = t.get("deleted_cards", 0) + t.get("deleted_terminals", 0) + t.get("deleted_transactions", 0)
        parts = [f"{self.mode}: {recent:,.0f} tx/s{target}",
                 f"total {self.transactions:,} tx in {self.batches:,} batches ({self.rate():,.0f} tx/s avg)",
                 f"customers +{t.get('customers', 0):,}", f"cards +{t.get('cards', 0):,}",
                 f"status updates {t.get('status_updates', 0):,}", f"closes {t.get('closes', 0):,}",
                 f"deletes {deletes:,}", f"scenarios {t.get('scenarios', 0):,}"]
        if extra:
            parts.append(extra)
        return " | ".join(parts)
