"""The services' task counts kept as the store changes (issue 15) are, after any sequence of
store changes, the counts of each service over its tasks (``service_status``): on the leader's
store and on a follower's (which applies the leader's proposals as the raft log gives them
back), through service and task changes of every kind, removals, and restores from a
snapshot (which tell no listener)."""

import asyncio
import datetime as dt
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from shoal import clock as clock_module
from shoal.api.base import Version
from shoal.api.objects import JobStatus, Service, Task, TaskStatus
from shoal.api.specs import ServiceSpec
from shoal.api.types import TaskState
from shoal.clock import FakeClock
from shoal.manager.controlapi import service_counts
from shoal.manager.controlapi.service_counts import ServiceCounts, TaskTallies, task_key
from shoal.manager.controlapi.service_status import service_status
from shoal.store import MemoryStore, Proposal, Tx
from shoal.store.proposal import decode_proposal, encode_proposal

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MODES = [
    {"Replicated": {"Replicas": 3}},
    {"Global": {}},
    {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 4}},
    {"GlobalJob": {}},
]
SERVICES = 3  # service IDs s0..s2
TASKS = 8  # task IDs t0..t7

# One change to the store: (what, which, a few values drawn for it).
services_changed = st.tuples(
    st.just("service"),
    st.integers(0, SERVICES - 1),
    st.integers(0, len(MODES) - 1),  # its mode
    st.integers(0, 5),  # replicas, or MaxConcurrent
    st.integers(0, 1),  # its job iteration
)
tasks_changed = st.tuples(
    st.just("task"),
    st.integers(0, TASKS - 1),
    st.integers(0, SERVICES),  # its service (the last never exists)
    st.one_of(  # its state: those counted, often
        st.sampled_from([TaskState.RUNNING, TaskState.COMPLETE]), st.sampled_from(list(TaskState))
    ),
    st.sampled_from([TaskState.RUNNING, TaskState.COMPLETE, TaskState.SHUTDOWN]),  # desired
    st.one_of(st.none(), st.integers(0, 1)),  # its job iteration
)
removed = st.tuples(st.sampled_from(["rm-service", "rm-task"]), st.integers(0, TASKS - 1))
restored = st.tuples(st.sampled_from(["restore-leader", "restore-follower"]))
transactions = st.lists(
    st.one_of(
        st.lists(st.one_of(services_changed, tasks_changed, removed), min_size=1, max_size=4),
        st.lists(restored, min_size=1, max_size=1),
    ),
    max_size=12,
)


class Replicating:
    """The leader's proposer: applies each proposal to the leader's store, and to the
    follower's as decoded from its log entry."""

    def __init__(self, leader: MemoryStore, follower: MemoryStore) -> None:
        self.leader, self.follower = leader, follower

    async def propose(self, proposal: Proposal) -> None:
        entry = encode_proposal(proposal)
        self.leader.apply(proposal)
        self.follower.apply(decode_proposal(entry))


def service_object(i: int, mode: int, replicas: int, iteration: int) -> Service:
    body: dict = {"Name": f"s{i}", "TaskTemplate": {"ContainerSpec": {"Image": "img"}}}
    body["Mode"] = {**MODES[mode]}
    if "Replicated" in body["Mode"]:
        body["Mode"] = {"Replicated": {"Replicas": replicas}}
    if "ReplicatedJob" in body["Mode"]:
        body["Mode"] = {"ReplicatedJob": {"MaxConcurrent": replicas, "TotalCompletions": 4}}
    svc = Service(ID=f"s{i}", Spec=ServiceSpec.model_validate(body))
    if "Job" in next(iter(body["Mode"])):
        svc.JobStatus = JobStatus(JobIteration=Version(Index=iteration))
    return svc


