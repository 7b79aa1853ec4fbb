"""The sim runtime: a task passes through its states as the agent drives it, taking the
configured time to prepare and start, failing the configured share of starts, and running
until it is shut down."""

import asyncio
import random

import pytest

from shoal.agent.exec.base import ExitError
from shoal.agent.exec.sim import Latency, SimExecutor, SimSettings
from shoal.agent.task_manager import TaskManager
from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.clock import FakeClock


def task(desired: str = "running") -> Task:
    return Task.model_validate(
        {
            "ID": "t1",
            "DesiredState": desired,
            "Status": {"State": "assigned"},
            "Spec": {"ContainerSpec": {"Image": "app"}},
        }
    )


def test_latency_parses_fixed_and_ranges() -> None:
    assert Latency.parse("0.2") == Latency(0.2, 0.2)
    assert Latency.parse("0.1-0.5") == Latency(0.1, 0.5)
    rng = random.Random(1)
    assert all(0.1 <= Latency(0.1, 0.5).draw(rng) <= 0.5 for _ in range(100))
    for bad in ("x", "-1", "0.5-0.1"):
        with pytest.raises(ValueError, match="invalid latency"):
            Latency.parse(bad)
    with pytest.raises(ValueError, match="invalid failure rate"):
        SimSettings(failure_rate=1.5)


async def test_task_runs_after_its_start_latency_and_shuts_down() -> None:
    clock = FakeClock()
    ex = SimExecutor(SimSettings(start=Latency(2.0, 2.0)), clock)
    seen: list[TaskState] = []
    t = task()
    tm = TaskManager(t, ex.controller(t), lambda t: seen.append(t.Status.State), clock)
    tm.start()
    await clock.advance(0)
    assert seen == [TaskState.ACCEPTED, TaskState.PREPARING, TaskState.READY, TaskState.STARTING]
    await clock.advance(1.9)
    assert seen[-1] == TaskState.STARTING
    await clock.advance(0.2)
    assert seen[-1] == TaskState.RUNNING
    await clock.advance(3600)
    assert seen[-1] == TaskState.RUNNING  # runs until told otherwise
    tm.update(task(desired="shutdown").model_copy(update={"Status": tm.task.Status}))
    for _ in range(50):  # the wait is abandoned, then the shutdown step runs
        await asyncio.sleep(0)
    assert seen[-1] == TaskState.SHUTDOWN
    await tm.remove()


async def test_failure_rate_fails_that_share_of_starts() -> None:
    clock = FakeClock()
    ex = SimExecutor(SimSettings(failure_rate=0.3, seed=7), clock)
    failed = 0
    for _ in range(1000):
        try:
            await ex.controller(task()).start()
        except ExitError as err:
            assert str(err) == "task: non-zero exit (1): simulated failure"
            failed += 1
    assert 250 < failed < 350


async def test_every_runtime_offered_is_simulated() -> None:
    ex = SimExecutor(SimSettings(), FakeClock())
    assert ex.runtimes == ["container", "process"]
