"""The dbt project's graph as Airflow renders it: read from a manifest.json, never from dbt.

The manifest is written when the project is installed (`./stack up` runs `dbt parse`; the
production image runs it at build) and refreshed by every dbt_incremental build, so parsing a
DAG file costs one JSON read and no dbt command.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from bankcdc_ops.errors import ParamError
from bankcdc_ops.settings import dbt_project_dir


@dataclass(frozen=True)
class DbtModel:
    name: str
    unique_id: str
    upstream: tuple[str, ...]      # names of the models it reads (ref)
    tests: tuple[str, ...]         # unique_ids of the tests attached to it (run after it by dbt build)
    materialized: str
    description: str
    test_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # test unique_id -> its tags

    def tests_without(self, tags: set[str]) -> tuple[str, ...]:
        """The attached tests a build that excludes `tags` runs."""
        return tuple(t for t in self.tests if not tags & set(self.test_tags.get(t, ())))


@dataclass(frozen=True)
class DbtGraph:
    models: dict[str, DbtModel]    # by name, in dbt's (alphabetical) order

    def model_of_test(self, test_id: str) -> DbtModel | None:
        return next((m for m in self.models.values() if test_id in m.tests), None)


def dbt_state_dir() -> Path:
    """Where the warm dbt artefacts live (manifest.json, partial_parse.msgpack):
    $BANKCDC_DBT_STATE_DIR, else <dbt project>/target."""
    explicit = os.environ.get("BANKCDC_DBT_STATE_DIR", "").strip()
    return Path(explicit) if explicit else dbt_project_dir() / "target"


def manifest_path() -> Path:
    return dbt_state_dir() / "manifest.json"


def load_graph(path: Path | None = None) -> DbtGraph:
    """Models, their upstream models and their attached tests, from the manifest."""
    path = path or manifest_path()
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ParamError(f"no dbt manifest at {path}: run `./stack up` (or `dbt parse` with "
                         "--target-path set to $BANKCDC_DBT_STATE_DIR) to build it") from None
    nodes = manifest["nodes"]
    project = manifest["metadata"].get("project_name")
    tests: dict[str, list[str]] = {}
    tags: dict[str, tuple[str, ...]] = {}
    for node in nodes.values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            tests.setdefault(node["attached_node"], []).append(node["unique_id"])
            tags[node["unique_id"]] = tuple(node.get("tags", ()))
    models = {}
    for unique_id, node in sorted(nodes.items(), key=lambda item: item[1]["name"]):
        if node["resource_type"] != "model" or (project and node["package_name"] != project):
            continue
        upstream = tuple(sorted(nodes[dep]["name"] for dep in node["depends_on"]["nodes"]
                                if dep in nodes and nodes[dep]["resource_type"] == "model"))
        attached = tuple(sorted(tests.get(unique_id, [])))
        models[node["name"]] = DbtModel(node["name"], unique_id, upstream, attached,
                                        node["config"].get("materialized", ""), node.get("description", ""),
                                        {t: tags[t] for t in attached})
    return DbtGraph(models)
