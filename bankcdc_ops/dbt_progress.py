"""Per-model results of one `dbt build`, final as soon as a model and the tests attached to it are done.

dbt build runs a model, then its tests, before anything downstream. The dbt_incremental DAG
shows one Airflow task per model; each reports its model's result as the build publishes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bankcdc_ops.dbt_manifest import DbtGraph

MODEL_OK = {"success"}
TEST_OK = {"pass", "warn"}
TERMINAL = {"success", "error", "skipped", "pass", "fail", "warn", "no-op"}


@dataclass
class ModelResult:
    status: str                       # success | failed | skipped
    message: str
    failed_tests: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _NodeResult:
    status: str
    message: str
    seconds: float


class BuildProgress:
    """Feed it dbt's finished nodes; it says which models became final."""

    def __init__(self, graph: DbtGraph, excluded_tags: set[str] | frozenset[str] = frozenset()) -> None:
        self.graph = graph
        self.tests = {name: model.tests_without(set(excluded_tags)) for name, model in graph.models.items()}
        self.nodes: dict[str, _NodeResult] = {}
        self.final: dict[str, ModelResult] = {}

    def node_finished(self, unique_id: str, status: str, message: str, seconds: float) -> list[str]:
        """Record one finished node; returns the models that became final with it."""
        if status not in TERMINAL:
            return []
        self.nodes[unique_id] = _NodeResult(status, message, seconds)
        return [name for name in self.graph.models if name not in self.final and self._settle(name)]

    def _settle(self, name: str) -> bool:
        model = self.graph.models[name]
        own = self.nodes.get(model.unique_id)
        if own is None:
            return False
        if own.status == "skipped":
            self.final[name] = ModelResult("skipped", self._skip_reason(name), seconds=own.seconds)
            return True
        if own.status not in MODEL_OK and own.status != "no-op":
            self.final[name] = ModelResult("failed", f"dbt model {name} failed: {own.message}", seconds=own.seconds)
            return True
        tests = self.tests[name]
        if any(test not in self.nodes for test in tests):
            return False
        failed = sorted(_short(test) for test in tests if self.nodes[test].status not in TEST_OK | {"skipped"})
        skipped = sorted(_short(test) for test in tests if self.nodes[test].status == "skipped")
        if failed:
            details = "; ".join(f"{_short(t)}: {self.nodes[t].message}" for t in tests
                                if self.nodes[t].status not in TEST_OK | {"skipped"})
            self.final[name] = ModelResult("failed", f"tests of {name} failed: {details}", failed, own.seconds)
            return True
        message = f"built in {own.seconds:.1f} s, {len(tests) - len(skipped)} tests passed"
        if skipped:
            # a test that also reads a model that failed: dbt skips it, it says nothing of this model
            message += f", {len(skipped)} skipped because a model they also read failed: {', '.join(skipped)}"
        self.final[name] = ModelResult("success", message, seconds=own.seconds)
        return True

    def finish(self) -> list[str]:
        """The build ended: a model whose own node finished is final with the tests that ran."""
        done = []
        for name, model in self.graph.models.items():
            if name not in self.final and model.unique_id in self.nodes:
                self.tests[name] = tuple(t for t in self.tests[name] if t in self.nodes)
                if self._settle(name):
                    done.append(name)
        return done

    def _skip_reason(self, name: str) -> str:
        failed = [uid for uid, r in self.nodes.items() if r.status in ("error", "fail")]
        upstream = ", ".join(_short(uid) for uid in failed) or "an upstream node"
        return f"dbt skipped {name} because {upstream} failed"

    def tests_passed(self) -> int:
        return sum(1 for uid, r in self.nodes.items() if uid.startswith("test.") and r.status in TEST_OK)

    def failures(self) -> list[str]:
        """Every failed model and test of the build so far, by name."""
        return sorted(_short(uid) for uid, r in self.nodes.items() if r.status in ("error", "fail"))

    def unfinished(self) -> list[str]:
        return [name for name in self.graph.models if name not in self.final]


def _short(unique_id: str) -> str:
    """model.bank_cdc.ods_cards -> ods_cards; test.bank_cdc.unique_x.1a2b -> unique_x."""
    parts = unique_id.split(".")
    return parts[2] if len(parts) > 2 else unique_id
