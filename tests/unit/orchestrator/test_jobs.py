"""The job orchestrator's decisions: how many tasks a replicated job starts and where, which
failed tasks it replaces, and a global job's one task per node, per iteration."""

import datetime as dt

from shoal.api.base import Version
from shoal.api.objects import JobStatus, Service, Task, TaskStatus
from shoal.api.specs import (
    GlobalJob,
    ReplicatedJob,
    RestartPolicy,
    ServiceMode,
    ServiceSpec,
)
from shoal.api.types import NodeAvailability, RestartCondition, TaskState
from shoal.manager.orchestrator.jobs import (
    JobOrchestrator,
    new_job_task,
    plan_global_job,
    plan_replicated_job,
)
from shoal.store import MemoryStore, Tx
from tests.unit.orchestrator.helpers import node, put, settle

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(seconds=60)  # past any restart delay


def job_service(
    *,
    max_concurrent: int = 2,
    total: int = 5,
    iteration: int = 0,
    restart: RestartPolicy | None = None,
    global_job: bool = False,
) -> Service:
    mode = (
        ServiceMode(GlobalJob=GlobalJob())
        if global_job
        else ServiceMode(
            ReplicatedJob=ReplicatedJob(MaxConcurrent=max_concurrent, TotalCompletions=total)
        )
    )
    spec = ServiceSpec(Name="job", Mode=mode)
    spec.TaskTemplate.RestartPolicy = restart
    spec.TaskTemplate.Runtime = "process"
    return Service(
        ID="svc",
        Spec=spec,
        JobStatus=JobStatus(JobIteration=Version(Index=iteration), LastExecution=NOW),
    )


def task(
    service: Service,
    state: TaskState,
    *,
    slot: int | None = None,
    node_id: str | None = None,
    iteration: int | None = None,
) -> Task:
    t = new_job_task(service, now=NOW, slot=slot, node_id=node_id)
    if iteration is not None:
        t.JobIteration = Version(Index=iteration)
    t.Status = TaskStatus(State=state, Timestamp=NOW)
    return t


def test_new_job_task_is_meant_to_complete_in_this_iteration():
    s = job_service(iteration=3)
    t = new_job_task(s, now=NOW, slot=0)
    assert t.DesiredState == TaskState.COMPLETE
    assert t.JobIteration == Version(Index=3)


def test_a_fresh_replicated_job_starts_max_concurrent_tasks():
    assert plan_replicated_job(job_service(), [], LATER).create_slots == [0, 1]


def test_never_more_tasks_than_completions_still_needed():
    s = job_service(max_concurrent=4, total=3)
    assert plan_replicated_job(s, [], LATER).create_slots == [0, 1, 2]


def test_running_tasks_use_up_the_concurrency():
    s = job_service()
    tasks = [task(s, TaskState.RUNNING, slot=0), task(s, TaskState.PENDING, slot=1)]
    assert plan_replicated_job(s, tasks, LATER).create_slots == []


def test_a_completed_task_is_followed_by_a_new_slot_not_restarted():
    s = job_service()
    tasks = [task(s, TaskState.COMPLETE, slot=0), task(s, TaskState.RUNNING, slot=1)]
    assert plan_replicated_job(s, tasks, LATER).create_slots == [2]


def test_the_job_stops_at_total_completions():
    s = job_service()
    tasks = [task(s, TaskState.COMPLETE, slot=n) for n in range(4)]
    tasks.append(task(s, TaskState.RUNNING, slot=4))
    assert plan_replicated_job(s, tasks, LATER).create_slots == []
    tasks[-1].Status.State = TaskState.COMPLETE
    assert plan_replicated_job(s, tasks, LATER).create_slots == []


def test_a_failed_task_is_replaced_in_its_slot_first():
    s = job_service()
    tasks = [task(s, TaskState.FAILED, slot=0), task(s, TaskState.COMPLETE, slot=1)]
    assert plan_replicated_job(s, tasks, LATER).create_slots == [0, 2]


def test_a_failed_task_waits_out_the_restart_delay():
    s = job_service(restart=RestartPolicy(Delay=10 * 10**9))
    tasks = [task(s, TaskState.FAILED, slot=0), task(s, TaskState.COMPLETE, slot=1)]
    early = plan_replicated_job(s, tasks, NOW + dt.timedelta(seconds=3))
    assert early.create_slots == [2]
    assert early.wake_at == NOW + dt.timedelta(seconds=10)
    assert plan_replicated_job(s, tasks, NOW + dt.timedelta(seconds=10)).create_slots == [0, 2]


def test_restart_condition_none_leaves_a_failed_slot_alone():
    s = job_service(restart=RestartPolicy(Condition=RestartCondition.NONE))
    tasks = [task(s, TaskState.FAILED, slot=0)]
    assert plan_replicated_job(s, tasks, LATER).create_slots == [1, 2]


def test_max_attempts_bounds_the_replacements_of_a_slot():
    s = job_service(max_concurrent=1, total=1, restart=RestartPolicy(MaxAttempts=2))
    one_failure = [task(s, TaskState.FAILED, slot=0)]
    assert plan_replicated_job(s, one_failure, LATER).create_slots == [0]
    two_failures = [*one_failure, task(s, TaskState.FAILED, slot=0)]
    assert plan_replicated_job(s, two_failures, LATER).create_slots == []  # and no other slot


