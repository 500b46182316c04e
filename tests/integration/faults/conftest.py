"""Fixtures of the fault suite: the load profile (`--heavy` for the benchmark run), clients, the report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from bankcdc_stack.stack import Stack

from bankcdc_stack.airflow_api import AirflowApi

from .recovery import HEAVY, LIGHT, FaultReport, LoadProfile, unwell_parts


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> LoadProfile:
    return HEAVY if request.config.getoption("--heavy") else LIGHT


@pytest.fixture(scope="session")
def fault_report(stack: Stack, profile: LoadProfile) -> FaultReport:
    default = Path(stack.ctx.env["BANKCDC_STATE_DIR"]) / "fault-report.json"
    return FaultReport(Path(os.environ.get("BANKCDC_FAULT_REPORT", default)), profile)


@pytest.fixture(autouse=True)
def heal_stack_after(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fault test that fails midway may leave a part down; start what is missing so the
    failure stays in that test instead of cascading into every test after it."""
    yield
    if "stack" in request.fixturenames:
        stack: Stack = request.getfixturevalue("stack")
        if unwell := unwell_parts(stack):
            stack.up(list(unwell))


@pytest.fixture
def airflow_api(stack: Stack) -> AirflowApi:
    env = stack.ctx.env
    return AirflowApi.for_stack(env, stack.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"])
