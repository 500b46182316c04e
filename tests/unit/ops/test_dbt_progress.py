"""Per-model results of one dbt build, and the graph read from a manifest, without services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bankcdc_ops.dbt_manifest import load_graph
from bankcdc_ops.dbt_progress import BuildProgress
from bankcdc_ops.errors import ParamError


def manifest(tmp_path: Path) -> Path:
    def model(name: str, deps: list[str]) -> dict:
        return {"unique_id": f"model.p.{name}", "name": name, "resource_type": "model", "package_name": "p",
                "depends_on": {"nodes": [f"model.p.{d}" for d in deps]}, "config": {"materialized": "view"}}

    def test(name: str, on: str, tags: list[str] | None = None) -> dict:
        return {"unique_id": f"test.p.{name}.abc", "name": name, "resource_type": "test", "package_name": "p",
                "attached_node": f"model.p.{on}", "tags": tags or [], "depends_on": {"nodes": []}, "config": {}}

    nodes = [model("stg", []), model("ods", ["stg"]), model("mart", ["ods"]),
             test("unique_ods_id", "ods"), test("full_mart_check", "mart", ["full_suite"])]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"metadata": {"project_name": "p"}, "nodes": {n["unique_id"]: n for n in nodes}}))
    return path


def test_the_graph_has_models_their_upstream_and_attached_tests(tmp_path: Path) -> None:
    graph = load_graph(manifest(tmp_path))
    assert list(graph.models) == ["mart", "ods", "stg"]
    assert graph.models["ods"].upstream == ("stg",) and graph.models["ods"].tests == ("test.p.unique_ods_id.abc",)
    assert graph.models["mart"].tests_without({"full_suite"}) == ()


def test_a_missing_manifest_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ParamError, match="run `./stack up`"):
        load_graph(tmp_path / "nope.json")


def test_a_model_is_final_once_its_tests_ran_and_failures_name_the_test(tmp_path: Path) -> None:
    progress = BuildProgress(load_graph(manifest(tmp_path)), {"full_suite"})
    assert progress.node_finished("model.p.stg", "success", "", 0.5) == ["stg"]
    assert progress.node_finished("model.p.ods", "success", "", 1.0) == [], "its test has not run yet"
    assert progress.node_finished("test.p.unique_ods_id.abc", "fail", "Got 2 results", 0.1) == ["ods"]
    assert progress.final["ods"].status == "failed"
    assert progress.final["ods"].failed_tests == ["unique_ods_id"]
    assert "unique_ods_id: Got 2 results" in progress.final["ods"].message
    assert progress.node_finished("model.p.mart", "skipped", "", 0.0) == ["mart"]
    assert progress.final["mart"].status == "skipped" and "unique_ods_id failed" in progress.final["mart"].message
    assert progress.failures() == ["unique_ods_id"]


def test_a_test_skipped_for_another_models_failure_does_not_fail_this_model(tmp_path: Path) -> None:
    progress = BuildProgress(load_graph(manifest(tmp_path)))
    progress.node_finished("model.p.ods", "success", "", 1.0)
    progress.node_finished("test.p.unique_ods_id.abc", "skipped", "", 0.0)
    assert progress.final["ods"].status == "success"
    assert "1 skipped because a model they also read failed: unique_ods_id" in progress.final["ods"].message


def test_a_failed_model_is_final_at_once_and_the_end_settles_the_rest(tmp_path: Path) -> None:
    progress = BuildProgress(load_graph(manifest(tmp_path)))
    progress.node_finished("model.p.stg", "error", "Syntax error at position 5", 0.2)
    assert progress.final["stg"].status == "failed" and "Syntax error" in progress.final["stg"].message
    progress.node_finished("model.p.mart", "success", "", 0.3)
    assert "mart" not in progress.final, "waits for full_mart_check when full_suite is not excluded"
    assert progress.finish() == ["mart"] and progress.final["mart"].status == "success"
    assert progress.unfinished() == ["ods"]
