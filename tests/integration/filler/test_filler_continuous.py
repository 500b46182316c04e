"""Issue 4: continuous mode writes every kind of change, survives a lost connection, and stops
cleanly on SIGTERM with complete batches and complete ground truth."""

from __future__ import annotations

import json
import signal
import time

import pytest

from . import checks

pytestmark = pytest.mark.integration

RUN_ARGS = ("run", "--rate", "1500", "--seed", "11", "--fraud-share", "0.05", "--card-close-rate", "40",
            "--account-close-rate", "20", "--customer-close-rate", "10", "--terminal-close-rate", "20",
            "--delete-rate", "60", "--new-customer-rate", "40")


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def ran(make_filler_db):
    """One continuous run: killed connection mid-run, then SIGTERM; returns (db, rc, stderr)."""
    db = make_filler_db("continuous")
    proc = db.popen(*RUN_ARGS)
    try:
        txns = lambda: db.scalar('SELECT count(*) FROM bank."transaction"')  # noqa: E731
        _wait_for(lambda: txns() > 3000, 60, "the first transactions")
        # drop the filler's connection under it (what a PostgreSQL restart does to a client)
        killed = db.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = %s AND usename = %s", (db.name, db.role))
        assert killed >= 1
        before = txns()
        _wait_for(lambda: txns() > before + 3000, 60, "writes after the reconnect")
        time.sleep(3)  # let scenarios be in flight, status changes come due
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return db, proc.returncode, stderr


def test_sigterm_exits_zero_and_logs_progress(ran) -> None:
    _, rc, stderr = ran
    assert rc == 0, stderr
    assert "SIGTERM received" in stderr
    assert "tx/s" in stderr and "total" in stderr
    assert "reconnect" in stderr.lower(), stderr


def test_no_half_batch_after_sigterm(ran) -> None:
    db, _, _ = ran
    info = checks.check_batches_complete(db)
    assert info["transactions"] > 6000


def test_every_kind_of_change_was_written(ran) -> None:
    db, _, _ = ran
    totals = db.query("""SELECT sum(customers), sum(cards), sum(terminals), sum(transactions), sum(status_updates),
                                sum(activations), sum(closes), sum(deleted_cards + deleted_terminals + deleted_transactions)
                         FROM fraud_truth.filler_batch""")[0]
    names = ("customers", "cards", "terminals", "transactions", "status_updates", "activations", "closes", "deletes")
    assert all(v and v > 0 for v in totals), dict(zip(names, totals))
    # status changes really moved earlier transactions on, stamped after their creation
    assert db.scalar("""SELECT count(*) FROM bank."transaction"
                        WHERE status IN ('approved', 'declined') AND updated_at > created_at + interval '900 ms'
                          AND coalesce(approved_at, declined_at) = updated_at""") > 0
    assert db.scalar("""SELECT count(*) FROM bank."transaction" WHERE status = 'reversed'
                        AND reversed_at > created_at""") > 0
    for table in ("customer", "account", "card", "terminal"):
        assert db.scalar(f"SELECT count(*) FROM bank.{table} WHERE status = 'closed' AND closed_at IS NOT NULL") > 0, table
    # transactions carry the real current time
    assert db.scalar("""SELECT abs(extract(epoch FROM max(created_at) - now())) < 120 FROM bank."transaction" """)


def test_continuous_scenarios_are_compressed_complete_and_exclusive(ran) -> None:
    db, _, _ = ran
    data = checks.load(db)
    counts = checks.check_scenarios_match_truth(data)
    assert set(counts) == {"rapid_withdrawals", "closed_card_attempts", "amount_probing"}, counts
    checks.check_no_accidental_matches(data)
    # windows are squeezed into real time (seconds, not minutes)
    assert db.scalar("""SELECT max(window_end - window_start) < interval '60 seconds' FROM fraud_truth.scenario
                        WHERE kind <> 'closed_card_attempts'""")


def test_status_command_counts_rows(ran) -> None:
    db, _, _ = ran
    result = db.filler("status", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["rows"]["transaction"] == db.scalar('SELECT count(*) FROM bank."transaction"')
    assert info["rows"]["card"] == db.scalar("SELECT count(*) FROM bank.card")
    assert sum(v["scenarios"] for v in info["scenarios"].values()) == db.scalar("SELECT count(*) FROM fraud_truth.scenario")
    text = db.filler("status")
    assert text.returncode == 0 and "rapid_withdrawals" in text.stdout and "transaction" in text.stdout


def test_restart_continues_without_accidental_matches(ran) -> None:
    """A second run on the same database resumes pending transactions and keeps precision."""
    db, _, _ = ran
    pending_before = db.scalar("""SELECT count(*) FROM bank."transaction" WHERE status = 'pending'""")
    result = db.filler("run", "--rate", "1500", "--duration", "4", "--seed", "12", "--fraud-share", "0.05")
    assert result.returncode == 0, result.stderr
    assert "pending" in result.stderr
    if pending_before:
        assert db.scalar("""SELECT count(*) FROM bank."transaction" WHERE status = 'pending'
                            AND created_at < now() - interval '30 seconds'""") < pending_before
    checks.check_batches_complete(db)
    checks.check_no_accidental_matches(checks.load(db))


@pytest.fixture(scope="module")
def config_db(make_filler_db):
    return make_filler_db("config")


@pytest.mark.parametrize("args, env, needle", [
    (("run", "--rate", "0"), {}, "--rate must be between 0.1 and 100000"),
    (("run", "--fraud-share", "0.9"), {}, "--fraud-share must be between 0 and 0.5"),
    (("run", "--duration", "-1"), {}, "--duration must be between 0 and 31536000"),
    (("run", "--card-close-rate", "abc"), {}, "--card-close-rate must be between 0 and 1000"),
    (("backfill", "--backfill-days", "0"), {}, "--backfill-days must be between 1 and 3650"),
    (("backfill", "--txns-per-day", "20000000"), {}, "--txns-per-day must be between 1 and 10000000"),
    (("backfill", "--backfill-end", "yesterday"), {}, "--backfill-end must be an ISO-8601 time"),
    (("run", "--seed", "-5"), {}, "--seed must be between 0 and"),
    (("run",), {"DB_PORT": "70000"}, "DB_PORT (--db-port) must be between 1 and 65535"),
    (("run",), {"DB_SSLMODE": "sometimes"}, "DB_SSLMODE (--db-sslmode) must be one of disable"),
    (("run",), {"FILLER_RATE": "fast"}, "FILLER_RATE (--rate) must be between 0.1 and 100000"),
])
def test_bad_configuration_is_refused_with_the_flag_named(config_db, args, env, needle) -> None:
    db = config_db
    result = db.filler(*args, extra_env=env, timeout=30)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert needle in result.stderr, result.stderr
    assert db.scalar("SELECT count(*) FROM fraud_truth.filler_batch") == 0


def test_unreachable_database_fails_with_exit_1(config_db) -> None:
    db = config_db
    result = db.filler("status", extra_env={"DB_PORT": "1"}, timeout=60)
    assert result.returncode == 1
    assert "cannot connect to PostgreSQL" in result.stderr
