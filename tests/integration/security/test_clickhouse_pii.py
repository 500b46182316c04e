"""Issue 8 on the live stack: ClickHouse roles on the real tables, and what the analyst reads has PII masked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import clickhouse_connect
import psycopg2
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from bankcdc_ops.dbt_cli import run_dbt

pytestmark = pytest.mark.integration
MASKED = ("dim_customer_masked", "dim_account_masked", "dim_card_masked")


def _client(env: dict[str, str], user: str, password_var: str) -> Client:
    return clickhouse_connect.get_client(host=env["CLICKHOUSE_HOST"], port=int(env["CLICKHOUSE_PORT"]),
                                         username=user, password=env[password_var])


@pytest.fixture(scope="module")
def analyst(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The analyst's client, after dbt built the masked dimensions (and the ODS under them) and
    ods_transactions, which the analyst may read."""
    selection = " ".join(f"+{model}" for model in (*MASKED, "ods_transactions"))
    result = run_dbt(["run", "--select", selection], stack_env, Path(tmp_path_factory.mktemp("dbt_pii")))
    assert result.ok, result.tail()
    client = _client(stack_env, "analyst", "CLICKHOUSE_ANALYST_PASSWORD")
    yield client
    client.close()


def _denied(call: Callable[[], object]) -> None:
    with pytest.raises(DatabaseError) as err:
        call()
    assert "Code: 497" in str(err.value) and "Not enough privileges" in str(err.value), str(err.value)


def test_analyst_cannot_read_pii_write_or_drop(analyst: Client) -> None:
    for relation in ("raw.customer", "raw.card", "raw.account", "stg.stg_customers",
                     "ods.ods_customers", "ods.ods_cards", "ods.ods_accounts"):
        _denied(lambda: analyst.query(f"SELECT * FROM {relation} LIMIT 1"))
    _denied(lambda: analyst.query("SELECT c.kyc_notes FROM marts.dim_card_masked AS d "
                                  "JOIN ods.ods_customers AS c ON c.customer_id = d.account_id"))
    _denied(lambda: analyst.command("INSERT INTO marts.dim_card_masked (card_id) VALUES (1)"))
    _denied(lambda: analyst.command("DROP TABLE marts.dim_card_masked"))
    _denied(lambda: analyst.command("ALTER TABLE marts.dim_customer_masked DELETE WHERE 1"))
    _denied(lambda: analyst.command("TRUNCATE TABLE marts.fraud_rapid_withdrawals"))
    assert analyst.query("SELECT count() FROM ods.ods_transactions").result_rows[0][0] > 0


def test_masked_dimensions_hide_pii_and_keep_keys(analyst: Client, pg_admin_dsn: str) -> None:
    with psycopg2.connect(pg_admin_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT customer_id, full_name, email, phone, national_id, national_id_token FROM bank.customer "
                    "ORDER BY customer_id LIMIT 300")
        customers = {row[0]: row[1:] for row in cur.fetchall()}
        cur.execute("SELECT card_id, pan, pan_last4, pan_token FROM bank.card ORDER BY card_id LIMIT 300")
        cards = {row[0]: row[1:] for row in cur.fetchall()}
        cur.execute("SELECT account_id, iban FROM bank.account ORDER BY account_id LIMIT 300")
        accounts = dict(cur.fetchall())
    masked_customers = {row[0]: row[1:] for row in analyst.query(
        "SELECT customer_id, full_name_masked, email_masked, phone_masked, national_id_masked, national_id_token "
        f"FROM marts.dim_customer_masked WHERE customer_id IN {tuple(customers)}").result_rows}
    assert len(masked_customers) >= len(customers) * 0.9, "masked customers missing"
    for customer_id, masked in masked_customers.items():
        name, email, phone, national_id, token = customers[customer_id]
        text = " ".join(masked)
        assert email not in text and phone not in text and national_id not in text
        assert not any(len(word) > 2 and word in text for word in name.split()), (name, masked[0])
        assert masked[1].split("@")[1] == email.split("@")[1]  # the domain stays, the mailbox does not
        assert masked[2][-2:] == phone[-2:] and masked[3][-2:] == national_id[-2:]
        assert masked[4] == token and len(token) == 64, "the national id's keyed token, as PostgreSQL made it"
    masked_cards = analyst.query(
        "SELECT card_id, pan_masked, pan_last4, pan_token FROM marts.dim_card_masked "
        f"WHERE card_id IN {tuple(cards)}").result_rows
    assert masked_cards
    for card_id, pan_masked, last4, pan_token in masked_cards:
        pan, pan_last4, token = cards[card_id]
        assert pan not in pan_masked and pan_masked.endswith(pan_last4) and last4 == pan_last4
        assert pan_token == token and pan not in pan_token
    masked_accounts = analyst.query(
        f"SELECT account_id, iban_masked FROM marts.dim_account_masked WHERE account_id IN {tuple(accounts)}").result_rows
    assert masked_accounts
    for account_id, iban_masked in masked_accounts:
        iban = accounts[account_id]
        assert iban not in iban_masked and iban_masked[:2] == iban[:2] and iban_masked[-4:] == iban[-4:]


def test_loader_cannot_read_models_or_drop(stack_env: dict[str, str]) -> None:
    loader = _client(stack_env, "loader", "CLICKHOUSE_LOADER_PASSWORD")
    try:
        assert loader.query("SELECT count() FROM raw.customer").result_rows[0][0] > 0
        for relation in ("ods.ods_transactions", "marts.dim_customer_masked", "monitoring.cdc_lag"):
            _denied(lambda: loader.query(f"SELECT count() FROM {relation}"))
        _denied(lambda: loader.command("DROP TABLE raw.customer"))
        _denied(lambda: loader.command("TRUNCATE TABLE raw.transaction"))
        _denied(lambda: loader.command("ALTER TABLE raw.card DELETE WHERE 1"))
    finally:
        loader.close()
