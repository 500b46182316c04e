"""The dbt project run by hand, by tests and by benchmarks: the `dbt` CLI of this interpreter's
environment, with dbt/profiles.yml (connection from environment variables) and a private
target/log directory per caller, so runs at the same time never share dbt's artefacts.
(Airflow runs the same project in its task processes, see bankcdc_ops.dbt.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bankcdc_ops.dbt_build import profile_variables, trust_variables
from bankcdc_ops.errors import ParamError
from bankcdc_ops.settings import dbt_project_dir
from cdc_consumer.config import FLAGS

# the variables dbt/profiles.yml reads, from a stack environment (`./stack env`)
PROFILE_VARS = ("CLICKHOUSE_HOST", "CLICKHOUSE_PORT", "CLICKHOUSE_TRANSFORMER_PASSWORD")


@dataclass(frozen=True)
class DbtResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, chars: int = 4000) -> str:
        return self.stdout[-chars:]


def dbt_executable() -> Path:
    return Path(sys.executable).with_name("dbt")


def dbt_env(stack_env: dict[str, str], work_dir: Path) -> dict[str, str]:
    """Environment for one dbt process: the stack's addresses, its transformer user
    (CLICKHOUSE_TRANSFORMER_USER, default transformer) and password (HTTPS with
    CLICKHOUSE_SECURE, trusting CLICKHOUSE_CA_CERT; the replicated cluster CLICKHOUSE_CLUSTER, if
    any), no telemetry, logs and artefacts under work_dir."""
    missing = [name for name in PROFILE_VARS if not stack_env.get(name)]
    if missing:
        raise KeyError(f"stack environment lacks {', '.join(missing)} (eval \"$(./stack env)\")")
    port = stack_env["CLICKHOUSE_PORT"].strip()
    if not port.isdigit() or not 1 <= int(port) <= 65535:  # dbt/profiles.yml's `| int` would make it 0
        raise ParamError(f"CLICKHOUSE_PORT={port!r} is not a TCP port: set CLICKHOUSE_PORT to ClickHouse's HTTP "
                         "port (1-65535, default 8123) for dbt/profiles.yml")
    secure = stack_env.get("CLICKHOUSE_SECURE", "").strip().lower() or "false"
    if secure not in FLAGS:
        raise ParamError(f"CLICKHOUSE_SECURE={secure!r} is invalid: set it to true (HTTPS) or false (HTTP)")
    env = {**os.environ, **stack_env}
    user = stack_env.get("CLICKHOUSE_TRANSFORMER_USER", "").strip() or "transformer"
    env.update(profile_variables(stack_env["CLICKHOUSE_HOST"], port, user,
                                 stack_env["CLICKHOUSE_TRANSFORMER_PASSWORD"], FLAGS[secure],
                                 stack_env.get("CLICKHOUSE_CLUSTER", "").strip()))
    if FLAGS[secure]:
        env.update(trust_variables(stack_env.get("CLICKHOUSE_CA_CERT", "").strip()))
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DBT_LOG_PATH=str(work_dir / "logs"),
               DBT_TARGET_PATH=str(work_dir / "target"), DBT_USE_COLORS="false")
    return env


def run_dbt(args: list[str], stack_env: dict[str, str], work_dir: Path, timeout: float = 1800,
            project: Path | None = None) -> DbtResult:
    """`dbt <args>` against the project (default: bankcdc_ops.settings.dbt_project_dir()); never
    raises on a dbt failure (see DbtResult.ok)."""
    project = project or dbt_project_dir()
    work_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(dbt_executable()), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    start = time.monotonic()
    out = subprocess.run(cmd, env=dbt_env(stack_env, work_dir), cwd=work_dir, capture_output=True,
                         text=True, timeout=timeout)
    return DbtResult(tuple(args), out.returncode, out.stdout + out.stderr, time.monotonic() - start)


def parse_project(stack_env: dict[str, str], target_dir: Path, timeout: float = 600,
                  project: Path | None = None) -> DbtResult:
    """`dbt parse` into target_dir: the manifest Airflow renders dbt_incremental from, and the
    partial-parse state its first build starts warm from (same profile variables as the build)."""
    return run_dbt(["parse", "--target-path", str(target_dir)], stack_env, target_dir / "parse", timeout=timeout,
                   project=project)
