"""One `dbt build` per dbt_incremental run, as of one source instant, in the task's own process.

The run's task `dbt_build` chooses the source instant T (bankcdc_ops.source_instant), runs
`dbt build` once with T in the dbt process's environment (macros/cdc.sql), publishes every
model's result with its tests' (XCom `dbt_models`, read by the per-model tasks,
bankcdc_ops.deferred.dbt_model), then appends the build to monitoring.ods_build.

dbt parses warm: each run starts from the partial-parse state of the last run (or of the
install-time `dbt parse`) in a private target directory, so two runs at once never share
artefacts, and hands its manifest and parse state back for the next run and for DAG rendering.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import queue
import resource
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from bankcdc_ops.dbt_manifest import dbt_state_dir, load_graph
from bankcdc_ops.dbt_progress import BuildProgress, ModelResult
from bankcdc_ops.settings import ODS_BUILD_TABLE, dbt_project_dir
from bankcdc_ops.utc import aware_utc


MODELS_XCOM_KEY = "dbt_models"
FULL_SUITE_TAG = "full_suite"
WARM_FILES = ("partial_parse.msgpack", "manifest.json")
SETTING_PREFIX = "BANKCDC_DBT_"


def profile_variables(host: str, port: int | str, user: str, password: str, secure: bool = False,
                      cluster: str = "") -> dict[str, str]:
    """dbt/profiles.yml's variables, every one set explicitly: dbt keeps its partial parse only
    while the profile renders from the same variables, so the install-time `dbt parse` and every
    build must pass exactly these. `cluster` names the replicated cluster ("" for one server)."""
    return {"DBT_TARGET": "dev", "CLICKHOUSE_HOST": host, "CLICKHOUSE_PORT": str(port),
            "CLICKHOUSE_TRANSFORMER_USER": user, "CLICKHOUSE_TRANSFORMER_PASSWORD": password,
            "CLICKHOUSE_SECURE": str(bool(secure)), "CLICKHOUSE_CLUSTER": cluster}


def trust_variables(ca_cert: str) -> dict[str, str]:
    """The dbt process's CA file: dbt-clickhouse 1.10 has no CA option, its HTTPS client verifies
    against OpenSSL's default CA file, which SSL_CERT_FILE names (instead of the system's store).
    Empty when `ca_cert` is. Not a profile variable: partial parsing does not depend on it."""
    return {"SSL_CERT_FILE": ca_cert} if ca_cert else {}


def _stamp(moment: dt.datetime) -> str:
    """A datetime as dbt reads it back: UTC, microseconds (macros/cdc.sql toDateTime64(…, 6, 'UTC'))."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def run_settings(source_upper_bound: dt.datetime | None, loaded_upper_bound: dt.datetime | None,
                 previous_loaded_upper_bound: dt.datetime | None, test_scope: str) -> dict[str, str]:
    """The environment variables macros/cdc.sql and macros/test_scope.sql read while executing."""
    settings = {"TEST_SCOPE": test_scope}
    for name, value in (("SOURCE_UPPER_BOUND", source_upper_bound), ("LOADED_UPPER_BOUND", loaded_upper_bound),
                        ("PREVIOUS_LOADED_UPPER_BOUND", previous_loaded_upper_bound)):
        if value is not None:
            settings[name] = _stamp(value)
    return {SETTING_PREFIX + name: value for name, value in settings.items()}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """dbt's env_var() reads the process environment: set `values` for the invocation only."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


class WarmTarget:
    """A private dbt target directory seeded with the last run's parse state."""

    ABANDONED_AFTER_S = 3600   # a run's directory left by a killed task

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir or dbt_state_dir()

    def open(self, label: str) -> Path:
        runs = self.state_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        for old in runs.iterdir():
            if time.time() - old.stat().st_mtime > self.ABANDONED_AFTER_S:
                shutil.rmtree(old, ignore_errors=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=runs))
        seed = self.state_dir / "partial_parse.msgpack"
        if seed.exists():
            shutil.copy2(seed, run_dir / seed.name)
        return run_dir

    def close(self, run_dir: Path, keep_state: bool) -> None:
        """Hand the run's parse state and manifest back (atomically), then remove the run's files."""
        if keep_state:
            for name in WARM_FILES:
                produced = run_dir / name
                if produced.exists():
                    staged = self.state_dir / f".{name}.{run_dir.name}"
                    shutil.copy2(produced, staged)
                    os.replace(staged, self.state_dir / name)
        shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class BuildOutcome:
    ok: bool
    seconds: float
    cpu_seconds: float
    models: dict[str, ModelResult]
    failures: list[str] = field(default_factory=list)
    error: str = ""
    tests_passed: int = 0

    def summary(self) -> str:
        if self.ok:
            return (f"dbt build passed: {len(self.models)} models, {self.tests_passed} tests in {self.seconds:.1f} s "
                    f"({self.cpu_seconds:.1f} CPU s)")
        failed = ", ".join(self.failures) or self.error or "see the dbt output above"
        return f"dbt build failed after {self.seconds:.1f} s: {failed}"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class DbtCommand:
    args: tuple[str, ...]
    excluded_tags: frozenset[str] = frozenset()
    quiet: bool = False              # dbt prints errors only; the caller logs one line per model


# dbt_incremental: every model with its run-scoped tests; dbt_test_suite: every test, whole tables
INCREMENTAL_BUILD = DbtCommand(("build", "--exclude", f"tag:{FULL_SUITE_TAG}"), frozenset({FULL_SUITE_TAG}),
                               quiet=True)
