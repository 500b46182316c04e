"""The filler: a short history on first start, then continuous bank activity at a modest rate."""

from __future__ import annotations

import subprocess
import sys

from bankcdc_stack.errors import ServiceFailedError
from bankcdc_stack.process import ManagedProcess
from bankcdc_stack.services.base import Health, Service, log

DEFAULT_RATE = "50"
SEED_DAYS = "2"
SEED_TXNS_PER_DAY = "20000"


class FillerService(Service):
    name = "filler"
    start_timeout = 30.0

    def env(self) -> dict[str, str]:
        return {**self.ctx.child_env(), "DB_USER": "bank_filler", "DB_PASSWORD": self.ctx.secrets["FILLER_DB_PASSWORD"]}

    def ports(self) -> list[tuple[int, str]]:
        return []

    def processes(self) -> list[ManagedProcess]:
        return [self.ctx.managed("filler")]

    def prepare(self) -> None:
        """A short history so a new user sees data at once (skipped once there is any)."""
        log.info("filler: writing %s days of history at %s tx/day if the bank is empty", SEED_DAYS, SEED_TXNS_PER_DAY)
        log_path = self.processes()[0].log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as handle:
            result = subprocess.run(
                [sys.executable, "-m", "filler", "backfill", "--backfill-days", SEED_DAYS,
                 "--txns-per-day", SEED_TXNS_PER_DAY, "--if-empty"],
                env=self.env(), stdout=handle, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise ServiceFailedError(f"filler backfill failed (exit {result.returncode}); see {log_path}")

    def launch(self) -> None:
        rate = self.ctx.env.get("FILLER_RATE") or DEFAULT_RATE
        self.processes()[0].spawn([sys.executable, "-m", "filler", "run", "--rate", rate], env=self.env(),
                                  cwd=self.settings.repo_root)

    def health(self) -> Health:
        proc = self.processes()[0].process()
        if proc is None:
            return Health(False, "not running")
        return Health(True, f"writing at {self.ctx.env.get('FILLER_RATE') or DEFAULT_RATE} tx/s")
