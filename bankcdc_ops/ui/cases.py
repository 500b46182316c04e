"""What the fraud pages show: the cases of the fraud marts, and one case with its evidence.

A case is one row of a fraud mart (one per episode: card and time window). Every query here
runs as the analyst, who reads the marts, the PII-free ODS tables and the masked dimensions.
"""

from __future__ import annotations

from typing import Any

from bankcdc_ops.ui.values import jsonable

SCENARIOS = ("rapid_withdrawals", "closed_card_attempts", "amount_probing")
QUEUE_LIMIT = 200
WINDOW_TRANSACTIONS_LIMIT = 500


def mart(scenario: str) -> str:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
    return f"marts.fraud_{scenario}"


def queue_sql(scenario: str | None) -> str:
    """Cases newest first (by the end of their window), of one scenario or of all."""
    parts = [f"""SELECT detection_id, scenario, card_id, window_start, window_end,
                        length(transaction_ids) AS transactions, ifNull(flag_reason, '') AS flag_reason
                 FROM {mart(s)}""" for s in ([scenario] if scenario else SCENARIOS)]
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY window_end DESC, detection_id LIMIT {QUEUE_LIMIT}"


QUEUE_FIELDS = ("detection_id", "scenario", "card_id", "window_start", "window_end", "transactions", "flag_reason")


def scenario_of(detection_id: str) -> str:
    """The scenario a detection id names (`<scenario>:<card>:<window start>`, the marts' id)."""
    scenario = detection_id.split(":", 1)[0]
    mart(scenario)
    return scenario


def case_sql(scenario: str) -> str:
    return f"""SELECT detection_id, scenario, card_id, window_start, window_end, transaction_ids,
                      ifNull(flag_reason, '') AS flag_reason, built_at
               FROM {mart(scenario)} WHERE detection_id = {{id:String}}
               ORDER BY built_at DESC LIMIT 1"""


CASE_FIELDS = ("detection_id", "scenario", "card_id", "window_start", "window_end", "transaction_ids",
               "flag_reason", "built_at")

CARD_SQL = """SELECT card_id, account_id, pan_last4, pan_token, card_type, status, closed_at
              FROM marts.dim_card_masked WHERE card_id = {card:Int64} LIMIT 1"""
CARD_FIELDS = ("card_id", "account_id", "pan_last4", "pan_token", "card_type", "status", "closed_at")

ACCOUNT_SQL = """SELECT account_id, customer_id, iban_masked, currency, account_type, status
                 FROM marts.dim_account_masked WHERE account_id = {account:Int64} LIMIT 1"""
ACCOUNT_FIELDS = ("account_id", "customer_id", "iban_masked", "currency", "account_type", "status")

# the card's transactions in the case's window, and the case's own evidence wherever it lies
WINDOW_TRANSACTIONS_SQL = f"""
    SELECT t.transaction_id, t.created_at, t.txn_type, t.amount, t.currency, t.status,
           ifNull(t.decline_reason, '') AS decline_reason, t.terminal_id, term.terminal_type,
           term.merchant_name, term.city, has({{ids:Array(Int64)}}, t.transaction_id) AS evidence
    FROM (SELECT * FROM ods.ods_transactions FINAL WHERE NOT is_deleted AND card_id = {{card:Int64}}
          AND (created_at BETWEEN {{start:DateTime64(6, 'UTC')}} AND {{end:DateTime64(6, 'UTC')}}
               OR has({{ids:Array(Int64)}}, transaction_id))) AS t
    LEFT JOIN (SELECT terminal_id, terminal_type, merchant_name, city FROM ods.ods_terminals FINAL) AS term
        ON term.terminal_id = t.terminal_id
    ORDER BY t.created_at, t.transaction_id
    LIMIT {WINDOW_TRANSACTIONS_LIMIT}
"""
TRANSACTION_FIELDS = ("transaction_id", "created_at", "txn_type", "amount", "currency", "status", "decline_reason",
                      "terminal_id", "terminal_type", "merchant_name", "city", "evidence")


def record(fields: tuple[str, ...], row: tuple) -> dict[str, Any]:
    return {name: jsonable(value) for name, value in zip(fields, row)}
