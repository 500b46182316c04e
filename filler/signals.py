"""SIGINT/SIGTERM: ask the loop to stop after the current batch (never interrupt a write)."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("filler")


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(max(0.0, seconds))

    def install(self) -> None:
        def handler(signum, _frame):
            if not self._event.is_set():
                log.info("%s received: finishing the current batch, then exiting",
                         signal.Signals(signum).name)
            self._event.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
