"""A manager's store filled as a settled cluster's: ready nodes, replicated services, and their
tasks moved to running as the scheduler and the dispatcher would. make_nodes, make_service and
move_tasks_to_running make the store store_scale.py and memory.py both measure (its speed
through raft, and its memory); ready_node the nodes of the in-process benches of a manager's
components (scheduler, plan, leader_start, replicated_events)."""

import datetime as dt
from collections.abc import Callable

from shoal.api.ids import new_id
from shoal.api.objects import Node, NodeDescription, NodeResources, NodeStatus, Service, Task
from shoal.api.specs import NodeSpec, ServiceSpec
from shoal.api.types import NodeState, TaskState
from shoal.store import MemoryStore, Tx


def ready_node(i: int) -> Node:
    """Node ``node{i:05d}``, ready, with room for any number of tasks (64 CPUs, 1 TiB): a
    bench's figures are then the components' work, never a full cluster's."""
    return Node(
        ID=f"node{i:05d}",
        Spec=NodeSpec(),
        Description=NodeDescription(
            Hostname=f"host{i}",
            Resources=NodeResources(NanoCPUs=64 * 10**9, MemoryBytes=1 << 40),
            Runtimes=["process"],
        ),
        Status=NodeStatus(State=NodeState.READY, Addr="127.0.0.1"),
    )


def make_nodes(m: int) -> list[Node]:
    return [
        Node(
            ID=new_id(),
            Spec=NodeSpec(),
            Description=NodeDescription(
                Hostname=f"sim{i:05d}",
                Resources=NodeResources(NanoCPUs=64 * 10**9, MemoryBytes=1 << 40),
                Runtimes=["process"],
            ),
            Status=NodeStatus(State=NodeState.READY, Addr=f"10.0.{i // 250}.{i % 250 + 1}"),
        )
        for i in range(m)
    ]


def make_service(i: int, replicas: int) -> Service:
    spec = {
        "Name": f"svc{i:03d}",
        "Labels": {"bench": "store_scale"},
        "TaskTemplate": {
            "ContainerSpec": {"Image": "busybox:latest", "Args": ["sleep", "1d"], "Env": ["A=1"]},
            "Resources": {"Reservations": {"MemoryBytes": 1 << 20}},
            "RestartPolicy": {"Condition": "any", "MaxAttempts": 0},
            "Runtime": "process",
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
    }
    return Service(ID=new_id(), Spec=ServiceSpec.model_validate(spec))


async def move_tasks_to_running(store: MemoryStore, node_ids: list[str], now: dt.datetime) -> None:
    """Every task in the store placed on one of ``node_ids`` in turn and running, in one
    ``store.batch`` (proposals of up to 200 changes, as the dispatcher's status updates)."""

    def to_running(task_id: str, node_id: str) -> Callable[[Tx], None]:
        def fn(tx: Tx) -> None:
            t = tx.get(Task, task_id).model_copy()  # type: ignore[union-attr]
            t.NodeID = node_id
            t.Status = t.Status.model_copy(
                update={"State": TaskState.RUNNING, "Message": "started", "Timestamp": now}
            )
            tx.update(t)

        return fn

    ids = [t.ID for t in store.view().list(Task)]
    await store.batch(to_running(i, node_ids[k % len(node_ids)]) for k, i in enumerate(ids))
