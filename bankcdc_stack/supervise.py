"""Keep one command running: start it again when it exits, as compose's `restart: unless-stopped`
does in production.

Airflow's scheduler, dag-processor, triggerer and api-server exit when their metadata database
goes away (a PostgreSQL crash or restart); under this wrapper they come back by themselves once
it answers again. Exit code 2 (bad configuration, by the project's convention) is not retried.
SIGTERM/SIGINT stop the wrapper after the command: the stack signals the whole process group, so
the command gets the signal itself.

    python -m bankcdc_stack.supervise -- airflow scheduler
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

log = logging.getLogger("bankcdc_stack.supervise")
CONFIG_ERROR = 2
MAX_DELAY = 30.0
STABLE_AFTER = 60.0  # a run this long resets the back-off


def supervise(argv: list[str]) -> int:
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = 1.0
    while True:
        started = time.monotonic()
        code = subprocess.call(argv)
        if stopping.is_set() or code == 0:
            return code
        if code == CONFIG_ERROR:
            log.error("%s exited %d (configuration error): not restarting it", argv[0], code)
            return code
        delay = 1.0 if time.monotonic() - started > STABLE_AFTER else min(delay * 2, MAX_DELAY)
        log.warning("%s exited %d after %.0fs: restarting it in %.0fs", " ".join(argv[:4]), code,
                    time.monotonic() - started, delay)
        if stopping.wait(delay):
            return code


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m bankcdc_stack.supervise -- COMMAND [ARGS...]", file=sys.stderr)
        return CONFIG_ERROR
    return supervise(argv)


if __name__ == "__main__":
    sys.exit(main())
