"""Backfill mode (`filler backfill`): N days of history at M transactions a day, via COPY.

History ends at --backfill-end (default: now) and is generated an hour at a time in time
order (volume follows the hour-of-day curve), with the same simulation as continuous mode but
real-world timing: status changes are written as final states with their historical
timestamps, scenarios keep realistic (minutes-long) windows. Generation runs in the main
thread while a writer thread COPYs the previous chunk on its own connection, so the two CPU
costs (Python and PostgreSQL) overlap.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
import uuid

import psycopg2

from filler import distributions as d
from filler import world
from filler.batch import Batch
from filler.config import BackfillSettings
from filler.db import Database, IdReserve
from filler.errors import FillerError
from filler.generators import EntityFactory
from filler.progress import Progress
from filler.signals import StopFlag
from filler.simulation import Simulation
from filler.writer import batch_committed, describe_refusal, txn_copy_text, write_batch

log = logging.getLogger("filler")

MAX_CHUNK_TXNS = 50_000
WRITERS = 2  # parallel COPY connections: PostgreSQL's per-row FK checks are the bottleneck
CONNECT_WAIT_S = 60.0
YEAR_S = 365 * 86400.0


def population_targets(txns_per_day: int) -> tuple[int, int]:
    """(cards, terminals): ~2.5 transactions per card per day, ~40 per terminal."""
    return (min(max(int(txns_per_day / 2.5), 200), 300_000),
            min(max(int(txns_per_day / 40), 60), 20_000))


def chunks(start: float, end: float, txns_per_day: int):
    """(t0, t1, n): hour-aligned chunks whose counts follow the hour-of-day curve exactly."""
    t, carry = start, 0.0
    while t < end:
        t1 = min((int(t) // 3600 + 1) * 3600.0, end)
        hour = time.gmtime(t).tm_hour
        exact = txns_per_day * d.hour_share(hour) * (t1 - t) / 3600.0 + carry
        n = int(exact)
        carry = exact - n
        parts = max(1, -(-n // MAX_CHUNK_TXNS))
        for i in range(parts):
            lo = t + (t1 - t) * i / parts
            hi = t + (t1 - t) * (i + 1) / parts
            yield lo, hi, n // parts + (1 if i < n % parts else 0)
        t = t1


class _Writers:
    """One thread and connection per writer; chunk k goes to writer k mod N, in order.

    The simulation runs with settle_chunks = N - 1, so a chunk only updates, deletes or
    references rows that earlier chunks on *every* connection have committed (chunk k-N was on
    the same connection, so it committed before chunk k starts). `drain()` waits for all.
    """

    def __init__(self, dbs: list[Database], progress: Progress):
        self.dbs = dbs
        self.progress = progress
        self.queues: list[queue.Queue[tuple[int, Batch] | None]] = [queue.Queue(maxsize=2) for _ in dbs]
        self.error: BaseException | None = None
        self._count = 0
        # every batch with index <= _low has committed; batch i waits for _low >= i - N, because
        # the simulation lets it refer to rows of batches up to i - N
        self._low = -1
        self._done: set[int] = set()
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._run, args=(i,), name=f"filler-writer-{i}", daemon=True)
                         for i in range(len(dbs))]
        for thread in self._threads:
            thread.start()

    def _wait_turn(self, index: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._low >= index - len(self.dbs) or self.error is not None)

    def _mark_done(self, index: int) -> None:
        with self._cond:
            self._done.add(index)
            while self._low + 1 in self._done:
                self._low += 1
                self._done.discard(self._low)
            self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self.error = self.error or exc
            self._cond.notify_all()

    def _run(self, i: int) -> None:
        db, q = self.dbs[i], self.queues[i]
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                index, batch = item
                self._wait_turn(index)
                if self.error is None:
                    try:
                        db.retry(lambda conn: write_batch(conn, batch),
                                 on_retry=lambda conn: True if batch_committed(conn, batch) else None)
                    except psycopg2.IntegrityError as exc:
                        raise FillerError(describe_refusal(exc, batch)) from exc
                    self.progress.add(batch)
                    self._mark_done(index)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
                self._fail(exc)
            finally:
                q.task_done()

    def put(self, batch: Batch) -> None:
        if self.error is not None:
            raise self.error
        index = self._count
        self._count += 1
        self.queues[index % len(self.queues)].put((index, batch))

    def drain(self) -> None:
        for q in self.queues:
            q.join()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        for q in self.queues:
            q.put(None)
        for thread in self._threads:
            thread.join()


def _has_transactions(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute('SELECT EXISTS (SELECT 1 FROM bank."transaction")')
        found = cur.fetchone()[0]
    conn.rollback()
    return found


def run(settings: BackfillSettings, stop: StopFlag | None = None, if_empty: bool = False) -> int:
    stop = stop or StopFlag()
    seed = settings.sim.seed if settings.sim.seed is not None else random.SystemRandom().randrange(2**63)
    end = settings.backfill_end.timestamp() if settings.backfill_end else time.time()
    start = end - settings.backfill_days * 86400.0
    rng = random.Random(seed)
    sim = Simulation(settings.sim, rng, EntityFactory(rng, seed), compressed=False, inline_status=True,
                     horizon_end=end, settle_chunks=WRITERS - 1)
    run_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    log.info("filler backfill: %s, %d days x %s tx/day ending %s, seed %d", settings.db.describe(),
             settings.backfill_days, f"{settings.txns_per_day:,}",
             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(end)), seed)

    main_db = Database(settings.db, should_stop=stop.is_set, max_wait=CONNECT_WAIT_S)
    writer_dbs = [Database(settings.db, should_stop=stop.is_set, max_wait=CONNECT_WAIT_S)
                  for _ in range(WRITERS)]
    txn_started = time.monotonic()
    main_db.connect()
    if if_empty and main_db.retry(_has_transactions):
        log.info("bank.transaction already has rows: skipping the backfill (--if-empty)")
        main_db.close()
        return 0
    for db in writer_dbs:
        db.connect()
    ids = IdReserve(main_db, block=10_000)
    progress = Progress("backfill", settings.log_interval)
    writer = _Writers(writer_dbs, progress)
    seq = 0

    def new_batch() -> Batch:
        nonlocal seq
        batch = Batch("backfill", run_id, seq, batch_id=uuid.UUID(int=rng.getrandbits(128), version=4))
        seq += 1
        return batch

    try:
        # a populated bank: only what existed when the history starts takes part in it
        loaded = main_db.retry(lambda conn: world.load(conn, sim, None, resume_pending=False, created_before=start))
        log.info("loaded from the database: %s", ", ".join(f"{k} {v:,}" for k, v in loaded.items()))
        want_cards, want_terminals = population_targets(settings.txns_per_day)
        customers = max(0, int((want_cards - len(sim.active_cards)) / 1.6))
        terminals = max(0, want_terminals - sum(len(p) for p in sim.terminals.values()))
        if customers or terminals:
            log.info("creating %s customers and %s terminals before the history starts",
                     f"{customers:,}", f"{terminals:,}")
        for lo in range(0, customers or (1 if terminals else 0), 10_000):
            n = min(10_000, customers - lo)
            t_count = terminals if lo == 0 else 0
            ids.ensure(Simulation.bootstrap_needs(n, t_count))
            batch = new_batch()
            sim.bootstrap(n, t_count, start - 3 * YEAR_S, start - 86400.0, ids, batch)
            writer.put(batch)
        writer.drain()  # the population is committed before any chunk refers to it
        txn_started = time.monotonic()
        for t0, t1, n in chunks(start, end, settings.txns_per_day):
            if stop.is_set():
                log.info("stopping early: history written up to %s",
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)))
                break
            plan = sim.prepare(t0, t1, n)
            ids.ensure(sim.id_needs(plan))
            batch = new_batch()
            sim.generate(plan, ids, batch)
            # render outside the database transaction: the server never waits for Python mid-batch
            batch.txn_copy = txn_copy_text(batch.transactions)
            writer.put(batch)
            day = int((t1 - start) // 86400) + 1
            progress.maybe_log(f"day {min(day, settings.backfill_days)}/{settings.backfill_days}")
        plan = sim.prepare(end, end, 0, final=True)
        ids.ensure(sim.id_needs(plan))
        batch = new_batch()
        sim.generate(plan, ids, batch)
        if not batch.is_empty():
            writer.drain()
            writer.put(batch)
    finally:
        writer.close()
        main_db.close()
        for db in writer_dbs:
            db.close()
    if writer.error is not None:
        if isinstance(writer.error, FillerError):
            raise writer.error
        raise FillerError(f"backfill write failed: {writer.error}") from writer.error
    elapsed = time.monotonic() - txn_started
    progress.maybe_log("done", force=True)
    log.info("backfill finished: %s transactions in %.1fs of history writing (%s tx/s)",
             f"{progress.transactions:,}", elapsed, f"{progress.transactions / max(elapsed, 1e-9):,.0f}")
    return 0
