"""The simulated bank's entities held in memory: who exists, which pools they are in, which cards are busy."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from filler import distributions as d
from filler.batch import Batch
from filler.pool import Pool

TERMINAL_TYPES = ("ATM", "POS", "ONLINE")


class BankState:
    """Customers, accounts, cards and terminals, their links, and the cards reserved by scenarios."""

    def __init__(self) -> None:
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
        self._cats = {t: d.categories_for(t) for t in ("POS", "ONLINE")}

    # -- adding entities
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
        """A terminal loaded from the database (its category is looked up from the MCC)."""
        cat = next((i for i, c in enumerate(d.CATEGORIES) if c.mcc == mcc and c.terminal_type == terminal_type), -1)
        if cat < 0 and terminal_type != "ATM":
            cat = d.CATEGORIES.index(self._cats[terminal_type][0][0])
        self.add_new_terminal(terminal_id, terminal_type, cat, currency, status)

    def add_new_terminal(self, terminal_id: int, terminal_type: str, cat: int, currency: str, status: str) -> None:
        """A terminal the simulation made itself (its category index is known)."""
        self.terminal_info[terminal_id] = (terminal_type, cat, currency)
        (self.terminals[terminal_type] if status == "active" else self.inactive_terminals).add(terminal_id)

    def add_closed_card(self, card_id: int, closed_at: float) -> None:
        self.closed_cards.append((card_id, closed_at))

    # -- busy cards (reserved by scenarios)
    def card_is_busy(self, card_id: int, at: float) -> bool:
        return self.busy.get(card_id, -math.inf) > at

    def has_busy_card(self, account_ids: Iterable[int], at: float) -> bool:
        return any(self.card_is_busy(c, at) for a in account_ids for c in self.account_cards.get(a, ()))

    def release_cards(self, now: float) -> None:
        """Forget reservations that ended by `now` (in place: others hold this dict)."""
        for card_id in [c for c, until in self.busy.items() if until <= now]:
            del self.busy[card_id]

    # -- closing entities
    def close_card(self, card_id: int, at: float, batch: Batch) -> None:
        self.active_cards.remove(card_id)
        self.inactive_cards.remove(card_id)
        account = self.card_account.pop(card_id, None)
        if account is not None and card_id in self.account_cards.get(account, ()):
            self.account_cards[account].remove(card_id)
        batch.closes["card"].append((card_id, at))
        self.closed_cards.append((card_id, at))

    def close_account(self, account_id: int, at: float, batch: Batch) -> None:
        """Closes the account and all its cards."""
        for card_id in list(self.account_cards.get(account_id, ())):
            self.close_card(card_id, at, batch)
        self.active_accounts.remove(account_id)
        self.account_cards.pop(account_id, None)
        customer = self.account_customer.pop(account_id, None)
        if customer is not None and account_id in self.customer_accounts.get(customer, ()):
            self.customer_accounts[customer].remove(account_id)
        batch.closes["account"].append((account_id, at))
