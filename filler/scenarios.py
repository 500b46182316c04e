"""Fraud scenarios: the rules (one definition for the filler, the tests and the fraud marts),
how the filler injects them, and how normal traffic is kept from matching them by accident.

Rules (all per card; `created_at` is the transaction's time; every status counts, because an
attempt is suspicious whether or not the bank approved it):

RAPID_WITHDRAWALS  (kind 'rapid_withdrawals')
    At least RAPID_MIN_COUNT (4) transactions with txn_type = 'withdrawal' at terminals with
    terminal_type = 'ATM' on the same card whose created_at all lie within RAPID_WINDOW_S
    (600 s): last.created_at - first.created_at <= 600 s.
    Flagged window: [first.created_at, last.created_at] of the qualifying run.

CLOSED_CARD_ATTEMPTS  (kind 'closed_card_attempts')
    A card with status = 'closed' has at least one transaction (any type, any status) with
    created_at > card.closed_at. Flagged window: first to last such transaction.
    (The filler's attempts are declined with decline_reason 'card_closed'; the rule does not
    rely on that.)

AMOUNT_PROBING  (kind 'amount_probing')
    On the same card, at least PROBING_MIN_SMALL (3) transactions with txn_type = 'purchase'
    and amount < 5.00, followed by a 'purchase' with amount >= 500.00, where the first small
    one and the large one lie within PROBING_WINDOW_S (900 s) and every small one is earlier
    than the large one. Flagged window: first small to that large transaction.

Ground truth: every injected scenario is one row of fraud_truth.scenario (kind, card_id,
window_start/window_end = first/last transaction of the scenario, params) plus one
fraud_truth.scenario_transaction row per transaction it produced. A detection matches a
truth row when kind and card_id are equal and the windows overlap. A closed card may get
several closed_card_attempts episodes; the rule flags the card, so they make one case.

Injection (what the filler writes):
  * rapid_withdrawals: 4-6 ATM withdrawals (100-400) at one or two ATMs, 20-110 s apart
    (history) or 0.5-3 s apart (continuous, compressed into real time); the last may be
    declined 'limit_exceeded'.
  * closed_card_attempts: either closes an active card (status 'closed', closed_at) and then
    makes 1-3 declined attempts 10 min-6 h later (history) or 2-8 s later (continuous), or
    makes the attempts on a card that was already closed.
  * amount_probing: 3-5 ONLINE purchases of 0.50-4.99 at one merchant 15-60 s apart
    (continuous: 0.5-2 s), then 1-2 ONLINE purchases of 500-2,500 within the next 4 min
    (continuous: a few seconds); large ones are approved or declined 'suspected_fraud'.

Keeping normal traffic clean (so precision can be measured):
  * normal traffic only uses cards whose status is 'active' and never a card after its
    closed_at (closes take the card out of the pool at the close time) -> it can never
    match CLOSED_CARD_ATTEMPTS;
  * NormalGuard allows at most NORMAL_MAX_WITHDRAWALS (2) withdrawals per card within any
    RAPID_WINDOW_S (a 3rd becomes a card-present purchase) -> it can never reach 4;
  * NormalGuard never lets a purchase of >= 500.00 follow a purchase < 5.00 on the same card
    within PROBING_WINDOW_S (the large amount is capped at 499.99) -> no probing ladder;
  * a card chosen for a scenario must be clean under NormalGuard (no withdrawal or small
    purchase in the last window) and is kept away from normal traffic from the scenario's
    start until its end plus the longest rule window, so scenario and normal transactions
    never combine into a second, unrecorded match.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterable, Sequence

RAPID_WITHDRAWALS = "rapid_withdrawals"
CLOSED_CARD_ATTEMPTS = "closed_card_attempts"
AMOUNT_PROBING = "amount_probing"
KINDS = (RAPID_WITHDRAWALS, CLOSED_CARD_ATTEMPTS, AMOUNT_PROBING)

RAPID_MIN_COUNT = 4
RAPID_WINDOW_S = 600.0
PROBING_MIN_SMALL = 3
PROBING_SMALL_LT_CENTS = 500  # amount < 5.00
PROBING_LARGE_GE_CENTS = 50_000  # amount >= 500.00
PROBING_WINDOW_S = 900.0
NORMAL_MAX_WITHDRAWALS = 2
# a scenario card stays out of normal traffic until window_end + this
COOLDOWN_S = max(RAPID_WINDOW_S, PROBING_WINDOW_S)
CLOSED_DECLINE_REASON = "card_closed"
# share of each kind among injected scenarios
KIND_WEIGHTS = {RAPID_WITHDRAWALS: 0.4, CLOSED_CARD_ATTEMPTS: 0.3, AMOUNT_PROBING: 0.3}
# longest span of an injected scenario (history timing), used to keep it inside a backfill
MAX_SPAN_S = {RAPID_WITHDRAWALS: 5 * 110.0, CLOSED_CARD_ATTEMPTS: 6 * 3600.0 + 2 * 600.0,
              AMOUNT_PROBING: 4 * 60.0 + 240.0 + 120.0}
MEAN_TXNS = {RAPID_WITHDRAWALS: 5.0, CLOSED_CARD_ATTEMPTS: 2.0, AMOUNT_PROBING: 5.5}


# --------------------------------------------------------------------------------------------
# The rules, as pure functions over one card's transactions (what tests and marts check)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Txn:
    """The fields the rules read."""

    created_at: float
    txn_type: str
    terminal_type: str
    amount_cents: int


def rapid_withdrawal_windows(txns: Iterable[Txn]) -> list[tuple[float, float]]:
    """Maximal runs of >= 4 ATM withdrawals spanning <= 600 s, as (first, last) times."""
    times = sorted(t.created_at for t in txns if t.txn_type == "withdrawal" and t.terminal_type == "ATM")
    out: list[tuple[float, float]] = []
    lo = 0
    for hi in range(len(times)):
        while times[hi] - times[lo] > RAPID_WINDOW_S:
            lo += 1
        if hi - lo + 1 >= RAPID_MIN_COUNT:
            if out and out[-1][0] <= times[lo] <= out[-1][1]:
                out[-1] = (out[-1][0], times[hi])
            else:
                out.append((times[lo], times[hi]))
    return out


def closed_card_attempt_times(txns: Iterable[Txn], closed_at: float | None) -> list[float]:
    """Times of transactions made after the card's closed_at (empty if the card is open)."""
    if closed_at is None:
        return []
    return sorted(t.created_at for t in txns if t.created_at > closed_at)


