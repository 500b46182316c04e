"""Options and run order for every test. Nothing here needs a service, so `pytest tests/unit`
(`./stack test -m "not integration"`) runs without the stack installed or started; the stack's
session fixtures live in tests/integration/conftest.py.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--heavy", action="store_true",
                     help="fault suite at benchmark load: higher rate, parts down for a minute (bench/faults.py)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stack_audit: inspects what the whole session left behind (logs), "
                                       "so it runs after every other test, before the stack_teardown tests")
    config.addinivalue_line("markers", "fresh_stack: needs the stack as `./stack up` leaves it (no DAG run, no "
                                       "dbt build yet), so it runs before every other test")


def _run_order(item: pytest.Item) -> int:
    if item.get_closest_marker("fresh_stack"):
        return -1
    if item.get_closest_marker("stack_teardown"):
        return 2
    return 1 if item.get_closest_marker("stack_audit") else 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `fresh_stack` run first, on the stack as it started; tests marked
    `stack_audit` inspect what the session left behind and tests marked `stack_teardown` stop the
    shared stack: they run last, in that order."""
    items.sort(key=_run_order)
