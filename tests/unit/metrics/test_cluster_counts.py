"""The counts behind swarm_manager_nodes, swarm_manager_tasks_total and the object totals:
kept from the store's watch, they must always equal what a full read of the store gives."""

import asyncio
import random

from shoal.api.ids import new_id
from shoal.api.objects import Config, Network, Node, NodeStatus, Secret, Service, Task, TaskStatus
from shoal.api.specs import ConfigSpec, NetworkSpec, NodeSpec, SecretSpec, ServiceSpec
from shoal.api.types import NodeAvailability, NodeRole, NodeState, TaskState
from shoal.manager.metrics import ClusterCounts
from shoal.store import MemoryStore, Tx


def node(state: NodeState = NodeState.READY, role: NodeRole = NodeRole.WORKER) -> Node:
    return Node(ID=new_id(), Role=role, Spec=NodeSpec(Role=role), Status=NodeStatus(State=state))


def task(state: TaskState = TaskState.NEW, service: str = "svc") -> Task:
    return Task(
        ID=new_id(),
        ServiceID=service,
        DesiredState=TaskState.RUNNING,
        Status=TaskStatus(State=state),
    )


def recount(store: MemoryStore) -> ClusterCounts:
    """What a fresh read of the store gives: the reference the followed counts must equal."""
    fresh = ClusterCounts(store)
    fresh.refresh()
    fresh.abandon()
    return fresh


def figures(counts: ClusterCounts) -> dict[str, dict[str, int]]:
    def nonzero(c: dict[str, int]) -> dict[str, int]:
        return {k: v for k, v in c.items() if v}

    return {
        "totals": nonzero(counts.totals),
        "node_states": nonzero(counts.node_states),
        "node_roles": nonzero(counts.node_roles),
        "node_availabilities": nonzero(counts.node_availabilities),
        "task_states": nonzero(counts.task_states),
    }


async def set_task_state(store: MemoryStore, task_id: str, state: TaskState) -> None:
    def fn(tx: Tx) -> None:
        t = tx.get(Task, task_id)
        assert t is not None
        changed = t.clone()
        changed.Status = TaskStatus(State=state)
        tx.update(changed)

    await store.update(fn)


async def test_counts_what_is_there_when_it_starts(store: MemoryStore):
    n1, n2 = node(), node(NodeState.DOWN, NodeRole.MANAGER)
    tasks = [task(TaskState.RUNNING), task(TaskState.RUNNING), task(TaskState.FAILED)]
    await store.update(lambda tx: [tx.create(o) for o in (n1, n2, *tasks)])
    await store.update(lambda tx: tx.create(Service(ID=new_id(), Spec=ServiceSpec(Name="web"))))

    counts = ClusterCounts(store)
    counts.refresh()
    assert counts.node_states == {"ready": 1, "down": 1}
    assert counts.node_roles == {"worker": 1, "manager": 1}
    assert counts.node_availabilities == {"active": 2}
    assert counts.task_states == {"running": 2, "failed": 1}
    assert counts.totals["service"] == 1 and counts.totals["task"] == 3
    counts.abandon()


async def test_follows_creates_state_changes_and_removals(store: MemoryStore):
    counts = ClusterCounts(store)
    counts.refresh()
    t = task(TaskState.PENDING)
    n = node()
    await store.update(lambda tx: (tx.create(t), tx.create(n)))
    counts.refresh()
    assert counts.task_states["pending"] == 1 and counts.node_states["ready"] == 1

    await set_task_state(store, t.ID, TaskState.RUNNING)
    counts.refresh()
    assert counts.task_states["pending"] == 0 and counts.task_states["running"] == 1

    def drain(tx: Tx) -> None:
        current = tx.get(Node, n.ID)
        assert current is not None
        changed = current.clone()
        changed.Spec.Availability = NodeAvailability.DRAIN
        changed.Status = NodeStatus(State=NodeState.DOWN)
        tx.update(changed)

    await store.update(drain)
    counts.refresh()
    assert counts.node_states == {"ready": 0, "down": 1}
    assert counts.node_availabilities == {"active": 0, "drain": 1}

    await store.update(lambda tx: (tx.delete(Task, t.ID), tx.delete(Node, n.ID)))
    counts.refresh()
    assert counts.task_states["running"] == 0 and counts.totals["task"] == 0
    assert counts.node_states["down"] == 0 and counts.totals["node"] == 0
    counts.abandon()


