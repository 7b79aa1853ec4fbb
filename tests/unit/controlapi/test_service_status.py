"""`GET /services?status=true` counts (issue 15): the counts kept as the store changes are the
ones counted per service over all its tasks, on generated stores of every service mode; the
task list matched a slice at a time is the one matched at once."""

import asyncio
import datetime as dt
import random

import pytest

from shoal import clock
from shoal.api.base import Version
from shoal.api.objects import Service, ServiceStatus, Task, TaskStatus
from shoal.api.types import TaskState
from shoal.errors import InvalidArgument
from shoal.manager.controlapi import control as control_module
from shoal.manager.controlapi import service_status as counting
from shoal.manager.controlapi.filters import Filters
from tests.unit.controlapi import test_control
from tests.unit.controlapi.test_control import spec

control = test_control.control  # the same fixture: a control API over a one-manager store

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
STATES = list(TaskState)


def expected(service: Service, tasks: list[Task]) -> ServiceStatus:
    """The counts as written before they were sliced: per service, over all its tasks."""
    mode = service.Spec.Mode
    if mode.is_job:
        index = service.JobStatus.JobIteration.Index if service.JobStatus is not None else 0
        mine = [t for t in tasks if (t.JobIteration.Index if t.JobIteration else 0) == index]
        running = sum(1 for t in mine if t.Status.State == TaskState.RUNNING)
        completed = sum(1 for t in mine if t.Status.State == TaskState.COMPLETE)
        if mode.ReplicatedJob is not None:
            desired = mode.ReplicatedJob.MaxConcurrent
        else:
            desired = sum(
                1
                for t in mine
                if t.DesiredState == TaskState.COMPLETE and t.Status.State < TaskState.COMPLETE
            )
        return ServiceStatus(RunningTasks=running, DesiredTasks=desired, CompletedTasks=completed)
    running = desired = 0
    for t in tasks:
        if t.Status.State == TaskState.RUNNING:
            running += 1
        if mode.is_global and t.DesiredState == TaskState.RUNNING:
            desired += 1
    if mode.Replicated is not None:
        desired = mode.Replicated.Replicas
    return ServiceStatus(RunningTasks=running, DesiredTasks=desired, CompletedTasks=0)


MODES = [
    {"Replicated": {"Replicas": 7}},
    {"Global": {}},
    {"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 5}},
    {"GlobalJob": {}},
]


async def generated_store(control, seed: int) -> None:
    """Services of every mode (jobs updated to a later iteration), with tasks in random
    states, desired states and job iterations; a service without tasks."""
    rng = random.Random(seed)
    services = []
    for i in range(12):
        mode = MODES[i % len(MODES)]
        body = spec(f"s{i}", Mode=mode)
        if "Replicated" not in mode and "Global" not in mode:
            body.pop("UpdateConfig", None)
        svc = await control.create_service(body)
        if i % 8 == 2:  # a job run again: its status counts the new iteration only
            svc = await control.update_service(svc.ID, svc.Version.Index, body)
        services.append(svc)

    def add(tx) -> None:
        for n in range(rng.randrange(400, 700)):
            svc = rng.choice(services[:-1])  # the last service has no task
            tx.create(
                Task(
                    ID=f"t{seed}x{n}",
                    ServiceID=svc.ID,
                    Slot=n,
                    NodeID=f"node{n % 5}",
                    DesiredState=rng.choice(
                        [TaskState.RUNNING, TaskState.SHUTDOWN, TaskState.COMPLETE]
                    ),
                    JobIteration=Version(Index=rng.randrange(2)) if rng.random() < 0.9 else None,
                    Status=TaskStatus(State=rng.choice(STATES), Timestamp=NOW),
                )
            )

    await control.store.update(add)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_counts_listed_are_the_counts_of_each_service_over_all_its_tasks(control, seed):
    await generated_store(control, seed)
    view = control.store.view()
    want = {s.ID: expected(s, view.tasks_of_service(s.ID)) for s in view.services()}
    assert any(st.CompletedTasks for st in want.values())  # the jobs' counts are exercised
    assert any(st.DesiredTasks and st.RunningTasks for st in want.values())

    listed = control.list_services(status=True)
    assert [s.ID for s in listed] == [s.ID for s in view.services()]  # as stored, in order
    assert {s.ID: s.ServiceStatus for s in listed} == want
    assert {s.ID: counting.service_status(s, view.tasks_of_service(s.ID)) for s in listed} == want
    # Apart from the status, the services as stored.
    assert [s.model_copy(update={"ServiceStatus": None}) for s in listed] == view.services()
    assert await control.list_services_with_status() == listed


async def test_the_counts_listed_filter_as_the_list_does(control):
    await generated_store(control, 4)
    for f in [{"mode": ["global-job"]}, {"name": ["s1"]}, {"mode": ["replicated"]}]:
        want = [
            counting.with_status(s, expected(s, control.store.view().tasks_of_service(s.ID)))
            for s in control.list_services(Filters(f))
        ]
        assert want
        assert control.list_services(Filters(f), status=True) == want
        assert await control.list_services_with_status(Filters(f)) == want


async def test_the_counts_follow_each_write_as_it_is_applied(control):
    svc = await control.create_service(spec("web", replicas=30))

    def running(n: int, first: int = 0):
        def add(tx) -> None:
            for i in range(first, first + n):
                tx.create(
                    Task(
                        ID=f"t{i}",
                        ServiceID=svc.ID,
                        Slot=i,
                        DesiredState=TaskState.RUNNING,
                        Status=TaskStatus(State=TaskState.RUNNING, Timestamp=NOW),
                    )
                )

        return add

    (listed,) = await control.list_services_with_status()
    assert listed.ServiceStatus == ServiceStatus(RunningTasks=0, DesiredTasks=30)
    await control.store.update(running(20))
    (listed,) = await control.list_services_with_status()
    assert listed.ServiceStatus == ServiceStatus(RunningTasks=20, DesiredTasks=30)
    await control.store.update(running(5, first=20))
    (now,) = control.list_services(status=True)
    assert now.ServiceStatus == ServiceStatus(RunningTasks=25, DesiredTasks=30)
    assert control.service_counts.rebuilds == 1  # taken from the tables once, then kept


async def test_the_sliced_task_list_is_the_task_list(control, monkeypatch):
    """`GET /tasks` matches a slice at a time: the same tasks, in the same order, for every
    filter, and the same refusals."""
    await generated_store(control, 5)
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)
    monkeypatch.setattr(control_module, "TASK_STEP", 7)
    first = control.list_services()[0]
    for f in [
        {},
        {"desired-state": ["running"]},
        {"service": ["s1"]},
        {"id": ["t5x1"]},
        {"service": [first.ID[:6]], "desired-state": ["shutdown", "complete"]},
    ]:
        want = control.list_tasks(Filters(f))
        assert await control.list_tasks_sliced(Filters(f)) == want
    assert len(control.list_tasks()) > 400
    with pytest.raises(InvalidArgument, match="Invalid desired-state filter: 'bogus'"):
        await control.list_tasks_sliced(Filters({"desired-state": ["bogus"]}))


async def test_the_loop_runs_while_tasks_are_listed(control, monkeypatch):
    await generated_store(control, 6)
    monkeypatch.setattr(clock, "LOOP_SLICE", 0.0)
    monkeypatch.setattr(control_module, "TASK_STEP", 50)
    turns: list[int] = []

    async def other_work() -> None:
        for i in range(3):
            turns.append(i)
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_work())
    listed = await control.list_tasks_sliced()
    assert turns == [0, 1, 2]  # it ran while the tasks were being matched
    await other
    assert listed == control.list_tasks()
