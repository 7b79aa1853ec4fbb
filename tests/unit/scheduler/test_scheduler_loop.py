"""The scheduler's loop against a MemoryStore: decisions reach the store, and the loop
reacts to nodes and tasks changing."""

import asyncio
from collections import Counter
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import shoal.clock
from shoal.api.objects import Node, Task
from shoal.api.types import NodeAvailability, NodeState, TaskState
from shoal.clock import FakeClock
from shoal.manager.scheduler import NodeSet, Scheduler
from shoal.manager.scheduler import scheduler as scheduler_loop
from shoal.manager.scheduler.planner import schedulable
from shoal.store import MemoryStore
from shoal.store.proposal import Action, Change, Proposal
from tests.unit.scheduler.factories import GB, make_node, make_task, until


@pytest.fixture
def start(store, clock, background):
    return lambda: background(Scheduler(store, clock))


def task(store, task_id) -> Task:
    t = store.view().get(Task, task_id)
    assert t is not None
    return t


async def create(store, *objs):
    await store.update(lambda tx: [tx.create(o) for o in objs])


async def change_node(store, node_id, fn):
    def apply(tx):
        node = tx.get(Node, node_id).clone()
        fn(node)
        tx.update(node)

    await store.update(apply)


async def set_task_state(store, task_id, state):
    def apply(tx):
        t = tx.get(Task, task_id).clone()
        t.Status.State = state
        tx.update(t)

    await store.update(apply)


def assigned(store, ids):
    return all(task(store, i).Status.State == TaskState.ASSIGNED for i in ids)


async def test_assigns_pending_tasks_found_at_start(store, start):
    await create(store, make_node("a"), make_node("b"), make_node("c"))
    tasks = [make_task("web", i) for i in (1, 2, 3)]
    await create(store, *tasks)
    start()
    await until(lambda: assigned(store, [t.ID for t in tasks]))
    got = [task(store, t.ID) for t in tasks]
    assert Counter(t.NodeID for t in got) == {"a": 1, "b": 1, "c": 1}
    assert {t.Status.Message for t in got} == {"scheduler assigned task to node"}


async def test_assigns_tasks_created_later_in_few_transactions(store, start):
    await create(store, *(make_node(f"n{i}") for i in range(5)))
    start()
    await asyncio.sleep(0)
    before = store.version
    tasks = [make_task("web", i) for i in range(1, 101)]
    await create(store, *tasks)
    await until(lambda: assigned(store, [t.ID for t in tasks]))
    # one transaction created them; the scheduler wrote them in batches, not one by one
    assert store.version - before <= 3
    counts = Counter(task(store, t.ID).NodeID for t in tasks)
    assert set(counts.values()) == {20}


async def test_new_tasks_are_not_scheduled(store, start):
    await create(store, make_node("a"))
    t = make_task("web", 1, state=TaskState.NEW)
    await create(store, t)
    start()
    for _ in range(20):
        await asyncio.sleep(0)
    assert task(store, t.ID).Status.State == TaskState.NEW


async def test_pending_task_gets_scheduled_when_a_node_joins(store, start):
    t = make_task("web", 1)
    await create(store, t)
    start()
    await until(lambda: task(store, t.ID).Status.Err == "no suitable node")
    await create(store, make_node("late"))
    await until(lambda: assigned(store, [t.ID]))
    assert task(store, t.ID).NodeID == "late"
    assert task(store, t.ID).Status.Err is None


async def test_pending_task_scheduled_when_node_becomes_ready(store, start):
    await create(store, make_node("a", state=NodeState.UNKNOWN))
    t = make_task("web", 1)
    await create(store, t)
    start()
    await until(
        lambda: (
            task(store, t.ID).Status.Err == "no suitable node (1 node not available for new tasks)"
        )
    )
    await change_node(store, "a", lambda n: setattr(n.Status, "State", NodeState.READY))
    await until(lambda: assigned(store, [t.ID]))


async def test_pending_task_scheduled_when_labels_change(store, start):
    await create(store, make_node("a"))
    t = make_task("web", 1, constraints=["node.labels.disk==ssd"])
    await create(store, t)
    start()
    await until(
        lambda: (
            task(store, t.ID).Status.Err
            == "no suitable node (scheduling constraints not satisfied on 1 node)"
        )
    )
    await change_node(store, "a", lambda n: n.Spec.Labels.update(disk="ssd"))
    await until(lambda: assigned(store, [t.ID]))


async def test_drained_node_is_not_chosen(store, start):
    await create(store, make_node("a"), make_node("b"))
    await change_node(store, "a", lambda n: setattr(n.Spec, "Availability", NodeAvailability.DRAIN))
    start()
    tasks = [make_task("web", i) for i in (1, 2, 3)]
    await create(store, *tasks)
    await until(lambda: assigned(store, [t.ID for t in tasks]))
    assert {task(store, t.ID).NodeID for t in tasks} == {"b"}


