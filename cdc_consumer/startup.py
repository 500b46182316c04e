"""Start-up: wait for ClickHouse and Kafka with back-off, then consume.

A service that does not answer yet (a reboot, a start-order race, an outage) is waited for: the
metrics endpoint serves from the start and shows `cdc_waiting_for{dependency="..."} 1`, the log
says what is awaited and when the next try is. Only a wrong setting ends the process (exit 2).
"""

from __future__ import annotations

import logging
import signal
import threading

from cdc_consumer.config import ConsumerSettings
from cdc_consumer.errors import DependencyUnavailable
from cdc_consumer.metrics import ConsumerMetrics

log = logging.getLogger("cdc_consumer")
FIRST_DELAY, MAX_DELAY = 1.0, 30.0


def run_when_ready(settings: ConsumerSettings) -> int:
    """Connect (waiting as long as it takes), then consume until SIGTERM/SIGINT; returns 0."""
    from cdc_consumer.runner import CdcConsumer

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    metrics = ConsumerMetrics()
    metrics.serve(settings.metrics_port, settings.metrics_host)
    delay = FIRST_DELAY
    while not stopping.is_set():
        consumer = None
        try:
            consumer = CdcConsumer(settings, metrics=metrics)
            consumer.check_kafka()
            break
        except DependencyUnavailable as exc:
            if consumer is not None:
                consumer.close()
            metrics.set_waiting(exc.dependency)
            log.warning("waiting for %s: %s; next try in %.0fs", exc.dependency, exc, delay)
            stopping.wait(delay)
            delay = min(delay * 2, MAX_DELAY)
    else:
        return 0
    metrics.set_waiting(None)
    consumer.install_signal_handlers()
    if stopping.is_set():
        return 0
    consumer.run()
    return 0
