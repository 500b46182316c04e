"""The simulated bank: entity pools, normal traffic, closes, deletes, status changes, scenarios.

The same engine drives both modes. Time advances in chunks [t0, t1): an hour of history in
backfill mode, one tick of real time in continuous mode. Each chunk is made in two steps so
that generation never touches the database:

    plan = sim.prepare(t0, t1, n)      # draws the chunk's counts
    ids.ensure(sim.id_needs(plan))     # reserves ids (database)
    sim.generate(plan, ids, batch)     # pure: fills the batch, updates the in-memory state

Everything random comes from one seeded `random.Random`, in a fixed order, so a seed and the
same settings (and the same starting database) give the same rows.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field

from filler import distributions as d
from filler import scenarios as sc
from filler.batch import Batch, ScenarioRecord
from filler.config import SimSettings
from filler.generators import EntityFactory
from filler.pool import Pool

INF = float("inf")
TERMINAL_TYPES = ("ATM", "POS", "ONLINE")


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class ChunkPlan:
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


@dataclass
class OpenScenario:
    plan: sc.Plan
    next_step: int = 0
    txn_ids: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    slots: dict[int, int] = field(default_factory=dict)


class Simulation:
    def __init__(self, settings: SimSettings, rng: random.Random, factory: EntityFactory, *,
                 compressed: bool, inline_status: bool, horizon_end: float | None = None,
                 settle_chunks: int = 0):
        self.s = settings
        self.rng = rng
        self.factory = factory
        self.compressed = compressed  # continuous: scenario windows squeezed into seconds
        self.inline_status = inline_status  # backfill: final status written with the insert
        self.horizon_end = horizon_end  # backfill: nothing may happen after this time
        self.customer_accounts: dict[int, list[int]] = {}
        self.active_customers = Pool()
        self.account_cards: dict[int, list[int]] = {}
        self.account_customer: dict[int, int] = {}
        self.active_accounts = Pool()
        self.card_account: dict[int, int] = {}
        self.active_cards = Pool()
        self.inactive_cards = Pool()
        self.closed_cards: deque[tuple[int, float]] = deque(maxlen=5000)
        self.terminals = {t: Pool() for t in TERMINAL_TYPES}
        self.inactive_terminals = Pool()
        self.terminal_info: dict[int, tuple[str, int, str]] = {}  # id -> (type, category index, currency)
        self.busy: dict[int, float] = {}  # card -> kept from normal traffic until
        self.guard = sc.NormalGuard()
        self.pending: list[tuple[float, int, int, str, str | None]] = []  # heap (due, seq, id, status, reason)
        self._heap_seq = 0
        # (chunk from which it may be deleted, transaction id): declined normal transactions
        self.deletable_txns: deque[tuple[int, int]] = deque(maxlen=5000)
        # Rows made in chunk k are only updated, deleted or referenced from chunk k+1+settle on:
        # with several writer connections in flight (backfill) they are committed by then.
        self.settle = settle_chunks
        self.chunk_no = 0
        self._later: deque[tuple[int, object, tuple]] = deque()
        self.open: list[OpenScenario] = []
        self._last_prune = -INF
        self._cats = {t: d.categories_for(t) for t in ("POS", "ONLINE")}

    # ------------------------------------------------------------------ state from the database
    def add_customer(self, customer_id: int) -> None:
        self.customer_accounts.setdefault(customer_id, [])
        self.active_customers.add(customer_id)

    def add_account(self, account_id: int, customer_id: int, active: bool = True) -> None:
        self.account_customer[account_id] = customer_id
        self.account_cards.setdefault(account_id, [])
        self.customer_accounts.setdefault(customer_id, []).append(account_id)
        if active:
            self.active_accounts.add(account_id)

    def add_card(self, card_id: int, account_id: int, status: str) -> None:
        self.card_account[card_id] = account_id
        self.account_cards.setdefault(account_id, []).append(card_id)
        if status == "active":
            self.active_cards.add(card_id)
        elif status == "inactive":  # 'blocked' cards stay out of both pools until closed
            self.inactive_cards.add(card_id)

    def add_terminal(self, terminal_id: int, terminal_type: str, mcc: str, currency: str, status: str) -> None:
        cat = next((i for i, c in enumerate(d.CATEGORIES) if c.mcc == mcc and c.terminal_type == terminal_type), -1)
        if cat < 0 and terminal_type != "ATM":
            cat = d.CATEGORIES.index(self._cats[terminal_type][0][0])
        self.terminal_info[terminal_id] = (terminal_type, cat, currency)
        (self.terminals[terminal_type] if status == "active" else self.inactive_terminals).add(terminal_id)

    def add_closed_card(self, card_id: int, closed_at: float) -> None:
        self.closed_cards.append((card_id, closed_at))

    def add_pending(self, txn_id: int, due: float) -> None:
        status = d.PENDING_OUTCOME.pick(self.rng)
        reason = self._decline_reason(False) if status == "declined" else None
        self._push(due, txn_id, status, reason)

    # ------------------------------------------------------------------ planning
    def prepare(self, t0: float, t1: float, n: int, final: bool = False) -> ChunkPlan:
        rng, s, k = self.rng, self.s, n / 10_000.0
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
        open_steps = sum(len(o.plan.steps) - o.next_step for o in self.open)
        return {"customer": plan.new_customers, "account": 2 * plan.new_customers,
                "card": 4 * plan.new_customers, "terminal": plan.new_terminals,
                "transaction": plan.normal + open_steps + 8 * plan.new_scenarios,
                "scenario": len(self.open) + plan.new_scenarios}

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
        self._start_scenarios(plan)
        self._closes(plan, batch)
        self._activations_and_deletes(plan, batch)
        self._normal_traffic(plan, ids, batch)
        if not self.inline_status:
            self._due_status_changes(plan.t1, batch)
        self._scenario_steps(plan, ids, batch)
        new_at = sorted(self.rng.uniform(plan.t0, plan.t1) for _ in range(plan.new_customers))
        for at in new_at:
            self._new_customer(ids, batch, at, plan.t1, inactive_share=0.2, delay=1 + self.settle)
        for _ in range(plan.new_terminals):
            self._new_terminal(ids, batch, self.rng.uniform(plan.t0, plan.t1),
                               "inactive" if self.rng.random() < 0.3 else "active", delay=1 + self.settle)
        if plan.t1 - self._last_prune > 60.0:
            self._last_prune = plan.t1
            self.guard.prune(plan.t1)
            self.busy = {c: u for c, u in self.busy.items() if u > plan.t1}

    # -- entities
    def _new_customer(self, ids, batch: Batch, at: float, t_max: float, inactive_share: float,
                      delay: int) -> None:
        rng, f = self.rng, self.factory
        cid = ids.take("customer")
        batch.customers.append(f.customer(cid, at))
        self._defer(delay, self.add_customer, cid)
        for _ in range(1 if rng.random() < 0.75 else 2):
            a_at = min(at + rng.uniform(0, 120.0), t_max)
            aid = ids.take("account")
            batch.accounts.append(f.account(aid, cid, a_at))
            self._defer(delay, self.add_account, aid, cid)
            for _ in range(1 if rng.random() < 0.7 else 2):
                c_at = min(a_at + rng.uniform(0, 60.0), t_max)
                status = "inactive" if rng.random() < inactive_share else "active"
                card_id = ids.take("card")
                batch.cards.append(f.card(card_id, aid, c_at, status))
                self._defer(delay, self.add_card, card_id, aid, status)

    def _new_terminal(self, ids, batch: Batch, at: float, status: str, ttype: str | None = None,
                      delay: int = 1) -> None:
        if ttype is None:
            ttype = self.rng.choices(list(d.TERMINAL_POPULATION_WEIGHTS),
                                     list(d.TERMINAL_POPULATION_WEIGHTS.values()))[0]
        tid = ids.take("terminal")
        row, cat = self.factory.terminal(tid, ttype, at, status)
        batch.terminals.append(row)
        self._defer(delay, self._add_new_terminal, tid, ttype, cat, row[6], status)

    def _add_new_terminal(self, tid: int, ttype: str, cat: int, currency: str, status: str) -> None:
        self.terminal_info[tid] = (ttype, cat, currency)
        (self.terminals[ttype] if status == "active" else self.inactive_terminals).add(tid)

    # -- closes, activations, deletes
    def _card_is_busy(self, card_id: int, at: float) -> bool:
        return self.busy.get(card_id, -INF) > at

    def _close_card(self, card_id: int, at: float, batch: Batch) -> None:
        self.active_cards.remove(card_id)
        self.inactive_cards.remove(card_id)
        account = self.card_account.pop(card_id, None)
        if account is not None and card_id in self.account_cards.get(account, ()):
            self.account_cards[account].remove(card_id)
        batch.closes["card"].append((card_id, at))
        self.closed_cards.append((card_id, at))

    def _close_account(self, account_id: int, at: float, batch: Batch) -> None:
        for card_id in list(self.account_cards.get(account_id, ())):
            self._close_card(card_id, at, batch)
        self.active_accounts.remove(account_id)
        self.account_cards.pop(account_id, None)
        customer = self.account_customer.pop(account_id, None)
        if customer is not None and account_id in self.customer_accounts.get(customer, ()):
            self.customer_accounts[customer].remove(account_id)
        batch.closes["account"].append((account_id, at))

    def _has_busy_card(self, account_ids, at: float) -> bool:
        return any(self._card_is_busy(c, at) for a in account_ids for c in self.account_cards.get(a, ()))

    def _closes(self, plan: ChunkPlan, batch: Batch) -> None:
        rng = self.rng
        for table in ("customer", "account", "card", "terminal"):
            for _ in range(plan.closes[table]):
                at = rng.uniform(plan.t0, plan.t1)
                if table == "customer" and len(self.active_customers) > 10:
                    cid = self.active_customers.choice(rng)
                    accounts = self.customer_accounts.get(cid, [])
                    if not self._has_busy_card(accounts, at):
                        for aid in list(accounts):
                            self._close_account(aid, at, batch)
                        self.active_customers.remove(cid)
                        self.customer_accounts.pop(cid, None)
                        batch.closes["customer"].append((cid, at))
                elif table == "account" and len(self.active_accounts) > 10:
                    aid = self.active_accounts.choice(rng)
                    if not self._has_busy_card([aid], at):
                        self._close_account(aid, at, batch)
                elif table == "card" and len(self.active_cards) > 10:
                    card_id = self.active_cards.choice(rng)
                    if not self._card_is_busy(card_id, at):
                        self._close_card(card_id, at, batch)
                elif table == "terminal":
                    ttype = rng.choices(TERMINAL_TYPES, (1, 4, 2))[0]
                    pool = self.terminals[ttype]
                    if len(pool) > 5:
                        tid = pool.choice(rng)
                        pool.remove(tid)
                        batch.closes["terminal"].append((tid, at))

    def _activations_and_deletes(self, plan: ChunkPlan, batch: Batch) -> None:
        rng = self.rng
        for _ in range(plan.activations):
            at = rng.uniform(plan.t0, plan.t1)
            if rng.random() < 0.7 and len(self.inactive_cards) > 0:
                card_id = self.inactive_cards.choice(rng)
                self.inactive_cards.remove(card_id)
                batch.activations["card"].append((card_id, at))
                self.active_cards.add(card_id)
            elif len(self.inactive_terminals) > 0:
                tid = self.inactive_terminals.choice(rng)
                self.inactive_terminals.remove(tid)
                batch.activations["terminal"].append((tid, at))
                self.terminals[self.terminal_info[tid][0]].add(tid)
        for _ in range(plan.deletes):
            r = rng.random()
            if r < 0.4 and len(self.inactive_cards) > 0:
                card_id = self.inactive_cards.choice(rng)
                self.inactive_cards.remove(card_id)
                account = self.card_account.pop(card_id, None)
                if account is not None and card_id in self.account_cards.get(account, ()):
                    self.account_cards[account].remove(card_id)
                batch.delete_cards.append(card_id)
            elif r < 0.7 and len(self.inactive_terminals) > 0:
                tid = self.inactive_terminals.choice(rng)
                self.inactive_terminals.remove(tid)
                self.terminal_info.pop(tid, None)
                batch.delete_terminals.append(tid)
            elif self.deletable_txns and self.deletable_txns[0][0] <= self.chunk_no:
                batch.delete_transactions.append(self.deletable_txns.popleft()[1])

    # -- normal traffic
    def _decline_reason(self, card_present: bool) -> str:
        reason = self.rng.choices(d.DECLINE_REASONS, d.DECLINE_WEIGHTS)[0]
        return "do_not_honor" if reason == "incorrect_pin" and not card_present else reason

    def _push(self, due: float, txn_id: int, status: str, reason: str | None) -> None:
        self._heap_seq += 1
        heapq.heappush(self.pending, (due, self._heap_seq, txn_id, status, reason))

    def _normal_traffic(self, plan: ChunkPlan, ids, batch: Batch) -> None:
        """The hot loop: plain locals, no helper calls per transaction where avoidable."""
        rng, guard, info, busy = self.rng, self.guard, self.terminal_info, self.busy
        random_, gauss, exp = rng.random, rng.gauss, math.exp
        cards = self.active_cards.items
        if not cards:
            return
        t0, t1 = plan.t0, plan.t1
        span = t1 - t0
        times = sorted([t0 + random_() * span for _ in range(plan.normal)])
        atm_w = d.TERMINAL_TYPE_WEIGHTS["ATM"]
        pos_w = atm_w + d.TERMINAL_TYPE_WEIGHTS["POS"]
        pools = {t: self.terminals[t].items for t in TERMINAL_TYPES}
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
                        self._push(decided + 5.0 + random_() * 55.0, txn_id, "reversed", None)
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

    def _due_status_changes(self, t1: float, batch: Batch) -> None:
        heap = self.pending
        while heap and heap[0][0] <= t1:
            due, _, txn_id, status, reason = heapq.heappop(heap)
            batch.txn_updates.append((txn_id, status, reason, due))

    # -- scenarios
    def _scenario_card(self, at: float) -> int | None:
        if not len(self.active_cards):
            return None
        for _ in range(20):
            card = self.active_cards.choice(self.rng)
            if not self._card_is_busy(card, at) and self.guard.is_clean(card, at):
                return card
        return None

    def _start_scenarios(self, plan: ChunkPlan) -> None:
        rng = self.rng
        for _ in range(plan.new_scenarios):
            start = rng.uniform(plan.t0, plan.t1)
            kind = sc.choose_kind(rng)
            if (not self.compressed and self.horizon_end is not None
                    and start + sc.MAX_SPAN_S[kind] > self.horizon_end):
                continue
            if kind == sc.CLOSED_CARD_ATTEMPTS:
                if self.closed_cards and rng.random() < 0.4:
                    card, closed_at = self.closed_cards[int(rng.random() * len(self.closed_cards))]
                    if closed_at >= start:
                        continue
                    p = sc.plan_closed_card_attempts(rng, card, start, self.compressed, False, closed_at)
                else:
                    card = self._scenario_card(start)
                    if card is None:
                        continue
                    self.active_cards.remove(card)  # normal traffic stops using it now
                    self.busy[card] = INF  # and no cascade close may close it first
                    p = sc.plan_closed_card_attempts(rng, card, start, self.compressed, True, None)
            else:
                card = self._scenario_card(start)
                if card is None:
                    continue
                planner = sc.plan_rapid_withdrawals if kind == sc.RAPID_WITHDRAWALS else sc.plan_amount_probing
                p = planner(rng, card, start, self.compressed)
                self.busy[card] = p.steps[-1].at + sc.COOLDOWN_S
            self.open.append(OpenScenario(p))

    def _scenario_steps(self, plan: ChunkPlan, ids, batch: Batch) -> None:
        still_open = []
        limit = plan.t1 if self.inline_status is False else (self.horizon_end or INF)
        for o in self.open:
            steps = o.plan.steps
            prev = plan.t0  # every earlier step happened before this chunk
            while o.next_step < len(steps):
                step = steps[o.next_step]
                at = step.at
                if at > plan.t1 and not self.inline_status:
                    # continuous: steps happen in real time; history writes a scenario whole, in
                    # the batch where it starts (its ground truth needs all its rows committed)
                    if not plan.final:
                        break
                    # shutting down: squeeze what is left into (prev, t1], order kept
                    left = len(steps) - o.next_step
                    at = max(prev + 1e-5, prev + (plan.t1 - prev) / left)
                self._emit_step(o, step, at, limit, ids, batch)
                prev = at
                o.next_step += 1
            if o.next_step < len(steps):
                still_open.append(o)
            else:
                self._finish(o, ids, batch)
        self.open = still_open

    def _emit_step(self, o: OpenScenario, step: sc.Step, at: float, limit: float, ids, batch: Batch) -> None:
        card = o.plan.card_id
        if step.action == "close":
            self.busy.pop(card, None)
            self._close_card(card, at, batch)
            o.plan.params["closed_at"] = at
            return
        tid = o.slots.get(step.terminal_slot)
        if tid is None or tid not in self.terminals[step.terminal_type]:
            pool = self.terminals[step.terminal_type]
            tid = pool.choice(self.rng) if len(pool) else next(iter(self.terminal_info))
            o.slots[step.terminal_slot] = tid
        ttype, _, currency = self.terminal_info[tid]
        present = ttype != "ONLINE"
        mode = "ecommerce" if not present else ("chip" if ttype == "ATM" else "contactless")
        decided = min(at + 0.3, max(at, limit))
        txn_id = ids.take("transaction")
        row = [txn_id, card, tid, step.txn_type, step.status, step.amount_cents, currency, present, mode,
               step.decline_reason, at, decided if step.status == "approved" else None,
               decided if step.status == "declined" else None, None, decided]
        batch.transactions.append(row)
        o.txn_ids.append(txn_id)
        o.times.append(at)

    def _finish(self, o: OpenScenario, ids, batch: Batch) -> None:
        if not o.txn_ids:
            return
        start, end = sc.window_of(o.times)
        params = dict(o.plan.params)
        if params.get("closed_at") is not None:
            params["closed_at"] = _iso(params["closed_at"])
        params["mode"] = "continuous" if self.compressed else "backfill"
        batch.scenarios.append(ScenarioRecord(ids.take("scenario"), o.plan.kind, o.plan.card_id, start, end,
                                              params, list(o.txn_ids)))


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()
