"""The simulated bank: normal traffic, new entities, closes, activations, deletes, status changes.

The same engine drives both modes. Time advances in chunks [t0, t1): an hour of history in
backfill mode, one tick of real time in continuous mode. Each chunk is made in two steps so
that generation never touches the database:

    plan = sim.prepare(t0, t1, n)      # draws the chunk's counts
    ids.ensure(sim.id_needs(plan))     # reserves ids (database)
    sim.generate(plan, ids, batch)     # pure: fills the batch, updates the in-memory state

The entities live in `BankState` (filler.bank_state), fraud scenarios are run by
`ScenarioRunner` (filler.scenario_runner), later status changes wait in `StatusChanges`
(filler.status_changes). Everything random comes from one seeded `random.Random`, in a fixed
order, so a seed and the same settings (and the same starting database) give the same rows.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

from filler import distributions as d
from filler import scenarios as sc
from filler.bank_state import TERMINAL_TYPES, BankState
from filler.batch import Batch
from filler.config import SimSettings
from filler.generators import EntityFactory
from filler.pool import Pool
from filler.scenario_runner import OpenScenario, ScenarioRunner
from filler.status_changes import StatusChanges

INF = float("inf")


@dataclass
class ChunkPlan:
    """The counts drawn for one chunk [t0, t1); `final` flushes open scenarios (shutdown, end of history)."""

    t0: float
    t1: float
    normal: int
    new_customers: int
    new_terminals: int
    closes: dict[str, int]
    activations: int
    deletes: int
    new_scenarios: int
    final: bool = False


class Simulation:
    """One bank, advanced chunk by chunk: `prepare`, then `id_needs`, then `generate` (see module docstring)."""

    def __init__(self, settings: SimSettings, rng: random.Random, factory: EntityFactory, *,
                 compressed: bool, inline_status: bool, horizon_end: float | None = None,
                 settle_chunks: int = 0, owns_terminals: bool = True, confirm_activations: bool = False):
        self.s = settings
        # one of several fillers at once (a shard other than 0) uses terminals, never changes them
        self.owns_terminals = owns_terminals
        # beside another filler (continuous): an activated card or terminal is used only once the
        # database confirms the activation, because the other filler may have deleted it first
        self.confirm_activations = confirm_activations
        self.rng = rng
        self.factory = factory
        self.compressed = compressed  # continuous: scenario windows squeezed into seconds
        self.inline_status = inline_status  # backfill: final status written with the insert
        self.horizon_end = horizon_end  # backfill: nothing may happen after this time
        self.state = BankState()
        self.guard = sc.NormalGuard()
        self.status_changes = StatusChanges()
        self.scenarios = ScenarioRunner(rng, self.state, self.guard, compressed=compressed,
                                        inline_status=inline_status, horizon_end=horizon_end)
        # (chunk from which it may be deleted, transaction id): declined normal transactions
        self.deletable_txns: deque[tuple[int, int]] = deque(maxlen=5000)
        # Rows made in chunk k are only updated, deleted or referenced from chunk k+1+settle on:
        # with several writer connections in flight (backfill) they are committed by then.
        self.settle = settle_chunks
        self.chunk_no = 0
        self._later: deque[tuple[int, object, tuple]] = deque()
        self._last_prune = -INF

    # ------------------------------------------------------------------ views used by callers
    @property
    def active_cards(self) -> Pool:
        return self.state.active_cards

    @property
    def terminals(self) -> dict[str, Pool]:
        return self.state.terminals

    @property
    def busy(self) -> dict[int, float]:
        """Card -> kept from normal traffic until (scenario cards and their cool-down)."""
        return self.state.busy

    @property
    def open(self) -> list[OpenScenario]:
        """Scenarios started but not finished."""
        return self.scenarios.open

    # ------------------------------------------------------------------ state from the database
    def add_customer(self, customer_id: int) -> None:
        self.state.add_customer(customer_id)

    def add_account(self, account_id: int, customer_id: int, active: bool = True) -> None:
        self.state.add_account(account_id, customer_id, active)

    def add_card(self, card_id: int, account_id: int, status: str) -> None:
        self.state.add_card(card_id, account_id, status)

    def add_terminal(self, terminal_id: int, terminal_type: str, mcc: str, currency: str, status: str) -> None:
        self.state.add_terminal(terminal_id, terminal_type, mcc, currency, status)

    def add_closed_card(self, card_id: int, closed_at: float) -> None:
        self.state.add_closed_card(card_id, closed_at)

    def add_pending(self, txn_id: int, due: float) -> None:
        """A pending transaction that gets its outcome at `due`."""
        status = d.PENDING_OUTCOME.pick(self.rng)
        reason = self._decline_reason(False) if status == "declined" else None
        self.status_changes.schedule(due, txn_id, status, reason)

    # ------------------------------------------------------------------ planning
    def prepare(self, t0: float, t1: float, n: int, final: bool = False) -> ChunkPlan:
        rng, s, k = self.rng, self.s, n / 10_000.0
        poisson = d.poisson
        expected_scenarios = s.fraud_share * n / sc.mean_txns_per_scenario()
        new_scenarios = poisson(rng, expected_scenarios)
        normal = max(0, n - int(round(new_scenarios * sc.mean_txns_per_scenario())))
        return ChunkPlan(
            t0=t0, t1=t1, normal=normal,
            new_customers=poisson(rng, s.new_customer_rate * k),
            new_terminals=poisson(rng, 2.0 * k),
            closes={"customer": poisson(rng, s.customer_close_rate * k),
                    "account": poisson(rng, s.account_close_rate * k),
                    "card": poisson(rng, s.card_close_rate * k),
                    "terminal": poisson(rng, s.terminal_close_rate * k)},
            activations=poisson(rng, 4.0 * k), deletes=poisson(rng, s.delete_rate * k),
            new_scenarios=0 if final else new_scenarios, final=final)

    def id_needs(self, plan: ChunkPlan) -> dict[str, int]:
        return {"customer": plan.new_customers, "account": 2 * plan.new_customers,
                "card": 4 * plan.new_customers, "terminal": plan.new_terminals,
                "transaction": plan.normal + self.scenarios.pending_steps() + 8 * plan.new_scenarios,
                "scenario": len(self.scenarios.open) + plan.new_scenarios}

    @staticmethod
    def bootstrap_needs(customers: int, terminals: int) -> dict[str, int]:
        return {"customer": customers, "account": 2 * customers, "card": 4 * customers, "terminal": terminals}

    # ------------------------------------------------------------------ generation
    def bootstrap(self, customers: int, terminals: int, t_lo: float, t_hi: float, ids, batch: Batch) -> None:
        """A starting population (active, created between t_lo and t_hi)."""
        rng = self.rng
        types = list(d.TERMINAL_POPULATION_WEIGHTS)
        weights = list(d.TERMINAL_POPULATION_WEIGHTS.values())
        for i in range(terminals):
            # the first terminals cover every type
            ttype = types[i] if i < len(types) else rng.choices(types, weights)[0]
            self._new_terminal(ids, batch, rng.uniform(t_lo, t_hi), "active", ttype, delay=1)
        for at in sorted(rng.uniform(t_lo, t_hi) for _ in range(customers)):
            self._new_customer(ids, batch, at, t_hi, inactive_share=0.03, delay=1)

    def _defer(self, delay: int, fn, *args) -> None:
        self._later.append((self.chunk_no + delay, fn, args))

    def generate(self, plan: ChunkPlan, ids, batch: Batch) -> None:
        self.chunk_no += 1
        while self._later and self._later[0][0] <= self.chunk_no:
            _, fn, args = self._later.popleft()
            fn(*args)
        self.scenarios.start(plan.new_scenarios, plan.t0, plan.t1)
        self._closes(plan, batch)
        self._activations_and_deletes(plan, batch)
        self._normal_traffic(plan, ids, batch)
        if not self.inline_status:
            batch.txn_updates.extend(self.status_changes.pop_due(plan.t1))
        self.scenarios.advance(plan.t0, plan.t1, plan.final, ids, batch)
        new_at = sorted(self.rng.uniform(plan.t0, plan.t1) for _ in range(plan.new_customers))
        for at in new_at:
            self._new_customer(ids, batch, at, plan.t1, inactive_share=0.2, delay=1 + self.settle)
        for _ in range(plan.new_terminals):
            self._new_terminal(ids, batch, self.rng.uniform(plan.t0, plan.t1),
                               "inactive" if self.rng.random() < 0.3 else "active", delay=1 + self.settle)
        if plan.t1 - self._last_prune > 60.0:
            self._last_prune = plan.t1
            self.guard.prune(plan.t1)
            self.state.release_cards(plan.t1)

    # -- entities
    def _new_customer(self, ids, batch: Batch, at: float, t_max: float, inactive_share: float,
                      delay: int) -> None:
        rng, f, state = self.rng, self.factory, self.state
        cid = ids.take("customer")
        batch.customers.append(f.customer(cid, at))
        self._defer(delay, state.add_customer, cid)
        for _ in range(1 if rng.random() < 0.75 else 2):
            a_at = min(at + rng.uniform(0, 120.0), t_max)
            aid = ids.take("account")
            batch.accounts.append(f.account(aid, cid, a_at))
            self._defer(delay, state.add_account, aid, cid)
            for _ in range(1 if rng.random() < 0.7 else 2):
                c_at = min(a_at + rng.uniform(0, 60.0), t_max)
                status = "inactive" if rng.random() < inactive_share else "active"
                card_id = ids.take("card")
                batch.cards.append(f.card(card_id, aid, c_at, status))
                self._defer(delay, state.add_card, card_id, aid, status)

    def _new_terminal(self, ids, batch: Batch, at: float, status: str, ttype: str | None = None,
                      delay: int = 1) -> None:
        if ttype is None:
            ttype = self.rng.choices(list(d.TERMINAL_POPULATION_WEIGHTS),
                                     list(d.TERMINAL_POPULATION_WEIGHTS.values()))[0]
        tid = ids.take("terminal")
        row, cat = self.factory.terminal(tid, ttype, at, status)
        batch.terminals.append(row)
        self._defer(delay, self.state.add_new_terminal, tid, ttype, cat, row[6], status)

    # -- closes, activations, deletes
    def _closes(self, plan: ChunkPlan, batch: Batch) -> None:
        rng, state = self.rng, self.state
        for table in ("customer", "account", "card", "terminal"):
            for _ in range(plan.closes[table]):
                at = rng.uniform(plan.t0, plan.t1)
                if table == "customer" and len(state.active_customers) > 10:
                    cid = state.active_customers.choice(rng)
                    accounts = state.customer_accounts.get(cid, [])
                    if not state.has_busy_card(accounts, at):
                        for aid in list(accounts):
                            state.close_account(aid, at, batch)
                        state.active_customers.remove(cid)
                        state.customer_accounts.pop(cid, None)
                        batch.closes["customer"].append((cid, at))
                elif table == "account" and len(state.active_accounts) > 10:
                    aid = state.active_accounts.choice(rng)
                    if not state.has_busy_card([aid], at):
                        state.close_account(aid, at, batch)
                elif table == "card" and len(state.active_cards) > 10:
                    card_id = state.active_cards.choice(rng)
                    if not state.card_is_busy(card_id, at):
                        state.close_card(card_id, at, batch)
                elif table == "terminal" and self.owns_terminals:
                    ttype = rng.choices(TERMINAL_TYPES, (1, 4, 2))[0]
                    pool = state.terminals[ttype]
                    if len(pool) > 5:
                        tid = pool.choice(rng)
                        pool.remove(tid)
                        batch.closes["terminal"].append((tid, at))

    def _activations_and_deletes(self, plan: ChunkPlan, batch: Batch) -> None:
        rng, state = self.rng, self.state
        for _ in range(plan.activations):
            at = rng.uniform(plan.t0, plan.t1)
            if rng.random() < 0.7 and len(state.inactive_cards) > 0:
                card_id = state.inactive_cards.choice(rng)
                state.inactive_cards.remove(card_id)
                batch.activations["card"].append((card_id, at))
                if not self.confirm_activations:
                    state.active_cards.add(card_id)
            elif self.owns_terminals and len(state.inactive_terminals) > 0:
                tid = state.inactive_terminals.choice(rng)
                state.inactive_terminals.remove(tid)
                batch.activations["terminal"].append((tid, at))
                if not self.confirm_activations:
                    state.terminals[state.terminal_info[tid][0]].add(tid)
        for _ in range(plan.deletes):
            r = rng.random()
            if r < 0.4 and len(state.inactive_cards) > 0:
                card_id = state.inactive_cards.choice(rng)
                state.inactive_cards.remove(card_id)
                account = state.card_account.pop(card_id, None)
                if account is not None and card_id in state.account_cards.get(account, ()):
                    state.account_cards[account].remove(card_id)
                batch.delete_cards.append(card_id)
            elif r < 0.7 and self.owns_terminals and len(state.inactive_terminals) > 0:
                tid = state.inactive_terminals.choice(rng)
                state.inactive_terminals.remove(tid)
                state.terminal_info.pop(tid, None)
                batch.delete_terminals.append(tid)
            elif self.deletable_txns and self.deletable_txns[0][0] <= self.chunk_no:
                batch.delete_transactions.append(self.deletable_txns.popleft()[1])

    def activations_committed(self, batch: Batch) -> None:
        """Pool what `batch` activated and the database confirmed (see `confirm_activations`).

        An activation the database did not apply (another filler deleted, closed or activated
        the row first) leaves the card or terminal out of every pool: this filler never uses it.
        """
        if not self.confirm_activations:
            return
        state = self.state
        for card_id in batch.activated["card"]:
            state.active_cards.add(card_id)
        for tid in batch.activated["terminal"]:
            if tid in state.terminal_info:
                state.terminals[state.terminal_info[tid][0]].add(tid)

    # -- normal traffic
    def _decline_reason(self, card_present: bool) -> str:
        reason = self.rng.choices(d.DECLINE_REASONS, d.DECLINE_WEIGHTS)[0]
        return "do_not_honor" if reason == "incorrect_pin" and not card_present else reason

    def _normal_traffic(self, plan: ChunkPlan, ids, batch: Batch) -> None:
        """The hot loop: plain locals, no helper calls per transaction where avoidable."""
        rng, guard, state = self.rng, self.guard, self.state
        info, busy = state.terminal_info, state.busy
        random_, gauss, exp = rng.random, rng.gauss, math.exp
        cards = state.active_cards.items
        if not cards:
            return
        t0, t1 = plan.t0, plan.t1
        span = t1 - t0
        times = sorted([t0 + random_() * span for _ in range(plan.normal)])
        atm_w = d.TERMINAL_TYPE_WEIGHTS["ATM"]
        pos_w = atm_w + d.TERMINAL_TYPE_WEIGHTS["POS"]
        pools = {t: state.terminals[t].items for t in TERMINAL_TYPES}
        atm_pool, pos_pool, online_pool = pools["ATM"], pools["POS"], pools["ONLINE"]
        # per category: (log median in cents, sigma)
        cat_params = [(math.log(c.median * 100.0), c.sigma) for c in d.CATEGORIES]
        withdrawal, pos_entry, declines = d.WITHDRAWAL, d.POS_ENTRY, d.DECLINES
        deposit_amounts = d.DEPOSIT_AMOUNTS
        decline_share, refund_share, reversal_share = d.DECLINE_SHARE, d.REFUND_SHARE, d.REVERSAL_SHARE
        pending_pos = decline_share + d.PENDING_SHARE["POS"]
        pending_online = decline_share + d.PENDING_SHARE["ONLINE"]
        min_c, max_c = d.MIN_CENTS, d.MAX_CENTS
        inline = self.inline_status
        horizon = self.horizon_end if self.horizon_end is not None else INF
        decide_limit = horizon if inline else t1
        take = ids.take
        rows = batch.transactions
        append = rows.append
        deletable = self.deletable_txns
        deletable_from = self.chunk_no + 1 + self.settle
        n_cards = len(cards)
        for at in times:
            card = cards[int(random_() * n_cards)]
            if busy and busy.get(card, -INF) > at:
                card = cards[int(random_() * n_cards)]
                if busy.get(card, -INF) > at:
                    continue
            r = random_()
            ttype = "ATM" if r < atm_w else ("POS" if r < pos_w else "ONLINE")
            txn_type = ""
            if ttype == "ATM":
                if random_() < d.DEPOSIT_SHARE:
                    txn_type, cents = "deposit", deposit_amounts[int(random_() * len(deposit_amounts))] * 100
                elif guard.allow_withdrawal(card, at):
                    txn_type, cents = "withdrawal", withdrawal.pick(rng) * 100
                    guard.note_withdrawal(card, at)
                else:
                    ttype = "POS"  # a third withdrawal in 10 minutes becomes a shop purchase
            pool = atm_pool if ttype == "ATM" else (pos_pool if ttype == "POS" else online_pool)
            if not pool:
                continue
            tid = pool[int(random_() * len(pool))]
            _, cat, currency = info[tid]
            if not txn_type:
                mu, sigma = cat_params[cat]
                cents = int(exp(mu + sigma * gauss(0.0, 1.0)))
                cents = min_c if cents < min_c else (max_c if cents > max_c else cents)
                if random_() < refund_share:
                    txn_type = "refund"
                else:
                    txn_type = "purchase"
                    cents = guard.cap_purchase(card, at, cents)
            if ttype == "POS":
                present, mode = True, pos_entry.pick(rng)
            elif ttype == "ONLINE":
                present, mode = False, "ecommerce"
            else:
                present, mode = True, "chip"
            txn_id = take("transaction")
            decided = at + 0.2 + random_() * 2.0
            if decided > decide_limit:
                decided = at if at > decide_limit else decide_limit
            r = random_()
            if r < decline_share:
                reason = declines.pick(rng)
                if reason == "incorrect_pin" and not present:
                    reason = "do_not_honor"
                append([txn_id, card, tid, txn_type, "declined", cents, currency, present, mode, reason,
                        at, None, decided, None, decided])
                deletable.append((deletable_from, txn_id))
            elif txn_type == "purchase" and ttype != "ATM" and r < (pending_pos if ttype == "POS" else pending_online):
                row = [txn_id, card, tid, txn_type, "pending", cents, currency, present, mode, None,
                       at, None, None, None, at]
                if inline:
                    self._resolve_inline(row, at + 2.0 + random_() * 1800.0, horizon)
                else:
                    self.add_pending(txn_id, at + 1.0 + random_() * 19.0)
                append(row)
            else:
                row = [txn_id, card, tid, txn_type, "approved", cents, currency, present, mode, None,
                       at, decided, None, None, decided]
                if txn_type == "purchase" and random_() < reversal_share:
                    if inline:
                        rev = decided + 600.0 + random_() * 2 * 86400.0
                        if rev <= horizon:
                            row[4], row[13], row[14] = "reversed", rev, rev
                    else:
                        self.status_changes.schedule(decided + 5.0 + random_() * 55.0, txn_id, "reversed", None)
                append(row)

    def _resolve_inline(self, row: list, due: float, horizon: float) -> None:
        if due > horizon:
            return  # still pending at the end of the history: continuous mode will resolve it
        status = d.PENDING_OUTCOME.pick(self.rng)
        row[4], row[14] = status, due
        if status == "approved":
            row[11] = due
        elif status == "declined":
            row[9], row[12] = self._decline_reason(row[7]), due
        else:
            row[13] = due
