"""Fault recovery figures, as JSON: the fault suite (tests/integration/faults) at benchmark load.

Runs the kill -9 / outage / burst tests on their own isolated test stack (the one `./stack test`
starts, on the TEST_* ports), with `--heavy` unless --light: the filler at 400 tx/s, each part
down for 60 s, a burst at 4,000 tx/s for a minute. Prints what the tests recorded: per fault the
time to restart and to catch up, rows lost / duplicated in ODS, and the burst's rate, lag
percentiles and time to recover.

    ./stack bench faults            # heavy: about 25 minutes
    ./stack bench faults --light    # the load of the test command
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = ["tests/integration/faults/test_kill_parts.py", "tests/integration/faults/test_kill_scheduler.py",
         "tests/integration/faults/test_outage_monitoring.py", "tests/integration/faults/test_burst.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--light", action="store_true", help="the test command's load instead of --heavy")
    parser.add_argument("-k", default=None, metavar="EXPR", help="only the faults matching this pytest -k expression")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bankcdc-faults-") as tmp:
        report = Path(tmp) / "fault-report.json"
        argv = [sys.executable, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider"]
        argv += [] if args.light else ["--heavy"]
        argv += ["-k", args.k] if args.k else []
        print(f"running the fault suite ({'light' if args.light else 'heavy'}): {' '.join(argv[3:])}",
              file=sys.stderr)
        result = subprocess.run(argv, cwd=REPO, env={**os.environ, "BANKCDC_FAULT_REPORT": str(report)},
                                stdout=sys.stderr)
        figures = json.loads(report.read_text()) if report.exists() else {}
    figures["tests_passed"] = result.returncode == 0
    print(json.dumps(figures, indent=2))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
