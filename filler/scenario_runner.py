"""Runs injected fraud scenarios: starts them, emits their steps as time passes, records their ground truth."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from filler import scenarios as sc
from filler.bank_state import BankState
from filler.batch import Batch, ScenarioRecord


@dataclass
class OpenScenario:
    """A started scenario: its plan, the next step to emit, and what it has produced so far."""

    plan: sc.Plan
    next_step: int = 0
    txn_ids: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    slots: dict[int, int] = field(default_factory=dict)  # terminal slot -> terminal id


class ScenarioRunner:
    """Plans new scenarios on clean cards, steps the open ones, and writes a ScenarioRecord when one ends."""

    def __init__(self, rng: random.Random, state: BankState, guard: sc.NormalGuard, *, compressed: bool,
                 inline_status: bool, horizon_end: float | None) -> None:
        self.rng = rng
        self.state = state
        self.guard = guard
        self.compressed = compressed
        self.inline_status = inline_status
        self.horizon_end = horizon_end
        self.open: list[OpenScenario] = []

    def pending_steps(self) -> int:
        """Steps of open scenarios not emitted yet."""
        return sum(len(o.plan.steps) - o.next_step for o in self.open)

    def _pick_card(self, at: float) -> int | None:
        """An active card that is neither busy nor close to matching a rule, or None."""
        state = self.state
        if not len(state.active_cards):
            return None
        for _ in range(20):
            card = state.active_cards.choice(self.rng)
            if not state.card_is_busy(card, at) and self.guard.is_clean(card, at):
                return card
        return None

    def start(self, count: int, t0: float, t1: float) -> None:
        """Plans up to `count` new scenarios starting in [t0, t1) (some are skipped: no card, past the horizon)."""
        rng, state = self.rng, self.state
        for _ in range(count):
            start = rng.uniform(t0, t1)
            kind = sc.choose_kind(rng)
            if (not self.compressed and self.horizon_end is not None
                    and start + sc.MAX_SPAN_S[kind] > self.horizon_end):
                continue
            if kind == sc.CLOSED_CARD_ATTEMPTS:
                if state.closed_cards and rng.random() < 0.4:
                    card, closed_at = state.closed_cards[int(rng.random() * len(state.closed_cards))]
                    # its attempts may be ATM withdrawals or large purchases: with the card's last
                    # normal traffic or another scenario's attempts they could match a second rule
                    if closed_at >= start or state.card_is_busy(card, start) or not self.guard.is_clean(card, start):
                        continue
                    p = sc.plan_closed_card_attempts(rng, card, start, self.compressed, False, closed_at)
                    state.busy[card] = p.steps[-1].at + sc.COOLDOWN_S
                else:
                    card = self._pick_card(start)
                    if card is None:
                        continue
                    state.active_cards.remove(card)  # normal traffic stops using it now
                    state.busy[card] = math.inf  # and no cascade close may close it first
                    p = sc.plan_closed_card_attempts(rng, card, start, self.compressed, True, None)
            else:
                card = self._pick_card(start)
                if card is None:
                    continue
                planner = sc.plan_rapid_withdrawals if kind == sc.RAPID_WITHDRAWALS else sc.plan_amount_probing
                p = planner(rng, card, start, self.compressed)
                state.busy[card] = p.steps[-1].at + sc.COOLDOWN_S
            self.open.append(OpenScenario(p))

    def advance(self, t0: float, t1: float, final: bool, ids, batch: Batch) -> None:
        """Emits the steps due in the chunk [t0, t1) (all of them when `final`); finished scenarios are recorded."""
        still_open = []
        limit = t1 if self.inline_status is False else (self.horizon_end or math.inf)
        for o in self.open:
            steps = o.plan.steps
            prev = t0  # every earlier step happened before this chunk
            while o.next_step < len(steps):
                step = steps[o.next_step]
                at = step.at
                if at > t1 and not self.inline_status:
                    # continuous: steps happen in real time; history writes a scenario whole, in
                    # the batch where it starts (its ground truth needs all its rows committed)
                    if not final:
                        break
                    # shutting down: squeeze what is left into (prev, t1], order kept
                    left = len(steps) - o.next_step
                    at = max(prev + 1e-5, prev + (t1 - prev) / left)
                self._emit_step(o, step, at, limit, ids, batch)
                prev = at
                o.next_step += 1
            if o.next_step < len(steps):
                still_open.append(o)
            else:
                self._finish(o, ids, batch)
        self.open = still_open

    def _emit_step(self, o: OpenScenario, step: sc.Step, at: float, limit: float, ids, batch: Batch) -> None:
        state = self.state
        card = o.plan.card_id
        if step.action == "close":
            state.busy.pop(card, None)
            state.close_card(card, at, batch)
            o.plan.params["closed_at"] = at
            return
        tid = o.slots.get(step.terminal_slot)
        if tid is None or tid not in state.terminals[step.terminal_type]:
            pool = state.terminals[step.terminal_type]
            tid = pool.choice(self.rng) if len(pool) else next(iter(state.terminal_info))
            o.slots[step.terminal_slot] = tid
        ttype, _, currency = state.terminal_info[tid]
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
        """The scenario's ground truth: one ScenarioRecord with its window, params and transactions."""
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
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()
