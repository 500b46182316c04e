"""The running local stack, as the benchmarks that drive it need it."""

from __future__ import annotations

import sys
from typing import Any

import clickhouse_connect

from bankcdc_stack.stack import Stack


def healthy_stack() -> Stack | None:
    """The local stack when every part but the filler is healthy; else None, having said which are not."""
    stack = Stack()
    down = [row.name for row in stack.status() if not row.health.ok and row.name != "filler"]
    if down:
        print(f"error: start the stack first (./stack up); not healthy: {', '.join(down)}", file=sys.stderr)
        return None
    return stack


def clickhouse_admin(env: dict[str, str], **settings: Any) -> Any:
    """A clickhouse-connect client of the stack's ClickHouse as `default`."""
    return clickhouse_connect.get_client(host=env["CLICKHOUSE_HOST"], port=int(env["CLICKHOUSE_PORT"]),
                                         username="default", password=env["CLICKHOUSE_PASSWORD"], **settings)


def filler_environment(stack: Stack) -> dict[str, str]:
    """The environment of a filler run as the stack's least-privileged bank_filler role."""
    return {**stack.ctx.env, "DB_USER": "bank_filler", "DB_PASSWORD": stack.ctx.secrets["FILLER_DB_PASSWORD"]}