def probing_windows(txns: Iterable[Txn]) -> list[tuple[float, float]]:
    """(first small, large) pairs: >= 3 purchases < 5.00 then one >= 500.00 within 900 s."""
    purchases = sorted((t for t in txns if t.txn_type == "purchase"), key=lambda t: t.created_at)
    out = []
    for i, big in enumerate(purchases):
        if big.amount_cents < PROBING_LARGE_GE_CENTS:
            continue
        smalls = [t.created_at for t in purchases[:i]
                  if t.amount_cents < PROBING_SMALL_LT_CENTS and t.created_at < big.created_at
                  and big.created_at - t.created_at <= PROBING_WINDOW_S]
        if len(smalls) >= PROBING_MIN_SMALL:
            out.append((min(smalls), big.created_at))
    return out


# --------------------------------------------------------------------------------------------
# Normal-traffic guard
# --------------------------------------------------------------------------------------------
class NormalGuard:
    """Per-card memory of recent withdrawals and small purchases, for normal traffic only.

    Times must be fed in non-decreasing order per card (both modes generate in time order).
    """

    __slots__ = ("withdrawals", "last_small")

    def __init__(self) -> None:
        self.withdrawals: dict[int, list[float]] = {}
        self.last_small: dict[int, float] = {}

    def allow_withdrawal(self, card_id: int, at: float) -> bool:
        recent = self.withdrawals.get(card_id)
        if not recent:
            return True
        horizon = at - RAPID_WINDOW_S
        kept = [t for t in recent if t >= horizon]
        if len(kept) != len(recent):
            self.withdrawals[card_id] = kept
        return len(kept) < NORMAL_MAX_WITHDRAWALS

    def note_withdrawal(self, card_id: int, at: float) -> None:
        self.withdrawals.setdefault(card_id, []).append(at)

    def cap_purchase(self, card_id: int, at: float, cents: int) -> int:
        """The amount normal traffic may charge: large amounts are capped after a small one."""
        if cents >= PROBING_LARGE_GE_CENTS:
            small = self.last_small.get(card_id)
            if small is not None and at - small <= PROBING_WINDOW_S:
                return PROBING_LARGE_GE_CENTS - 1
        elif cents < PROBING_SMALL_LT_CENTS:
            self.last_small[card_id] = at
        return cents

    def is_clean(self, card_id: int, at: float) -> bool:
        """No withdrawal within RAPID_WINDOW_S and no small purchase within PROBING_WINDOW_S."""
        small = self.last_small.get(card_id)
        if small is not None and at - small <= PROBING_WINDOW_S:
            return False
        return not any(at - t <= RAPID_WINDOW_S for t in self.withdrawals.get(card_id, ()))

    def prune(self, at: float) -> None:
        """Forget what no rule window can reach any more (bounded memory)."""
        self.last_small = {c: t for c, t in self.last_small.items() if at - t <= PROBING_WINDOW_S}
        self.withdrawals = {c: ts for c, ts in self.withdrawals.items() if ts and at - ts[-1] <= RAPID_WINDOW_S}


