"""librdkafka's log, readable: a broker that refuses connections is one line, not hundreds.

librdkafka logs every failed connection attempt (about 20 a second against a closed port). The
filter lets the first line of a kind through, then at most one every `every` seconds with how
many it held back. Lines differ only in their "(after 3ms in state CONNECT)" suffix.
"""

from __future__ import annotations

import logging
import re
import time

_VARIABLE = re.compile(r"\(after \d+ms in state \w+\)|\d+ms")
KAFKA_LOGGER = "cdc_consumer.kafka"


class RepeatFilter(logging.Filter):
    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self.every = every
        self._seen: dict[str, tuple[float, int]] = {}  # kind -> (last let through, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = _VARIABLE.sub("", record.getMessage())
        now = time.monotonic()
        last, held = self._seen.get(kind, (None, 0))
        if last is not None and now - last < self.every:
            self._seen[kind] = (last, held + 1)
            return False
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it in {now - last:.0f}s)"
            record.args = ()
        self._seen[kind] = (now, 0)
        if len(self._seen) > 1000:
            self._seen.clear()
        return True


def kafka_logger() -> logging.Logger:
    """The logger handed to librdkafka, with one RepeatFilter however many clients use it."""
    logger = logging.getLogger(KAFKA_LOGGER)
    if not any(isinstance(f, RepeatFilter) for f in logger.filters):
        logger.addFilter(RepeatFilter())
    return logger
