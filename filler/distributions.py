"""Realistic distributions: merchant categories and their amounts, time of day, declines.

Pure functions of a `random.Random`; amounts are integer cents.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from itertools import accumulate
from dataclasses import dataclass

# terminal mix of the card-transaction stream (ATM / card-present POS / card-not-present ONLINE)
TERMINAL_TYPE_WEIGHTS = {"ATM": 0.14, "POS": 0.58, "ONLINE": 0.28}
# terminal population mix (more POS terminals than ATMs)
TERMINAL_POPULATION_WEIGHTS = {"ATM": 0.15, "POS": 0.6, "ONLINE": 0.25}


@dataclass(frozen=True)
class Category:
    mcc: str
    name: str
    terminal_type: str  # POS or ONLINE (ATM is mcc 6011)
    median: float  # median amount
    sigma: float  # lognormal spread
    weight: float  # share of that terminal type's traffic


CATEGORIES: tuple[Category, ...] = (
    Category("5411", "Grocery", "POS", 38.0, 0.75, 0.26),
    Category("5812", "Restaurant", "POS", 31.0, 0.6, 0.14),
    Category("5814", "Fast food", "POS", 11.0, 0.5, 0.14),
    Category("5541", "Fuel station", "POS", 58.0, 0.4, 0.10),
    Category("5912", "Pharmacy", "POS", 19.0, 0.7, 0.07),
    Category("5651", "Clothing", "POS", 64.0, 0.7, 0.09),
    Category("5732", "Electronics", "POS", 190.0, 0.9, 0.04),
    Category("4111", "Public transport", "POS", 3.8, 0.45, 0.10),
    Category("7011", "Hotel", "POS", 210.0, 0.6, 0.06),
    Category("5999", "Online retail", "ONLINE", 46.0, 0.85, 0.42),
    Category("5815", "Digital media", "ONLINE", 11.0, 0.7, 0.22),
    Category("4511", "Airline", "ONLINE", 290.0, 0.6, 0.10),
    Category("5311", "Marketplace", "ONLINE", 72.0, 0.8, 0.20),
    Category("4121", "Ride hailing", "ONLINE", 17.0, 0.5, 0.06),
)
ATM_MCC = "6011"
WITHDRAWAL_AMOUNTS = (20, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400)
WITHDRAWAL_WEIGHTS = (8, 6, 14, 6, 6, 20, 4, 8, 12, 4, 6, 2)
DEPOSIT_AMOUNTS = tuple(range(50, 2001, 50))

MIN_CENTS = 50  # 0.50: nothing smaller is charged
MAX_CENTS = 2_000_000  # 20,000.00

# relative transaction volume by UTC hour (night trough, lunch and evening peaks)
HOUR_WEIGHTS = (0.6, 0.4, 0.3, 0.25, 0.3, 0.6, 1.4, 2.6, 3.6, 4.0, 4.4, 5.0,
                5.8, 5.6, 4.8, 4.6, 5.0, 5.8, 6.2, 5.6, 4.6, 3.4, 2.2, 1.2)

# declines of normal traffic: ~2.5 % at authorisation ('card_closed' is reserved for fraud)
DECLINE_SHARE = 0.025
DECLINE_REASONS = ("insufficient_funds", "do_not_honor", "limit_exceeded", "incorrect_pin", "expired_card")
DECLINE_WEIGHTS = (45, 20, 15, 12, 8)
# card-not-present purchases wait for 3-D Secure / capture: they are inserted pending
PENDING_SHARE = {"ONLINE": 0.45, "POS": 0.08, "ATM": 0.0}
PENDING_OUTCOMES = ("approved", "declined", "reversed")
PENDING_OUTCOME_WEIGHTS = (90, 6, 4)
REVERSAL_SHARE = 0.01  # approved purchases later reversed (merchant cancels)
REFUND_SHARE = 0.03  # of POS/ONLINE traffic
DEPOSIT_SHARE = 0.08  # of ATM traffic

CURRENCY_BY_COUNTRY = {"DE": "EUR", "FR": "EUR", "NL": "EUR", "ES": "EUR", "IT": "EUR", "AT": "EUR",
                       "GB": "GBP", "CH": "CHF", "US": "USD", "PL": "PLN"}
COUNTRIES = tuple(CURRENCY_BY_COUNTRY)
# the bank is German: most customers and terminals are at home
COUNTRY_WEIGHTS = (70, 5, 4, 4, 3, 4, 3, 2, 3, 2)
POS_ENTRY_MODES = ("contactless", "chip", "magstripe")
POS_ENTRY_WEIGHTS = (70, 28, 2)


def lognormal_cents(rng: random.Random, median: float, sigma: float) -> int:
    cents = int(math.exp(math.log(median * 100.0) + sigma * rng.gauss(0.0, 1.0)))
    return min(max(cents, MIN_CENTS), MAX_CENTS)


def format_cents(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def categories_for(terminal_type: str) -> tuple[list[Category], list[float]]:
    cats = [c for c in CATEGORIES if c.terminal_type == terminal_type]
    return cats, [c.weight for c in cats]


def hour_share(hour: int) -> float:
    return HOUR_WEIGHTS[hour] / sum(HOUR_WEIGHTS)


class Weighted:
    """Fast weighted choice (cumulative weights + bisect), for the per-transaction hot loop."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, items, weights):
        self.items = tuple(items)
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random):
        return self.items[bisect_right(self.cum, rng.random() * self.total)]


WITHDRAWAL = Weighted(WITHDRAWAL_AMOUNTS, WITHDRAWAL_WEIGHTS)
POS_ENTRY = Weighted(POS_ENTRY_MODES, POS_ENTRY_WEIGHTS)
DECLINES = Weighted(DECLINE_REASONS, DECLINE_WEIGHTS)
PENDING_OUTCOME = Weighted(PENDING_OUTCOMES, PENDING_OUTCOME_WEIGHTS)


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count with mean `lam` (normal approximation above 50)."""
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