FULL_TEST_SUITE = DbtCommand(("test",))


def _invocation_args(command: DbtCommand, run_dir: Path) -> list[str]:
    """dbt's arguments for `command` on the project, with its artefacts and logs in run_dir."""
    project = str(dbt_project_dir())
    return [*command.args, "--project-dir", project, "--profiles-dir", project, "--target-path", str(run_dir),
            "--log-path", str(run_dir / "logs"), "--no-use-colors", "--no-send-anonymous-usage-stats",
            *(["--quiet"] if command.quiet else [])]


def run_build(command: DbtCommand, env: dict[str, str], publish: Callable[[dict[str, Any]], None],
              label: str, target: WarmTarget | None = None) -> BuildOutcome:
    """`dbt <command>` once, in this process; `publish` then receives every model's result at once.

    Once, not model by model: the model tasks of a run then end together, after one read of the
    published results between them (bankcdc_ops.deferred.dbt_model)."""
    from dbt.cli.main import dbtRunner

    target = target or WarmTarget()
    run_dir = target.open(label)
    finished: queue.Queue = queue.Queue()
    progress: list[BuildProgress] = []   # made at the first finished node, from this run's manifest

    def on_event(event: Any) -> None:
        if event.info.name == "NodeFinished":
            node = event.data.node_info
            result = event.data.run_result
            finished.put((node.unique_id, node.node_status, result.message, result.execution_time))

    def tracker() -> BuildProgress:
        if not progress:
            # dbt writes the run's manifest after parsing, before any node runs; the warm one
            # is older when the project changed since the last run
            manifest = run_dir / "manifest.json"
            graph = load_graph(manifest if manifest.exists() else target.state_dir / "manifest.json")
            progress.append(BuildProgress(graph, command.excluded_tags))
        return progress[0]

    def collector() -> None:
        while (item := finished.get()) is not None:
            tracker().node_finished(*item)

    args = _invocation_args(command, run_dir)
    thread = threading.Thread(target=collector, name="dbt-progress", daemon=True)
    thread.start()
    started, cpu = time.monotonic(), _cpu_seconds()
    ok, error = False, ""
    try:
        with _environment(env):
            result = dbtRunner(callbacks=[on_event]).invoke(args)
        ok = bool(result.success)
        if result.exception is not None:
            error = f"{type(result.exception).__name__}: {result.exception}"
        finished.put(None)
        thread.join()
        tracker().finish()
        publish({name: r.as_dict() for name, r in tracker().final.items()})
    finally:
        finished.put(None)
        target.close(run_dir, keep_state=ok or not error)
    return BuildOutcome(ok, time.monotonic() - started, _cpu_seconds() - cpu, dict(tracker().final),
                        tracker().failures(), error, tracker().tests_passed())


def warm_up(env: dict[str, str], target: WarmTarget | None = None) -> bool:
    """`dbt parse` in this process from the warm parse state; nothing it writes is kept.

    dbt's first invocation in a process fills caches its later ones reuse: the (de)serializers of
    its manifest classes, their JSON schemas, compiled templates. In a fresh task process that
    was 2 to 3 s of every build before its first model, 4 to 5 s under load. Run in the scheduler
    before the executor forks its workers (bankcdc_ops.executor), it lets every task process
    inherit them. Returns whether dbt parsed the project; raises what dbt raised."""
    from dbt.cli.main import dbtRunner

    target = target or WarmTarget()
    run_dir = target.open("warm-up")
    try:
        with _environment(env):
            result = dbtRunner().invoke(_invocation_args(DbtCommand(("parse",), quiet=True), run_dir))
    finally:
        target.close(run_dir, keep_state=False)
    if result.exception is not None:
        raise result.exception
    return bool(result.success)


# -- monitoring.ods_build ------------------------------------------------------------------------

@dataclass(frozen=True)
class PreviousBuild:
    source_upper_bound: dt.datetime | None
    loaded_upper_bound: dt.datetime | None


def previous_build(ch: Any) -> PreviousBuild:
    """The latest successful build's source instant and load bound (None before the first)."""
    count, source, loaded = ch.query(
        f"SELECT count(), max(source_instant), argMax(loaded_upper_bound, finished_at) FROM {ODS_BUILD_TABLE} "
        "WHERE status = 'success' AND source_instant > toDateTime64(0, 6, 'UTC')").result_rows[0]
    if not count:
        return PreviousBuild(None, None)
    return PreviousBuild(aware_utc(source), aware_utc(loaded))


BUILD_COLUMNS = ["finished_at", "started_at", "dag_run_id", "models", "status", "failed", "source_instant",
                 "loaded_upper_bound", "dbt_seconds", "cpu_seconds", "task_cpu_seconds"]


def record_build(ch: Any, dag_run_id: str, started_at: dt.datetime, outcome: BuildOutcome,
                 source_upper_bound: dt.datetime, loaded_upper_bound: dt.datetime) -> None:
    """Append one build (successful or not) to monitoring.ods_build. cpu_seconds is dbt's own work;
    task_cpu_seconds the whole task process so far (interpreter, Airflow's task runner, the DAG
    file, the source instant, dbt)."""
    built = sorted(name for name, r in outcome.models.items() if r.status == "success")
    ch.insert(ODS_BUILD_TABLE, [[dt.datetime.now(dt.timezone.utc), started_at, dag_run_id, built,
                                 "success" if outcome.ok else "failed", outcome.failures,
                                 source_upper_bound, loaded_upper_bound, outcome.seconds, outcome.cpu_seconds,
                                 _cpu_seconds()]],
              column_names=BUILD_COLUMNS)