def change(tx: Tx, op: tuple) -> None:
    what = op[0]
    if what == "service":
        _, i, mode, replicas, iteration = op
        new = service_object(i, mode, replicas, iteration)
        current = tx.get(Service, new.ID)
        if current is None:
            tx.create(new)
        else:
            new.Version = current.Version
            tx.update(new)
    elif what == "task":
        _, i, service, state, desired, iteration = op
        new = Task(
            ID=f"t{i}",
            ServiceID=f"s{service}",
            Slot=i,
            NodeID=f"node{i % 3}",
            DesiredState=desired,
            JobIteration=Version(Index=iteration) if iteration is not None else None,
            Status=TaskStatus(State=state, Timestamp=NOW),
        )
        current = tx.get(Task, new.ID)
        if current is None:
            tx.create(new)
        else:
            new.Version = current.Version
            tx.update(new)
    elif what == "rm-service" and tx.get(Service, f"s{op[1] % SERVICES}") is not None:
        tx.delete(Service, f"s{op[1] % SERVICES}")
    elif what == "rm-task" and tx.get(Task, f"t{op[1]}") is not None:
        tx.delete(Task, f"t{op[1]}")


def check(store: MemoryStore, counts: ServiceCounts) -> None:
    view = store.view()
    for svc in view.services():
        assert counts.status(svc) == service_status(svc, view.tasks_of_service(svc.ID)), svc.ID


async def read_when_ready(store: MemoryStore, counts: ServiceCounts) -> None:
    """Read as `GET /services?status=true` does: the tables counted a step at a time (if they
    must be) while the store changes, then read at once."""
    await counts.ready()
    assert counts._count is None and not counts._out_of_date()
    rebuilds = counts.rebuilds
    check(store, counts)
    assert counts.rebuilds == rebuilds  # read as they were: ready


@settings(max_examples=150, deadline=None)
@given(transactions=transactions, read_every=st.integers(1, 3))
def test_the_counts_kept_are_the_counts_over_the_tasks(transactions, read_every):
    """Read at once after some transactions (``check``), and also, after the others, in the
    background (``read_when_ready``), counting the tables 2 tasks at a time if they must while
    the next transactions are written."""

    async def scenario() -> None:
        clock = FakeClock(NOW)
        leader, follower = MemoryStore(clock=clock), MemoryStore(clock=clock)
        leader.proposer = Replicating(leader, follower)
        kept = {leader: ServiceCounts(leader), follower: ServiceCounts(follower)}
        readers = []
        for n, ops in enumerate(transactions):
            if ops[0][0] == "restore-leader":
                leader.restore(leader.snapshot())
            elif ops[0][0] == "restore-follower":
                follower.restore(leader.snapshot())
            else:
                await leader.update(lambda tx, ops=ops: [change(tx, op) for op in ops])
            for store, counts in kept.items():
                if n % read_every == 0:  # not after each change: they pile up in between
                    check(store, counts)
                else:
                    readers.append(asyncio.ensure_future(read_when_ready(store, counts)))
            await asyncio.sleep(0)  # the readers count a step
        await asyncio.gather(*readers)
        for store, counts in kept.items():
            check(store, counts)

    with (
        mock.patch.object(service_counts, "STEP", 2),
        mock.patch.object(clock_module, "LOOP_SLICE", 0.0),
    ):
        asyncio.run(scenario())


def test_a_restore_is_counted_again_and_changes_after_it_too():
    async def scenario() -> None:
        store = MemoryStore(clock=FakeClock(NOW))
        counts = ServiceCounts(store)
        await store.update(lambda tx: change(tx, ("service", 0, 0, 2, 0)))
        (svc,) = store.view().services()
        assert counts.status(svc).RunningTasks == 0
        assert counts.rebuilds == 1
        other = MemoryStore(clock=FakeClock(NOW))
        await other.update(
            lambda tx: [
                change(tx, op)
                for op in [
                    ("service", 0, 0, 2, 0),
                    ("task", 0, 0, TaskState.RUNNING, TaskState.RUNNING, None),
                ]
            ]
        )
        store.restore(other.snapshot())
        # A change applied before anyone reads: the counts are taken again all the same.
        await store.update(
            lambda tx: change(tx, ("task", 1, 0, TaskState.RUNNING, TaskState.RUNNING, None))
        )
        assert counts.status(svc).RunningTasks == 2
        assert counts.rebuilds == 2
        await store.update(lambda tx: change(tx, ("rm-task", 0)))
        assert counts.status(svc).RunningTasks == 1
        assert counts.rebuilds == 2  # kept from the events since

    asyncio.run(scenario())


