"""The control API for job services: Docker's defaults, validation, iterations and status."""

import datetime as dt

import pytest

from shoal.api.base import Version
from shoal.api.objects import Task, TaskStatus
from shoal.api.types import TaskState
from shoal.errors import InvalidArgument
from shoal.manager.controlapi.filters import Filters
from tests.unit.controlapi import test_control
from tests.unit.controlapi.test_control import spec

control = test_control.control  # the same fixture: a control API over a one-manager store

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def job(name="job", **mode):
    return spec(name, Mode={"ReplicatedJob": mode})


async def test_replicated_job_defaults_as_docker(control):
    svc = await control.create_service(job())
    assert svc.Spec.Mode.ReplicatedJob.MaxConcurrent == 1
    assert svc.Spec.Mode.ReplicatedJob.TotalCompletions == 1
    three = await control.create_service(job("three", MaxConcurrent=3))
    assert three.Spec.Mode.ReplicatedJob.TotalCompletions == 3
    assert three.JobStatus is not None and three.JobStatus.JobIteration.Index == 0
    assert three.JobStatus.LastExecution is not None


async def test_a_job_may_not_have_an_update_config(control):
    with pytest.raises(
        InvalidArgument,
        match=r"^rpc error: code = InvalidArgument desc = Jobs may not have an update config$",
    ):
        await control.create_service(job() | {"UpdateConfig": {"Parallelism": 2}})
    assert control.list_services() == []


async def test_each_update_is_a_new_iteration_and_the_mode_stays(control):
    svc = await control.create_service(job())
    updated = await control.update_service(svc.ID, svc.Version.Index, job(), rollback=False)
    assert updated.JobStatus.JobIteration.Index == 1
    with pytest.raises(Exception, match="service mode change is not allowed"):
        await control.update_service(svc.ID, updated.Version.Index, spec("job"))
    with pytest.raises(Exception, match="service mode change is not allowed"):
        await control.update_service(
            svc.ID, updated.Version.Index, spec("job", Mode={"GlobalJob": {}})
        )


async def test_the_mode_filter_knows_jobs(control):
    await control.create_service(spec("web"))
    j = await control.create_service(job())
    g = await control.create_service(spec("g", Mode={"GlobalJob": {}}))
    listed = control.list_services(Filters({"mode": ["replicated-job"]}))
    assert [s.ID for s in listed] == [j.ID]
    assert [s.ID for s in control.list_services(Filters({"mode": ["global-job"]}))] == [g.ID]


async def test_a_replicated_job_status_counts_its_current_iteration(control):
    svc = await control.create_service(job(MaxConcurrent=4, TotalCompletions=3))

    def task(state, iteration=0):
        return Task(
            ID=f"t{state}{iteration}",
            ServiceID=svc.ID,
            DesiredState=TaskState.COMPLETE,
            JobIteration=Version(Index=iteration),
            Status=TaskStatus(State=state, Timestamp=NOW),
        )

    tasks = [task(TaskState.COMPLETE), task(TaskState.RUNNING), task(TaskState.COMPLETE, 9)]
    await control.store.update(lambda tx: [tx.create(t) for t in tasks])
    (listed,) = control.list_services(status=True)
    status = listed.ServiceStatus
    # Docker lists MaxConcurrent as desired, even above the completions: "0/4 (0/3 completed)"
    assert (status.RunningTasks, status.DesiredTasks, status.CompletedTasks) == (1, 4, 1)
