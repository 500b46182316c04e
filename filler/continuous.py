"""Continuous mode (`filler run`): real-time traffic at a target rate, batch per tick.

Each tick makes one batch (entities, transactions created_at = the real time they happen,
status changes of earlier transactions, closes, deletes, due scenario steps) and commits it in
one database transaction, then sleeps to hold the target rate. SIGINT/SIGTERM finish the
current batch, flush the scenarios still in flight (their remaining steps squeezed into the
present, so ground truth stays complete) and exit 0. A lost connection is retried with
backoff; a batch whose commit was in doubt is checked against its batch marker first.
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid

import psycopg2

from filler import world
from filler.batch import Batch
from filler.config import RunSettings
from filler.db import Database, IdReserve
from filler.errors import FillerError
from filler.generators import EntityFactory
from filler.progress import Progress
from filler.signals import StopFlag
from filler.simulation import Simulation
from filler.writer import batch_committed, describe_refusal, write_batch

log = logging.getLogger("filler")

TICK_S = 0.25  # one batch per tick at low rates
MAX_BATCH = 2000  # rows per commit at high rates


def batch_size(rate: float) -> int:
    return max(1, min(MAX_BATCH, math.ceil(rate * TICK_S)))


def population_targets(rate: float) -> tuple[int, int]:
    """(customers, terminals) a fresh database starts with, so cards see a realistic load."""
    cards = min(max(int(rate * 4), 300), 40_000)
    return int(cards / 1.6), min(max(int(rate / 5), 60), 5_000)


class Runner:
    def __init__(self, settings: RunSettings, stop: StopFlag):
        self.s = settings
        self.stop = stop
        self.seed = settings.sim.seed if settings.sim.seed is not None else random.SystemRandom().randrange(2**63)
        self.rng = random.Random(self.seed)
        self.sim = Simulation(settings.sim, self.rng, EntityFactory(self.rng, self.seed),
                              compressed=True, inline_status=False, owns_terminals=settings.shard.owns_terminals,
                              confirm_activations=True)
        self.db = Database(settings.db, should_stop=stop.is_set)
        shard = settings.shard
        # a new customer gets an id of this shard's, so whichever filler loads it later owns it
        self.ids = IdReserve(self.db, block=max(1000, 2 * batch_size(settings.rate)),
                             keep=lambda pool, id_: pool != "customer" or shard.owns(id_),
                             spread=lambda pool: shard.count if pool == "customer" else 1)
        self.run_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        self.seq = 0
        self.progress = Progress("continuous", settings.log_interval, settings.rate)

    def _write(self, batch: Batch) -> None:
        try:
            self.db.retry(lambda conn: write_batch(conn, batch),
                          on_retry=lambda conn: True if batch_committed(conn, batch) else None)
        except psycopg2.IntegrityError as exc:
            raise FillerError(describe_refusal(exc, batch)) from exc
        self.sim.activations_committed(batch)
        self.progress.add(batch)

    def _new_batch(self) -> Batch:
        batch = Batch("continuous", self.run_id, self.seq, batch_id=uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.seq += 1
        return batch

    def start(self) -> None:
        log.info("filler run: %s, target %s tx/s, shard %s, seed %d, fraud share %.3f",
                 self.s.db.describe(), f"{self.s.rate:g}", self.s.shard, self.seed, self.s.sim.fraud_share)
        self.db.connect()
        now = time.time()
        loaded = self.db.retry(lambda conn: world.load(conn, self.sim, now, resume_pending=True, shard=self.s.shard))
        log.info("loaded from the database: %s", ", ".join(f"{k} {v:,}" for k, v in loaded.items()))
        want_customers, want_terminals = population_targets(self.s.rate)
        customers = max(0, int((want_customers * 1.6 - len(self.sim.active_cards)) / 1.6))
        terminals = max(0, want_terminals - sum(len(p) for p in self.sim.terminals.values()))
        if customers or terminals:
            log.info("bootstrapping %d customers and %d terminals", customers, terminals)
            for lo in range(0, max(customers, 1), 5000):
                n = min(5000, customers - lo)
                t_count = terminals if lo == 0 else 0
                self.ids.ensure(Simulation.bootstrap_needs(n, t_count))
                batch = self._new_batch()
                self.sim.bootstrap(n, t_count, now - 5.0, now - 1.0, self.ids, batch)
                self._write(batch)

    def loop(self) -> None:
        size = batch_size(self.s.rate)
        started = time.monotonic()
        next_due = started
        last_t1 = time.time()
        while not self.stop.is_set():
            if self.s.duration and time.monotonic() - started >= self.s.duration:
                break
            if self.stop.wait(next_due - time.monotonic()):
                break
            t1 = time.time()
            plan = self.sim.prepare(last_t1, max(t1, last_t1 + 1e-6), size)
            self.ids.ensure(self.sim.id_needs(plan))
            batch = self._new_batch()
            self.sim.generate(plan, self.ids, batch)
            self._write(batch)
            last_t1 = plan.t1
            next_due += max(len(batch.transactions), 1) / self.s.rate
            if next_due < time.monotonic() - 1.0:
                next_due = time.monotonic()  # fell behind (outage, slow disk): don't burst to catch up
            self.progress.maybe_log(f"open scenarios {len(self.sim.open)}")
        self.finish(last_t1)

    def finish(self, last_t1: float) -> None:
        """Complete the scenarios in flight so fraud_truth never holds a partial one."""
        t1 = max(time.time(), last_t1 + 1e-3)
        plan = self.sim.prepare(last_t1, t1, 0, final=True)
        self.ids.ensure(self.sim.id_needs(plan))
        batch = self._new_batch()
        self.sim.generate(plan, self.ids, batch)
        if not batch.is_empty():
            self._write(batch)
        self.progress.maybe_log("stopped", force=True)


def run(settings: RunSettings, stop: StopFlag | None = None) -> int:
    stop = stop or StopFlag()
    runner = Runner(settings, stop)
    try:
        runner.start()
        runner.loop()
    finally:
        runner.db.close()
    return 0