def test_a_new_iteration_runs_the_job_again_and_stops_old_tasks():
    s = job_service(iteration=1)
    old_done = task(s, TaskState.COMPLETE, slot=0, iteration=0)
    old_running = task(s, TaskState.RUNNING, slot=1, iteration=0)
    plan = plan_replicated_job(s, [old_done, old_running], LATER)
    assert plan.create_slots == [0, 1]  # slots are counted afresh in each iteration
    assert plan.shutdown == [old_running]


def test_a_global_job_runs_once_on_each_eligible_node():
    s = job_service(global_job=True)
    nodes = [
        node("a"),
        node("b"),
        node("c", availability=NodeAvailability.DRAIN),
    ]
    assert plan_global_job(s, [], nodes, LATER).create_nodes == ["a", "b"]
    done = [task(s, TaskState.COMPLETE, node_id="a"), task(s, TaskState.RUNNING, node_id="b")]
    assert plan_global_job(s, done, nodes, LATER).create_nodes == []


def test_a_global_job_replaces_a_failed_task_on_its_node():
    s = job_service(global_job=True)
    tasks = [task(s, TaskState.FAILED, node_id="a")]
    assert plan_global_job(s, tasks, [node("a")], LATER).create_nodes == ["a"]
    s.Spec.TaskTemplate.RestartPolicy = RestartPolicy(Condition=RestartCondition.NONE)
    assert plan_global_job(s, tasks, [node("a")], LATER).create_nodes == []


def test_a_global_job_runs_again_in_a_new_iteration():
    s = job_service(global_job=True, iteration=2)
    tasks = [task(s, TaskState.COMPLETE, node_id="a", iteration=1)]
    assert plan_global_job(s, tasks, [node("a")], LATER).create_nodes == ["a"]


# --- the loop, against a store ---------------------------------------------------------------


async def _finish_all(store: MemoryStore, service_id: str) -> None:
    """Play the agents: every unfinished task of the service completes."""

    def fn(tx: Tx) -> None:
        for t in tx.tasks_of_service(service_id):
            if t.Status.State < TaskState.COMPLETE and t.DesiredState == TaskState.COMPLETE:
                done = t.clone()
                done.Status = TaskStatus(State=TaskState.COMPLETE, Timestamp=NOW)
                tx.update(done)

    await store.update(fn)


async def test_the_loop_runs_a_replicated_job_to_its_completions(store, clock, running):
    await running.start(JobOrchestrator(store, clock))
    s = job_service(max_concurrent=2, total=5)
    await put(store, s)
    await settle(store)
    rounds = []
    for _ in range(4):
        rounds.append(
            len(
                [
                    t
                    for t in store.view().tasks_of_service(s.ID)
                    if t.Status.State < TaskState.COMPLETE
                ]
            )
        )
        await _finish_all(store, s.ID)
        await settle(store)
    tasks = store.view().tasks_of_service(s.ID)
    assert rounds == [2, 2, 1, 0]
    assert sorted(t.Slot for t in tasks) == [0, 1, 2, 3, 4]
    assert all(t.Status.State == TaskState.COMPLETE for t in tasks)

    # An update (a new iteration) runs it again.
    def bump(tx: Tx) -> None:
        svc = tx.get(Service, s.ID).clone()
        svc.JobStatus = JobStatus(JobIteration=Version(Index=1), LastExecution=NOW)
        tx.update(svc)

    await store.update(bump)
    await settle(store)
    fresh = [t for t in store.view().tasks_of_service(s.ID) if t.Status.State < TaskState.COMPLETE]
    assert len(fresh) == 2 and all(t.JobIteration == Version(Index=1) for t in fresh)


async def test_the_loop_removes_the_tasks_of_a_removed_job(store, clock, running):
    await running.start(JobOrchestrator(store, clock))
    s = job_service()
    await put(store, s)
    await settle(store)
    await store.update(lambda tx: tx.delete(Service, s.ID))
    await settle(store)
    tasks = store.view().tasks_of_service(s.ID)
    assert len(tasks) == 2 and all(t.DesiredState == TaskState.REMOVE for t in tasks)


async def test_the_loop_replaces_a_failed_task_once_its_delay_is_over(store, clock, running):
    await running.start(JobOrchestrator(store, clock))
    s = job_service(max_concurrent=1, total=1, restart=RestartPolicy(Delay=5 * 10**9))
    await put(store, s)
    await settle(store)
    (first,) = store.view().tasks_of_service(s.ID)

    def fail(tx: Tx) -> None:
        t = tx.get(Task, first.ID).clone()
        t.Status = TaskStatus(State=TaskState.FAILED, Timestamp=clock.now())
        tx.update(t)

    await store.update(fail)
    await settle(store)
    assert len(store.view().tasks_of_service(s.ID)) == 1  # still within the delay
    await clock.advance(5)
    await settle(store)
    tasks = store.view().tasks_of_service(s.ID)
    assert len(tasks) == 2 and {t.Slot for t in tasks} == {0}
