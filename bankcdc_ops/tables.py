"""The five captured source tables, as the backfill and reconciliation see them."""

from __future__ import annotations

from dataclasses import dataclass

from bankcdc_ops.errors import ParamError


@dataclass(frozen=True)
class SourceTable:
    name: str                     # bank.<name> in PostgreSQL, raw.<name> in ClickHouse
    key: str                      # primary key (one bigint column)
    ods_model: str                # ods.<ods_model>: current state, one row per key
    statuses: tuple[str, ...]     # every value of the status column (counted per day)
    amount: str | None = None     # a money column summed per day

    @property
    def pg_relation(self) -> str:
        return f'bank."{self.name}"'

    @property
    def raw_relation(self) -> str:
        return f"raw.`{self.name}`"

    @property
    def ods_relation(self) -> str:
        return f"ods.`{self.ods_model}`"


TABLES: dict[str, SourceTable] = {t.name: t for t in (
    SourceTable("customer", "customer_id", "ods_customers", ("active", "closed")),
    SourceTable("account", "account_id", "ods_accounts", ("active", "frozen", "closed")),
    SourceTable("card", "card_id", "ods_cards", ("inactive", "active", "blocked", "closed")),
    SourceTable("terminal", "terminal_id", "ods_terminals", ("inactive", "active", "closed")),
    SourceTable("transaction", "transaction_id", "ods_transactions",
                ("pending", "approved", "declined", "reversed"), amount="amount"),
)}


def source_table(name: str) -> SourceTable:
    try:
        return TABLES[name]
    except KeyError:
        raise ParamError(f"unknown table {name!r}: choose one of {', '.join(TABLES)}") from None