async def test_object_totals(store: MemoryStore):
    counts = ClusterCounts(store)
    counts.refresh()
    objs = [
        Service(ID=new_id(), Spec=ServiceSpec(Name="a")),
        Network(ID=new_id(), Spec=NetworkSpec(Name="n")),
        Secret(ID=new_id(), Spec=SecretSpec(Name="s", Data=b"x")),
        Config(ID=new_id(), Spec=ConfigSpec(Name="c", Data=b"x")),
    ]
    await store.update(lambda tx: [tx.create(o) for o in objs])
    counts.refresh()
    assert {k: counts.totals[k] for k in ("service", "network", "secret", "config")} == {
        "service": 1,
        "network": 1,
        "secret": 1,
        "config": 1,
    }
    await store.update(lambda tx: tx.delete(Secret, objs[2].ID))
    counts.refresh()
    assert counts.totals["secret"] == 0
    counts.abandon()


async def test_a_restore_is_counted_again(store: MemoryStore):
    """A snapshot installed on a manager far behind replaces the tables without events."""
    counts = ClusterCounts(store)
    counts.refresh()
    await store.update(lambda tx: tx.create(task(TaskState.RUNNING)))

    other = MemoryStore()
    await other.update(lambda tx: [tx.create(task(TaskState.FAILED)) for _ in range(3)])
    store.restore(other.snapshot())
    counts.refresh()
    assert figures(counts)["task_states"] == {"failed": 3}
    assert counts.totals["task"] == 3
    # Events after the restore are followed as before.
    await store.update(lambda tx: tx.create(task(TaskState.RUNNING)))
    counts.refresh()
    assert figures(counts)["task_states"] == {"failed": 3, "running": 1}
    counts.abandon()
    other.close()


async def test_followed_counts_equal_a_fresh_read_after_any_sequence_of_changes(
    store: MemoryStore,
):
    rng = random.Random(16)
    counts = ClusterCounts(store)
    counts.start()  # following in the background too, as on a daemon
    tasks: list[str] = []
    nodes: list[str] = []
    states = list(TaskState)
    for _ in range(300):
        op = rng.random()
        if op < 0.3 or not tasks:
            t = task(rng.choice(states))
            tasks.append(t.ID)
            await store.update(lambda tx, t=t: tx.create(t))
        elif op < 0.6:
            await set_task_state(store, rng.choice(tasks), rng.choice(states))
        elif op < 0.7:
            victim = tasks.pop(rng.randrange(len(tasks)))
            await store.update(lambda tx, v=victim: tx.delete(Task, v))
        elif op < 0.8 or not nodes:
            n = node(rng.choice(list(NodeState)), rng.choice(list(NodeRole)))
            nodes.append(n.ID)
            await store.update(lambda tx, n=n: tx.create(n))
        elif op < 0.9:
            node_id = rng.choice(nodes)

            def change(tx: Tx, node_id: str = node_id) -> None:
                current = tx.get(Node, node_id)
                assert current is not None
                changed = current.clone()
                changed.Status = NodeStatus(State=rng.choice(list(NodeState)))
                changed.Role = rng.choice(list(NodeRole))
                changed.Spec.Availability = rng.choice(list(NodeAvailability))
                tx.update(changed)

            await store.update(change)
        else:
            victim = nodes.pop(rng.randrange(len(nodes)))
            await store.update(lambda tx, v=victim: tx.delete(Node, v))
        if rng.random() < 0.2:
            await asyncio.sleep(0)  # let the background follower take some
        if rng.random() < 0.1:
            counts.refresh()
            assert figures(counts) == figures(recount(store))
    counts.refresh()
    assert figures(counts) == figures(recount(store))
    counts.abandon()


async def test_following_in_the_background_leaves_nothing_queued(store: MemoryStore):
    counts = ClusterCounts(store)
    counts.start()
    for _ in range(5):
        await store.update(lambda tx: tx.create(task(TaskState.RUNNING)))
    for _ in range(10):
        await asyncio.sleep(0)
    assert counts._sub is not None and counts._sub.pending() == 0
    assert counts.task_states["running"] == 5  # counted without a scrape
    counts.abandon()


def test_counting_without_an_event_loop_catches_up_at_each_refresh():
    store = MemoryStore()
    asyncio.run(store.update(lambda tx: tx.create(task(TaskState.RUNNING))))
    counts = ClusterCounts(store)
    counts.start()  # no loop running: no follower, no error
    asyncio.run(store.update(lambda tx: tx.create(task(TaskState.RUNNING))))
    counts.refresh()
    assert counts.task_states["running"] == 2
    counts.abandon()
    store.close()
