"""The scheduler's dbt warm-up (bankcdc_ops.dbt_build.warm_up): a real `dbt parse` of the project,
no database, nothing kept."""

from __future__ import annotations

from pathlib import Path

from dbt_common.dataclass_schema import dbtClassMixin

from bankcdc_ops.dbt_build import WarmTarget, profile_variables, warm_up


def test_warm_up_parses_the_project_and_keeps_nothing(tmp_path: Path) -> None:
    state = tmp_path / "dbt-state"
    state.mkdir()
    (state / "partial_parse.msgpack").write_bytes(b"not a parse state")   # a seed dbt cannot use

    assert warm_up(profile_variables("localhost", 8123, "transformer", "unused"), WarmTarget(state))

    assert (state / "partial_parse.msgpack").read_bytes() == b"not a parse state"
    assert sorted(p.name for p in state.iterdir()) == ["partial_parse.msgpack", "runs"]
    assert not any((state / "runs").iterdir())
    # what the forked task processes inherit: e.g. the JSON schemas dbt validates configs with
    assert dbtClassMixin.json_schema.cache_info().currsize > 0