def test_counts_that_may_have_missed_a_change_are_taken_again():
    async def scenario() -> None:
        store = MemoryStore(clock=FakeClock(NOW))
        counts = ServiceCounts(store)
        await store.update(lambda tx: change(tx, ("service", 0, 1, 0, 0)))
        (svc,) = store.view().services()
        running = ("task", 0, 0, TaskState.RUNNING, TaskState.RUNNING, None)
        await store.update(lambda tx: change(tx, running))
        counts.status(svc)
        counts._tallies = TaskTallies()  # as if they had lost track: a removal will fail
        await store.update(lambda tx: change(tx, ("rm-task", 0)))  # fails: not counted
        await store.update(lambda tx: change(tx, ("task", 1, *running[2:])))
        assert counts.status(svc).RunningTasks == 1
        assert counts.status(svc).DesiredTasks == 1
        assert counts.rebuilds == 2

    asyncio.run(scenario())


def test_a_closed_store_is_counted_again_when_read():
    async def scenario() -> None:
        store = MemoryStore(clock=FakeClock(NOW))
        counts = ServiceCounts(store)
        await store.update(lambda tx: change(tx, ("service", 0, 1, 0, 0)))
        (svc,) = store.view().services()
        counts.status(svc)
        store.close()
        running = ("task", 0, 0, TaskState.RUNNING, TaskState.RUNNING, None)
        await store.update(lambda tx: change(tx, running))
        assert counts.status(svc).RunningTasks == 1
        assert counts.rebuilds == 2

    asyncio.run(scenario())


def test_a_task_change_that_moves_no_count_leaves_the_tally_as_it_is():
    task = Task(ID="t", ServiceID="s", Status=TaskStatus(State=TaskState.RUNNING, Timestamp=NOW))
    moved = task.model_copy(update={"NodeID": "elsewhere"})
    tallies = TaskTallies()
    tallies.add(task)
    tallies.change(task, moved)
    assert dict(tallies.of("s")) == {task_key(task): 1}
    tallies.change(moved, None)
    assert tallies.services() == 0


def test_changes_written_while_the_tables_are_counted_a_step_at_a_time_are_counted():
    async def scenario() -> None:
        store = MemoryStore(clock=FakeClock(NOW))
        counts = ServiceCounts(store)

        def tasks(ids, state=TaskState.RUNNING, desired=TaskState.RUNNING):
            return lambda tx: [change(tx, ("task", i, 0, state, desired, None)) for i in ids]

        await store.update(lambda tx: change(tx, ("service", 0, 1, 0, 0)))
        await store.update(tasks(range(0, 12)))
        reader = asyncio.ensure_future(read_when_ready(store, counts))
        await asyncio.sleep(0)  # tasks t0, t1 counted
        assert counts._count is not None
        await store.update(tasks([1, 11], state=TaskState.FAILED))  # one counted, one not
        await asyncio.sleep(0)
        await store.update(lambda tx: [change(tx, ("rm-task", i)) for i in (0, 10)])
        await asyncio.sleep(0)
        await store.update(tasks([12, 13], desired=TaskState.SHUTDOWN))  # not in the count
        await reader
        (svc,) = store.view().services()
        status = counts.status(svc)
        assert (status.RunningTasks, status.DesiredTasks) == (10, 10)
        assert counts.rebuilds == 1

    with (
        mock.patch.object(service_counts, "STEP", 2),
        mock.patch.object(clock_module, "LOOP_SLICE", 0.0),
    ):
        asyncio.run(scenario())