async def test_resources_freed_when_a_task_stops(store, start):
    await create(store, make_node("a", memory=2 * GB))
    first = make_task("db", 1, memory=2 * GB)
    await create(store, first)
    start()
    await until(lambda: assigned(store, [first.ID]))
    second = make_task("web", 1, memory=2 * GB)
    await create(store, second)
    await until(
        lambda: (
            task(store, second.ID).Status.Err
            == "no suitable node (insufficient resources on 1 node)"
        )
    )
    await set_task_state(store, first.ID, TaskState.FAILED)
    await until(lambda: assigned(store, [second.ID]))


async def test_resources_freed_when_a_task_is_deleted(store, start):
    await create(store, make_node("a", memory=2 * GB))
    first = make_task("db", 1, memory=2 * GB)
    second = make_task("web", 1, memory=2 * GB)
    await create(store, first)
    start()
    await until(lambda: assigned(store, [first.ID]))
    await create(store, second)
    await until(lambda: task(store, second.ID).Status.Err is not None)
    await store.update(lambda tx: tx.delete(Task, first.ID))
    await until(lambda: assigned(store, [second.ID]))


async def test_err_written_once_while_nothing_changes(store, start):
    t = make_task("web", 1, constraints=["node.labels.x==y"])
    await create(store, make_node("a"), t)
    start()
    await until(lambda: task(store, t.ID).Status.Err is not None)
    version = task(store, t.ID).Version.Index
    # unrelated activity: another task is created and scheduled
    other = make_task("db", 1)
    await create(store, other)
    await until(lambda: assigned(store, [other.ID]))
    # a node change that does not alter the answer
    await change_node(store, "a", lambda n: n.Spec.Labels.update(other="1"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert task(store, t.ID).Version.Index == version


async def test_err_updated_when_the_reason_changes(store, start):
    t = make_task("web", 1, constraints=["node.labels.x==y"])
    await create(store, make_node("a"), t)
    start()
    await until(
        lambda: (
            task(store, t.ID).Status.Err
            == "no suitable node (scheduling constraints not satisfied on 1 node)"
        )
    )
    await create(store, make_node("b"))
    await until(
        lambda: (
            task(store, t.ID).Status.Err
            == "no suitable node (scheduling constraints not satisfied on 2 nodes)"
        )
    )


async def test_task_not_assigned_once_desired_state_passes_running(store, start):
    t = make_task("web", 1)
    await create(store, t)
    start()
    await until(lambda: task(store, t.ID).Status.Err is not None)

    def shut(tx):
        cur = tx.get(Task, t.ID).clone()
        cur.DesiredState = TaskState.SHUTDOWN
        tx.update(cur)

    await store.update(shut)
    await create(store, make_node("a"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert task(store, t.ID).Status.State == TaskState.PENDING
    assert task(store, t.ID).NodeID is None


async def test_preassigned_task_waits_for_its_node(store, start):
    await create(store, make_node("a", state=NodeState.UNKNOWN))
    t = make_task("glob", None, node_id="a")
    await create(store, t)
    start()
    await until(lambda: task(store, t.ID).Status.Err == "1 node not available for new tasks")
    await change_node(store, "a", lambda n: setattr(n.Status, "State", NodeState.READY))
    await until(lambda: assigned(store, [t.ID]))
    got = task(store, t.ID)
    assert got.NodeID == "a"
    assert got.Status.Message == "scheduler confirmed task can run on preassigned node"


async def test_counts_include_running_tasks_from_the_store(store, start):
    await create(store, make_node("a"), make_node("b"))
    existing = [make_task("web", i, node_id="a", state=TaskState.RUNNING) for i in (1, 2)]
    await create(store, *existing)
    start()
    new = [make_task("web", i) for i in (3, 4)]
    await create(store, *new)
    await until(lambda: assigned(store, [t.ID for t in new]))
    assert {task(store, t.ID).NodeID for t in new} == {"b"}


async def test_max_replicas_retry_after_task_leaves(store, start):
    await create(store, make_node("a"))
    first = make_task("web", 1, max_replicas=1)
    second = make_task("web", 2, max_replicas=1)
    await create(store, first, second)
    start()
    await until(
        lambda: (
            assigned(store, [first.ID])
            and task(store, second.ID).Status.Err
            == "no suitable node (max replicas per node limit exceed)"
        )
    )

    def shutdown(tx):
        cur = tx.get(Task, first.ID).clone()
        cur.DesiredState = TaskState.SHUTDOWN
        tx.update(cur)

    await store.update(shutdown)
    await until(lambda: assigned(store, [second.ID]))


async def test_node_removed_is_forgotten(store, start):
    await create(store, make_node("a"), make_node("b"))
    start()
    await asyncio.sleep(0)
    await store.update(lambda tx: tx.delete(Node, "a"))
    tasks = [make_task("web", i) for i in (1, 2)]
    await create(store, *tasks)
    await until(lambda: assigned(store, [t.ID for t in tasks]))
    assert {task(store, t.ID).NodeID for t in tasks} == {"b"}


async def test_run_returns_when_store_closes(store, clock):
    sched = Scheduler(store, clock)
    runner = asyncio.create_task(sched.run())
    await asyncio.sleep(0)
    store.close()
    await asyncio.wait_for(runner, timeout=5)


async def test_node_known_late_counts_its_tasks(store, start):
    # a task already runs on node "a" when the scheduler first hears of the node
    await create(store, make_node("b"))
    start()
    await asyncio.sleep(0)
    running = [make_task("web", i, node_id="a", state=TaskState.RUNNING) for i in (1, 2)]
    await create(store, *running)
    await create(store, make_node("a"))
    new = [make_task("web", i) for i in (3, 4)]
    await create(store, *new)
    await until(lambda: assigned(store, [t.ID for t in new]))
    assert {task(store, t.ID).NodeID for t in new} == {"b"}


async def test_node_drained_while_decisions_are_written(clock):
    """Decisions are written in several transactions; a node drained between two of them
    gets none of the later ones, and those tasks are placed again elsewhere."""
    store = MemoryStore(clock=clock)
    drained = asyncio.Event()
    background: list[asyncio.Task] = []

    def drain():
        node = store.view().get(Node, "a").clone()
        node.Spec.Availability = NodeAvailability.DRAIN
        return store.update(lambda tx: tx.update(node))

    class Proposer:
        async def propose(self, proposal):
            store.apply(proposal)
            assigns = [c for c in proposal.changes if c.kind == "task" and c.obj.NodeID]
            if assigns and not drained.is_set():
                drained.set()
                # waits for the write lock, so lands between the scheduler's transactions
                background.append(asyncio.create_task(drain()))
                await asyncio.sleep(0)  # as a log's write would: the drain starts waiting

    store.proposer = Proposer()
    await create(store, make_node("a"), make_node("b"))
    tasks = [make_task("web", i) for i in range(1, 301)]
    await create(store, *tasks)
    runner = asyncio.create_task(Scheduler(store, clock).run())
    try:
        await until(lambda: assigned(store, [t.ID for t in tasks]), spins=2000)
    finally:
        runner.cancel()
        await asyncio.gather(runner, *background, return_exceptions=True)
    counts = Counter(task(store, t.ID).NodeID for t in tasks)
    # the first transaction (200 decisions, every other one to a) was written before the drain
    assert counts == {"a": 100, "b": 200}
    store.close()


@settings(max_examples=60, deadline=None)
@given(
    drawn=st.lists(
        st.tuples(
            st.sampled_from([None, "", "a", "b", "gone"]),  # node
            st.sampled_from(list(TaskState)),
            st.sampled_from([TaskState.RUNNING, TaskState.SHUTDOWN]),  # desired
            st.integers(0, 2),  # CPUs reserved
            st.sampled_from([None, 8080]),  # a host port
        ),
        max_size=30,
    )
)
def test_a_new_leader_loads_in_steps_what_one_read_gives(drawn):
    """The first read lets the loop run after every task (issue 15): the node set and the
    queue are still those ``NodeSet.build`` and one pass over the tasks give."""
    tasks = [
        make_task(
            "web",
            i,
            node_id=node,
            state=state,
            desired=desired,
            cpus=cpus,
            host_ports=[port] if port else None,
            task_id=f"t{i:02d}",
        )
        for i, (node, state, desired, cpus, port) in enumerate(drawn)
    ]
    nodes = [make_node("a"), make_node("b", state=NodeState.DOWN)]

    def summary(nodeset: NodeSet) -> list:
        return [
            (
                n.id,
                list(n.tasks),
                n.active_total,
                n.active_by_service,
                n.host_ports,
                n.nano_cpus_free,
            )
            for n in nodeset
        ]

    async def scenario() -> None:
        store = MemoryStore(clock=FakeClock())
        store.apply(Proposal(1, [Change(Action.CREATE, o) for o in [*nodes, *tasks]]))
        scheduler = Scheduler(store, store.clock)
        with patch.object(shoal.clock, "LOOP_SLICE", 0.0), patch.object(scheduler_loop, "STEP", 1):
            await scheduler._load(store.view())
        expected = NodeSet.build(store.view().nodes(), store.view().list(Task))
        assert summary(scheduler.nodes) == summary(expected)
        assert list(scheduler._queue) == [t.ID for t in tasks if schedulable(t)]
        store.close()

    asyncio.run(scenario())
