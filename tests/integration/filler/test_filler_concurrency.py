"""Issue 18: fillers beside each other, and a backfill into a populated bank.

Two fillers at once, each its own shard (--shard 0/2, 1/2), both run to the end; their scenarios
still match the rules exactly and nothing matches by accident (each uses only its own customers'
cards, and only shard 0 changes terminals). Two fillers without shards no longer crash: a
status change the other filler already made is void instead of an invalid transition. A backfill
into a bank another run populated works, and a batch PostgreSQL refuses is named by constraint,
table and row.
"""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from filler.batch import Batch
from filler.config import DbSettings
from filler.db import Database, IdReserve
from filler.writer import describe_refusal

from . import checks

pytestmark = pytest.mark.integration
ARGS = ("run", "--rate", "300", "--duration", "25", "--fraud-share", "0.05", "--card-close-rate", "30",
        "--delete-rate", "30", "--new-customer-rate", "40")


def _run_two(db, first: tuple[str, ...], second: tuple[str, ...]) -> list[tuple[int, str]]:
    procs = [db.popen(*ARGS, *first), db.popen(*ARGS, *second)]
    return [(proc.wait(timeout=180), proc.communicate()[1]) for proc in procs]


def test_two_sharded_fillers_at_once_keep_the_ground_truth_exact(make_filler_db) -> None:
    db = make_filler_db("shards")
    seeded = db.filler("backfill", "--backfill-days", "1", "--txns-per-day", "2000", "--seed", "3", timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    results = _run_two(db, ("--shard", "0/2", "--seed", "5"), ("--shard", "1/2", "--seed", "6"))
    for code, stderr in results:
        assert code == 0, stderr[-3000:]
        assert "shard " in stderr
    data = checks.load(db)
    counts = checks.check_scenarios_match_truth(data)
    assert sum(counts.values()) > 0, counts
    checks.check_no_accidental_matches(data)
    checks.check_batches_complete(db)
    new_customers = db.query("SELECT customer_id % 2, count(*) FROM bank.customer "
                             "WHERE created_at > now() - interval '2 minutes' GROUP BY 1 ORDER BY 1")
    assert [shard for shard, _ in new_customers] == [0, 1], "each shard made customers of its own ids"


def test_two_fillers_without_shards_do_not_crash_on_each_others_changes(make_filler_db) -> None:
    db = make_filler_db("twins")
    seeded = db.filler("backfill", "--backfill-days", "1", "--txns-per-day", "2000", "--seed", "4", timeout=300)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    for code, stderr in _run_two(db, ("--seed", "7"), ("--seed", "8")):
        assert code == 0, stderr[-3000:]
        assert "invalid status transition" not in stderr
    checks.check_batches_complete(db)


def test_a_backfill_into_a_populated_bank_keeps_every_constraint(make_filler_db) -> None:
    db = make_filler_db("populated")
    first = db.filler("run", "--rate", "300", "--duration", "10", "--new-customer-rate", "200", timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    before = db.scalar('SELECT count(*) FROM bank."transaction"')
    history = db.filler("backfill", "--backfill-days", "1", "--txns-per-day", "20000", timeout=600)
    assert history.returncode == 0, history.stderr[-3000:]
    assert db.scalar('SELECT count(*) FROM bank."transaction"') >= before + 15000
    checks.check_batches_complete(db)


def test_a_refused_batch_names_the_constraint_the_table_and_the_row(make_filler_db) -> None:
    db = make_filler_db("refused")
    conn = db.admin()
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.IntegrityError) as refused:
            cur.execute("INSERT INTO bank.terminal (terminal_type, merchant_name, mcc, city, country, currency, "
                        "status, created_at, updated_at) VALUES ('ATM', 'x', '6011', 'Riga', 'LV', 'EUR', "
                        "'active', now(), now() - interval '1 day')")
    finally:
        conn.close()
    message = describe_refusal(refused.value, Batch("backfill", uuid.uuid4(), 7, batch_id=uuid.uuid4()))
    constraint = refused.value.diag.constraint_name
    assert constraint and f"constraint {constraint} of bank.terminal" in message, message
    assert "Failing row contains" in message and "backfill batch 7" in message and "rolled back whole" in message


def test_id_reserve_draws_a_range_or_the_ids_another_session_left(make_filler_db) -> None:
    db = make_filler_db("ids")
    settings = DbSettings(host=db.env["DB_HOST"], port=int(db.env["DB_PORT"]), name=db.name, user=db.role,
                          password=db.password)
    reserve = IdReserve(Database(settings, max_wait=5.0), block=0)
    reserve.db.connect()
    try:
        reserve.ensure({"scenario": 5})
        assert list(reserve.pools["scenario"]) == [1, 2, 3, 4, 5]
        # a sequence that hands out ids with gaps, as when another session draws at the same time:
        # the pool gets the ids themselves, never the span between them
        admin = db.admin()
        with admin.cursor() as cur:
            cur.execute("ALTER SEQUENCE fraud_truth.scenario_scenario_id_seq INCREMENT BY 3")
        admin.close()
        reserve.ensure({"scenario": 9})
        assert list(reserve.pools["scenario"]) == [1, 2, 3, 4, 5, 8, 11, 14, 17]
    finally:
        reserve.db.close()
