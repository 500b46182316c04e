"""The cluster DDL is rendered from clickhouse_init/, the single-node DDL: same statements, each
placed on the cluster, MergeTree engines made Replicated with the server's macros."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bankcdc_stack.clickhouse_ddl import (
    INIT_DIR, REPLICA_NAME, REPLICA_PATH, DdlError, client_kwargs_from_env, folder_statements, main, render,
    statements,
)

SINGLE = list(folder_statements(INIT_DIR))
CLUSTER = list(folder_statements(INIT_DIR, "bank"))
ON_CLUSTER = " ON CLUSTER 'bank'"
ENGINE = re.compile(r"ENGINE = (\w+)(\([^()]*\))?")


def test_single_node_ddl_is_the_files_as_written():
    written = [s for path in sorted(INIT_DIR.glob("*.sql")) for s in statements(path.read_text())]
    assert SINGLE == written and len(SINGLE) > 40


def test_every_statement_is_placed_on_the_cluster_after_its_name():
    assert len(CLUSTER) == len(SINGLE)
    for single, clustered in zip(SINGLE, CLUSTER, strict=True):
        name = re.match(r"(CREATE DATABASE IF NOT EXISTS \w+|CREATE TABLE IF NOT EXISTS \w+\.\w+|ALTER TABLE \w+\.\w+)",
                        single)
        assert name, single
        assert clustered.startswith(name.group(1) + ON_CLUSTER), clustered
        assert clustered.count("ON CLUSTER") == 1


def test_every_table_replicates_with_the_servers_macros_and_keeps_its_engine_family():
    tables = [(s, c) for s, c in zip(SINGLE, CLUSTER, strict=True) if s.startswith("CREATE TABLE")]
    assert {re.search(r"EXISTS (\w+\.\w+)", s).group(1) for s, _ in tables} >= {
        "raw.customer", "raw.account", "raw.card", "raw.terminal", "raw.transaction", "raw.heartbeat",
        "raw._dead_letter", "monitoring.cdc_lag", "monitoring.ods_build"}
    for single, clustered in tables:
        family = ENGINE.search(single).group(1)
        engine = ENGINE.search(clustered)
        assert engine.group(1) == f"Replicated{family}", clustered
        assert engine.group(2).startswith(f"('{REPLICA_PATH}', '{REPLICA_NAME}'")
        # everything but the name line and the engine is the single-node text
        assert ENGINE.sub("", clustered.replace(ON_CLUSTER, "", 1)).replace("replicated_dedup", "non_replicated_dedup") \
            == ENGINE.sub("", single)


def test_the_consumers_dedup_window_becomes_the_replicated_one():
    raw_tables = [c for c in CLUSTER if c.startswith("CREATE TABLE IF NOT EXISTS raw.") and "_dead_letter" not in c]
    assert raw_tables
    for clustered in raw_tables:
        assert "SETTINGS replicated_deduplication_window = 1000" in clustered
    assert not any("non_replicated" in c for c in CLUSTER)


def test_the_macros_name_the_shard_the_replica_and_the_tables_uuid():
    assert {"{shard}", "{uuid}"} <= set(re.findall(r"\{\w+\}", REPLICA_PATH))
    assert REPLICA_NAME == "{replica}"


def test_engine_arguments_follow_the_replication_arguments():
    ddl = "CREATE TABLE IF NOT EXISTS ods.t\n(\n    id Int64, v UInt64, d UInt8\n)\nENGINE = ReplacingMergeTree(v, d)\nORDER BY id"
    assert f"ENGINE = ReplicatedReplacingMergeTree('{REPLICA_PATH}', '{REPLICA_NAME}', v, d)" in render(ddl, "c1")
    assert render(ddl, None) == ddl


@pytest.mark.parametrize("ddl, reason", [
    ("CREATE VIEW IF NOT EXISTS raw.v AS SELECT 1", "only CREATE DATABASE, CREATE TABLE and ALTER TABLE"),
    ("CREATE TABLE IF NOT EXISTS raw.m\n(\n    x Int8\n)\nENGINE = Memory", "one MergeTree-family engine"),
    ("CREATE TABLE IF NOT EXISTS raw.r\n(\n    x Int8\n)\nENGINE = ReplicatedMergeTree\nORDER BY x",
     "write the single-node engine"),
])
def test_a_statement_that_cannot_replicate_is_refused_not_applied_as_written(tmp_path: Path, ddl: str, reason: str):
    (tmp_path / "40_extra.sql").write_text(f"-- a new file\n{ddl};\n")
    with pytest.raises(DdlError, match=re.escape(reason)) as raised:
        list(folder_statements(tmp_path, "bank"))
    assert "40_extra.sql" in str(raised.value)
    assert list(folder_statements(tmp_path)) == [ddl]


def test_a_bad_cluster_name_is_refused():
    with pytest.raises(DdlError, match="cluster name"):
        render("CREATE DATABASE IF NOT EXISTS raw", "bank'; DROP")


def test_render_prints_the_cluster_ddl(capsys: pytest.CaptureFixture[str]):
    assert main(["render", "--cluster", "bank"], env={}) == 0
    printed = capsys.readouterr().out
    assert printed.count("ON CLUSTER 'bank'") == len(CLUSTER)
    assert "ReplicatedReplacingMergeTree" in printed


@pytest.mark.parametrize("env, setting", [
    ({"CLICKHOUSE_PORT": "http", "CLICKHOUSE_PASSWORD": "x"}, "CLICKHOUSE_PORT"),
    ({"CLICKHOUSE_SECURE": "maybe", "CLICKHOUSE_PASSWORD": "x"}, "CLICKHOUSE_SECURE"),
    ({}, "CLICKHOUSE_PASSWORD"),
])
def test_apply_names_a_bad_setting_and_exits_2(capsys: pytest.CaptureFixture[str], env: dict[str, str], setting: str):
    assert main(["apply", "--cluster", "bank"], env=env) == 2
    assert setting in capsys.readouterr().err


def test_client_settings_verify_https_against_the_given_ca():
    kwargs = client_kwargs_from_env({"CLICKHOUSE_HOST": "clickhouse", "CLICKHOUSE_PORT": "8443",
                                     "CLICKHOUSE_SECURE": "true", "CLICKHOUSE_CA_CERT": "/certs/ca.crt",
                                     "CLICKHOUSE_PASSWORD": "pw"})
    assert kwargs == {"host": "clickhouse", "port": 8443, "username": "default", "password": "pw", "secure": True,
                      "ca_cert": "/certs/ca.crt"}
