"""A batch: everything one database transaction of the filler writes, plus its counters."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

# transaction row layout (a list, so an inline status decision can fill it in)
TXN_COLUMNS = ("transaction_id", "card_id", "terminal_id", "txn_type", "status", "amount", "currency",
               "card_present", "entry_mode", "decline_reason", "created_at", "approved_at", "declined_at",
               "reversed_at", "updated_at")
T_ID, T_CARD, T_TERMINAL, T_TYPE, T_STATUS, T_CENTS, T_CURRENCY, T_PRESENT, T_MODE, T_REASON, \
    T_CREATED, T_APPROVED, T_DECLINED, T_REVERSED, T_UPDATED = range(15)
ENTITY_TABLES = ("customer", "account", "card", "terminal")


@dataclass
class ScenarioRecord:
    scenario_id: int
    kind: str
    card_id: int
    window_start: float
    window_end: float
    params: dict
    transaction_ids: list[int]


@dataclass
class Batch:
    mode: str  # 'continuous' | 'backfill'
    run_id: uuid.UUID
    seq: int
    batch_id: uuid.UUID = field(default_factory=uuid.uuid4)
    customers: list[tuple] = field(default_factory=list)
    accounts: list[tuple] = field(default_factory=list)
    cards: list[tuple] = field(default_factory=list)
    terminals: list[tuple] = field(default_factory=list)
    transactions: list[list] = field(default_factory=list)
    # (transaction_id, new status, decline_reason, at)
    txn_updates: list[tuple] = field(default_factory=list)
    # table -> [(id, at)]
    activations: dict[str, list[tuple[int, float]]] = field(
        default_factory=lambda: {"card": [], "terminal": []})
    closes: dict[str, list[tuple[int, float]]] = field(
        default_factory=lambda: {t: [] for t in ENTITY_TABLES})
    delete_cards: list[int] = field(default_factory=list)
    delete_terminals: list[int] = field(default_factory=list)
    delete_transactions: list[int] = field(default_factory=list)
    scenarios: list[ScenarioRecord] = field(default_factory=list)
    # COPY text of `transactions`, when rendered ahead of the write (backfill's main thread)
    txn_copy: str | None = None
    # filled in by the writer: rows the guarded DELETEs really removed
    deleted: dict[str, int] = field(default_factory=lambda: {"card": 0, "terminal": 0, "transaction": 0})
    # filled in by the writer: ids the guarded activation UPDATEs really changed
    activated: dict[str, list[int]] = field(default_factory=lambda: {"card": [], "terminal": []})

    def is_empty(self) -> bool:
        return not (self.customers or self.accounts or self.cards or self.terminals or self.transactions
                    or self.txn_updates or any(self.activations.values()) or any(self.closes.values())
                    or self.delete_cards or self.delete_terminals or self.delete_transactions
                    or self.scenarios)

    def counters(self) -> dict[str, int]:
        return {
            "customers": len(self.customers), "accounts": len(self.accounts), "cards": len(self.cards),
            "terminals": len(self.terminals), "transactions": len(self.transactions),
            "status_updates": len(self.txn_updates),
            "activations": sum(len(v) for v in self.activations.values()),
            "closes": sum(len(v) for v in self.closes.values()),
            "deleted_cards": self.deleted["card"], "deleted_terminals": self.deleted["terminal"],
            "deleted_transactions": self.deleted["transaction"], "scenarios": len(self.scenarios),
        }

