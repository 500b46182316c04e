"""Issue 14 on the live stack: no PAN, national id or e-mail leaves PostgreSQL in clear.

Every message of every bank topic and every string column of every table and view in raw, stg,
ods and marts is searched for every PAN, national id and e-mail PostgreSQL holds. The tokens
are checked to be HMAC-SHA-256 under BANK_TOKEN_KEY, and a key rotation to change the tokens
and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bankcdc_ops.dbt_cli import run_dbt
from bankcdc_stack.stack import Stack

from ..cdc_helpers import assert_raw_equals_pg, kafka_client, pg_sql
from ..fraud_score import fraud_scores
from ..ods_compare import ods_mismatches

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
DATABASES = ("raw", "stg", "ods", "marts")
# whole words and e-mail addresses, and every 16-digit window (a PAN inside a longer digit run)
WORDS = re.compile(r"[\w.+-]+@[\w.-]+|[A-Za-z0-9]+")
PAN_WINDOWS = re.compile(r"(?=(\d{16}))")


def _clear_values(pg_admin_dsn: str) -> set[str]:
    """Every PAN, national id and e-mail in PostgreSQL (long enough not to match by chance)."""
    rows = pg_sql(pg_admin_dsn, "SELECT pan FROM bank.card UNION ALL SELECT national_id FROM bank.customer "
                                "UNION ALL SELECT email FROM bank.customer")
    values = {value for (value,) in rows if len(value) >= 8}
    assert len(values) > 1000, "too few source values for the search to mean anything"
    return values


def _found(text: str, clear: set[str]) -> set[str]:
    return {w for w in WORDS.findall(text) if w in clear} | {w for w in PAN_WINDOWS.findall(text) if w in clear}


def _hmac(configured_key: str, value: str) -> str:
    """The token of `value`: HMAC-SHA-256 under the key schema.sql derives from BANK_TOKEN_KEY."""
    key = hmac.new(configured_key.encode(), b"bank-cdc card-data tokens", hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _bank_messages(kafka: dict[str, str]) -> tuple[int, set[str], list[str]]:
    """Read every bank topic from its first offset to its end: (messages read, topics, texts)."""
    consumer = Consumer({**kafka, "group.id": f"pii-scan-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    texts: list[str] = []
    try:
        topics = {name: meta for name, meta in consumer.list_topics(timeout=15).topics.items()
                  if name.startswith("bank.bank.")}
        ends = {}
        for name, meta in topics.items():
            for partition in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=15)
                if high > low:
                    ends[(name, partition)] = high
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in ends])
        read = 0
        while ends:
            for msg in consumer.consume(num_messages=5000, timeout=5):
                if msg.error():
                    continue
                read += 1
                texts.append((msg.key() or b"").decode(errors="replace") + (msg.value() or b"").decode(errors="replace"))
                if msg.offset() + 1 >= ends.get((msg.topic(), msg.partition()), 0):
                    ends.pop((msg.topic(), msg.partition()), None)
    finally:
        consumer.close()
    return read, set(topics), texts


def test_no_bank_topic_message_holds_a_pan_national_id_or_email(stack_env: dict[str, str],
                                                                pg_admin_dsn: str) -> None:
    clear = _clear_values(pg_admin_dsn)
    read, topics, texts = _bank_messages(kafka_client(stack_env))
    assert {"bank.bank.card", "bank.bank.customer"} <= topics and read > 1000, (read, topics)
    leaked = set().union(*(_found(text, clear) for text in texts))
    assert not leaked, f"{len(leaked)} clear values in Kafka, e.g. one of {len(clear)} source values"
    cards = [t for t in texts if '"pan_token"' in t]
    assert cards and all('"pan"' not in t for t in cards), "card events carry pan_token and no pan"


@pytest.fixture(scope="module")
def models_built(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """stg, ODS and the marts exist and hold the data loaded so far (every model, one dbt run)."""
    _run_dbt(stack_env, Path(tmp_path_factory.mktemp("dbt_card_data")))


def test_no_clickhouse_string_holds_a_pan_national_id_or_email(ch: Client, pg_admin_dsn: str,
                                                              models_built: None) -> None:
    clear = _clear_values(pg_admin_dsn)
    columns = ch.query("SELECT database, table, name FROM system.columns WHERE database IN {d:Array(String)} "
                       "AND type LIKE '%String%' ORDER BY 1, 2, 3", parameters={"d": list(DATABASES)}).result_rows
    assert {(d, t) for d, t, _ in columns} >= {("raw", "card"), ("ods", "ods_customers"), ("marts", "dim_card_masked")}
    leaks = {}
    for database, table, column in columns:
        values = ch.query(f"SELECT DISTINCT toString(`{column}`) FROM `{database}`.`{table}` "
                          f"WHERE `{column}` IS NOT NULL").result_rows
        found = set().union(*(_found(v, clear) for (v,) in values)) if values else set()
        if found:
            leaks[f"{database}.{table}.{column}"] = len(found)
    assert leaks == {}, f"clear PAN / national id / e-mail values in ClickHouse: {leaks}"


def test_tokens_are_keyed_hmacs_no_role_can_forge_or_read_the_key(stack: Stack, pg_admin_dsn: str) -> None:
    key = stack.ctx.secrets["BANK_TOKEN_KEY"]
    for pan, token in pg_sql(pg_admin_dsn, "SELECT pan, pan_token FROM bank.card ORDER BY card_id LIMIT 200"):
        assert token == _hmac(key, pan) and token != hashlib.sha256(pan.encode()).hexdigest()
    for nid, token in pg_sql(pg_admin_dsn, "SELECT national_id, national_id_token FROM bank.customer LIMIT 200"):
        assert token == _hmac(key, nid)
    env = stack.ctx.env
    for role, secret in (("bank_filler", "FILLER_DB_PASSWORD"), ("bank_reader", "BANK_READER_DB_PASSWORD"),
                         ("debezium", "DEBEZIUM_DB_PASSWORD")):
        conn = psycopg2.connect(host=env["DB_HOST"], port=env["DB_PORT"], dbname="bank", user=role,
                                password=stack.ctx.secrets[secret], connect_timeout=5)
        try:
            with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT key FROM bank_vault.token_key")
            conn.rollback()
            if role == "bank_reader":
                for column in ("pan", "national_id", "email", "phone", "full_name", "address"):
                    table = "card" if column == "pan" else "customer"
                    with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                        cur.execute(f"SELECT {column} FROM bank.{table} LIMIT 1")
                    conn.rollback()
                with conn.cursor() as cur:
                    cur.execute("SELECT pan_token, pan_last4 FROM bank.card LIMIT 1")
                    assert cur.fetchone() is not None
            if role == "bank_filler":  # a writer's own token is overwritten by the key's
                with conn.cursor() as cur:
                    cur.execute("""INSERT INTO bank.card (account_id, pan, pan_last4, expires_on, card_type, pan_token)
                                   SELECT account_id, '4000999988887777', '7777', '2031-01-01', 'debit', 'forged'
                                   FROM bank.account LIMIT 1 RETURNING pan_token""")
                    assert cur.fetchone()[0] == _hmac(key, "4000999988887777")
                conn.rollback()
        finally:
            conn.close()


def test_a_wrong_or_missing_token_key_is_named(stack: Stack, pg_admin_dsn: str) -> None:
    """`up` with a short or a different BANK_TOKEN_KEY stops and names it; a database with no key refuses
    to store card data, naming it too."""
    for key, message in (("short", "BANK_TOKEN_KEY must be 32 characters or more"),
                         (secrets.token_urlsafe(32), "BANK_TOKEN_KEY differs from the key PostgreSQL tokenises with")):
        result = subprocess.run([sys.executable, "-m", "bankcdc_stack", "up", "postgres"], capture_output=True,
                                text=True, env={**stack.ctx.env, "BANK_TOKEN_KEY": key}, cwd=REPO, timeout=180)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-1500:]
        assert key not in result.stdout + result.stderr
    conn = psycopg2.connect(pg_admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM bank_vault.token_key")
            with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState) as err:
                cur.execute("""INSERT INTO bank.customer (full_name, email, phone, national_id, date_of_birth,
                                                          address, city, country)
                               VALUES ('No Key', 'nokey@example.org', '+4900000', 'NK1234567', '1990-01-01',
                                       'x', 'Berlin', 'DE')""")
        assert "no token key installed" in str(err.value) and "BANK_TOKEN_KEY" in (err.value.diag.message_hint or "")
    finally:
        conn.rollback()  # the key stays
        conn.close()
    assert pg_sql(pg_admin_dsn, "SELECT count(*) FROM bank_vault.token_key") == [(1,)]


def _run_dbt(stack_env: dict[str, str], work: Path) -> None:
    result = run_dbt(["run"], stack_env, work)
    assert result.ok, result.tail()


def test_rotating_the_key_changes_the_tokens_and_nothing_else(stack: Stack, stack_env: dict[str, str],
                                                              pg_admin_dsn: str, ch: Client, tmp_path: Path) -> None:
    postgres = stack.services["postgres"]
    original = stack.ctx.secrets["BANK_TOKEN_KEY"]
    snapshot = "SELECT card_id, pan_token, pan_last4, status, updated_at FROM bank.card ORDER BY card_id"
    people = ("SELECT customer_id, national_id_token, email_masked, status, updated_at FROM bank.customer "
              "ORDER BY customer_id")
    _run_dbt(stack_env, tmp_path / "before")
    scores_before = {kind: s.summary() for kind, s in fraud_scores(pg_admin_dsn, ch).items()}
    cards_before, people_before = pg_sql(pg_admin_dsn, snapshot), pg_sql(pg_admin_dsn, people)
    new_key = secrets.token_urlsafe(32)
    try:
        rows = postgres.rotate_token_key(new_key)
        assert rows == len(cards_before) + len(people_before)
        cards_after, people_after = pg_sql(pg_admin_dsn, snapshot), pg_sql(pg_admin_dsn, people)
        pans = dict(pg_sql(pg_admin_dsn, "SELECT card_id, pan FROM bank.card"))
        # every token changed, to the HMAC under the new key; card_id, last four, status, updated_at did not
        assert [(c[0], *c[2:]) for c in cards_after] == [(c[0], *c[2:]) for c in cards_before]
        assert all(a[1] != b[1] and a[1] == _hmac(new_key, pans[a[0]]) for a, b in zip(cards_after, cards_before))
        assert [(c[0], *c[2:]) for c in people_after] == [(c[0], *c[2:]) for c in people_before]
        assert all(a[1] != b[1] for a, b in zip(people_after, people_before))
        # the new tokens flow through CDC and dbt; ODS equals PostgreSQL, the fraud marts find the same cases
        assert_raw_equals_pg(pg_admin_dsn, ch, tables=("customer", "card"))
        _run_dbt(stack_env, tmp_path / "after")
        assert {t: p for t, p in ods_mismatches(pg_admin_dsn, ch).items() if t in ("customer", "card")} == {}
        assert {kind: s.summary() for kind, s in fraud_scores(pg_admin_dsn, ch).items()} == scores_before
        linked = ch.query("SELECT count(), countIf(d.pan_token = '') FROM marts.fraud_rapid_withdrawals AS f "
                          "LEFT JOIN marts.dim_card_masked AS d ON d.card_id = f.card_id").result_rows[0]
        assert linked[0] > 0 and linked[1] == 0, f"fraud cases without their card's token: {linked}"
    finally:
        postgres.rotate_token_key(original)
        # leave the stack as it was: the original tokens back in raw and ODS for the tests after this one
        assert_raw_equals_pg(pg_admin_dsn, ch, tables=("customer", "card"))
        _run_dbt(stack_env, tmp_path / "restored")
    assert pg_sql(pg_admin_dsn, snapshot)[:50] == cards_before[:50]