# --------------------------------------------------------------------------------------------
# Injection plans
# --------------------------------------------------------------------------------------------
@dataclass
class Step:
    """One thing a scenario does at time `at`: close its card, or make a transaction."""

    at: float
    action: str  # 'close' | 'txn'
    terminal_type: str = ""
    txn_type: str = ""
    amount_cents: int = 0
    status: str = "approved"
    decline_reason: str | None = None
    terminal_slot: int = 0  # steps with the same slot use the same terminal


@dataclass
class Plan:
    kind: str
    card_id: int
    steps: list[Step]
    params: dict = field(default_factory=dict)


def _gaps(rng: random.Random, n: int, lo: float, hi: float, start: float) -> list[float]:
    out, t = [], start
    for _ in range(n):
        out.append(t)
        t += rng.uniform(lo, hi)
    return out


def plan_rapid_withdrawals(rng: random.Random, card_id: int, start: float, compressed: bool) -> Plan:
    n = rng.randint(RAPID_MIN_COUNT, 6)
    lo, hi = (0.5, 3.0) if compressed else (20.0, 110.0)
    times = _gaps(rng, n, lo, hi, start)
    two_atms = rng.random() < 0.3
    steps = []
    for i, at in enumerate(times):
        last = i == n - 1
        declined = last and rng.random() < 0.4
        steps.append(Step(at, "txn", "ATM", "withdrawal", rng.choice((100, 200, 250, 300, 400)) * 100,
                          "declined" if declined else "approved", "limit_exceeded" if declined else None,
                          terminal_slot=(i % 2) if two_atms else 0))
    return Plan(RAPID_WITHDRAWALS, card_id, steps, {"withdrawals": n, "rule_min_count": RAPID_MIN_COUNT,
                                                    "rule_window_s": RAPID_WINDOW_S})


def plan_closed_card_attempts(rng: random.Random, card_id: int, start: float, compressed: bool,
                              close_card: bool, closed_at: float | None) -> Plan:
    steps: list[Step] = []
    if close_card:
        steps.append(Step(start, "close"))
        closed_at = start
        first = start + (rng.uniform(2.0, 8.0) if compressed else rng.uniform(600.0, 6 * 3600.0))
    else:
        first = start
    n = rng.randint(1, 3)
    lo, hi = (1.0, 3.0) if compressed else (30.0, 600.0)
    for at in _gaps(rng, n, lo, hi, first):
        ttype = rng.choices(("ONLINE", "POS", "ATM"), (60, 25, 15))[0]
        if ttype == "ATM":
            txn_type, cents = "withdrawal", rng.choice((50, 100, 200)) * 100
        else:
            txn_type, cents = "purchase", rng.randint(1500, 90000)
        steps.append(Step(at, "txn", ttype, txn_type, cents, "declined", CLOSED_DECLINE_REASON,
                          terminal_slot=len(steps)))
    return Plan(CLOSED_CARD_ATTEMPTS, card_id, steps,
                {"attempts": n, "closed_by_scenario": close_card, "closed_at": closed_at})


def plan_amount_probing(rng: random.Random, card_id: int, start: float, compressed: bool) -> Plan:
    n_small = rng.randint(PROBING_MIN_SMALL, 5)
    n_large = rng.randint(1, 2)
    lo, hi = (0.5, 2.0) if compressed else (15.0, 60.0)
    times = _gaps(rng, n_small, lo, hi, start)
    steps = [Step(at, "txn", "ONLINE", "purchase", rng.randint(50, PROBING_SMALL_LT_CENTS - 1)) for at in times]
    t = times[-1] + (rng.uniform(1.0, 4.0) if compressed else rng.uniform(30.0, 240.0))
    for _ in range(n_large):
        declined = rng.random() < 0.4
        steps.append(Step(t, "txn", "ONLINE", "purchase", rng.randint(PROBING_LARGE_GE_CENTS, 250_000),
                          "declined" if declined else "approved", "suspected_fraud" if declined else None))
        t += rng.uniform(1.0, 3.0) if compressed else rng.uniform(10.0, 120.0)
    return Plan(AMOUNT_PROBING, card_id, steps, {"small": n_small, "large": n_large,
                                                 "rule_window_s": PROBING_WINDOW_S})


def choose_kind(rng: random.Random) -> str:
    return rng.choices(KINDS, [KIND_WEIGHTS[k] for k in KINDS])[0]


def mean_txns_per_scenario() -> float:
    return sum(KIND_WEIGHTS[k] * MEAN_TXNS[k] for k in KINDS)


def window_of(times: Sequence[float]) -> tuple[float, float]:
    return min(times), max(times)
