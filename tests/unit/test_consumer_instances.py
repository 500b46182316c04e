"""Which consumer instances the stack reports and stops, whatever CONSUMER_INSTANCES says now."""

from __future__ import annotations

import sys
from pathlib import Path

from bankcdc_stack.stack import Stack


def stack_with(state: Path, instances: int) -> Stack:
    return Stack({"BANKCDC_STATE_DIR": str(state), "CONSUMER_INSTANCES": str(instances)})


def test_an_instance_past_the_configured_count_is_listed_and_stopped(tmp_path: Path) -> None:
    three = stack_with(tmp_path, 3).services["consumer"]
    assert [p.name for p in three.processes()] == ["consumer", "consumer-2", "consumer-3"]
    # consumer-3 left running by `CONSUMER_INSTANCES=3 ./stack up`, seen from a shell without the variable
    three.ctx.managed("consumer-3").spawn([sys.executable, "-c", "import time; time.sleep(60)"], env={})
    one = stack_with(tmp_path, 1).services["consumer"]
    assert [p.name for p in one.processes()] == ["consumer", "consumer-3"]
    assert [port for port, _ in one.ports()] == [9464, 9466]
    assert one.stop(), "stop reports that something ran"
    assert one.ctx.managed("consumer-3").pid() is None
    assert [p.name for p in one.processes()] == ["consumer"]
