"""Builders and a hand-driven stand-in for the scheduler and agents, for orchestrator tests."""

import asyncio
import datetime as dt
import itertools

from shoal.api.base import Annotations, Version
from shoal.api.objects import (
    Cluster,
    Node,
    NodeDescription,
    NodeResources,
    NodeStatus,
    Platform,
    Service,
    Task,
)
from shoal.api.specs import (
    ContainerSpec,
    GlobalService,
    NodeSpec,
    Placement,
    ReplicatedService,
    RestartPolicy,
    ServiceMode,
    ServiceSpec,
    TaskSpec,
    UpdateConfig,
)
from shoal.api.types import NodeAvailability, NodeState, RestartCondition, TaskState
from shoal.clock import background_workers_pausing
from shoal.store import MemoryStore, Tx

_ids = itertools.count(1)


def node(
    node_id: str,
    *,
    state: NodeState = NodeState.READY,
    availability: NodeAvailability = NodeAvailability.ACTIVE,
    labels: dict[str, str] | None = None,
    runtimes: tuple[str, ...] = ("process",),
    cpus: int = 0,
    memory: int = 0,
    os: str = "linux",
    arch: str = "x86_64",
) -> Node:
    return Node(
        ID=node_id,
        Spec=NodeSpec(Labels=dict(labels or {}), Availability=availability),
        Description=NodeDescription(
            Hostname=node_id,
            Platform=Platform(OS=os, Architecture=arch),
            Resources=NodeResources(NanoCPUs=cpus, MemoryBytes=memory),
            Runtimes=list(runtimes),
        ),
        Status=NodeStatus(State=state, Addr="127.0.0.1"),
    )


def service(
    name: str = "web",
    *,
    replicas: int = 1,
    mode_global: bool = False,
    image: str = "img:1",
    restart: RestartPolicy | None = None,
    update: UpdateConfig | None = None,
    rollback: UpdateConfig | None = None,
    constraints: list[str] | None = None,
    runtime: str | None = "process",
    service_id: str | None = None,
) -> Service:
    mode = (
        ServiceMode(Global=GlobalService())
        if mode_global
        else ServiceMode(Replicated=ReplicatedService(Replicas=replicas))
    )
    return Service(
        ID=service_id or f"svc{next(_ids)}",
        Spec=ServiceSpec(
            Name=name,
            TaskTemplate=TaskSpec(
                ContainerSpec=ContainerSpec(Image=image),
                RestartPolicy=restart,
                Placement=Placement(Constraints=constraints),
                Runtime=runtime,
            ),
            Mode=mode,
            UpdateConfig=update,
            RollbackConfig=rollback,
        ),
        SpecVersion=Version(Index=0),
    )


def no_restart() -> RestartPolicy:
    return RestartPolicy(Condition=RestartCondition.NONE)


def task(
    svc: Service,
    *,
    slot: int | None = None,
    node_id: str | None = None,
    state: TaskState = TaskState.RUNNING,
    desired: TaskState = TaskState.RUNNING,
    at: dt.datetime | None = None,
    task_id: str | None = None,
) -> Task:
    from shoal.api.objects import TaskStatus

    return Task(
        ID=task_id or f"t{next(_ids)}",
        ServiceID=svc.ID,
        Slot=slot,
        NodeID=node_id,
        Spec=svc.Spec.TaskTemplate.clone(),
        SpecVersion=svc.SpecVersion.clone() if svc.SpecVersion else None,
        ServiceAnnotations=Annotations(Name=svc.Spec.Name),
        Endpoint=svc.Spec.EndpointSpec,
        DesiredState=desired,
        Status=TaskStatus(State=state, Timestamp=at or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
    )


def cluster(retention: int | None = 5) -> Cluster:
    c = Cluster(ID="cluster1")
    c.Spec.Orchestration.TaskHistoryRetentionLimit = retention
    return c


async def settle(store: MemoryStore, quiet: int = 30) -> None:
    """Let every loop run until the store has not changed for ``quiet`` turns of the loop,
    with no background worker part way through its work (taking turns, one may not run for
    many turns of the loop: ``BackgroundTurns``)."""
    last, still = -1, 0
    while still < quiet:
        await asyncio.sleep(0)
        if store.version == last and not background_workers_pausing():
            still += 1
        else:
            last, still = store.version, 0


async def put(store: MemoryStore, *objs) -> None:
    def fn(tx: Tx) -> None:
        for o in objs:
            if tx.get(type(o), o.ID) is None:
                tx.create(o)
            else:
                current = tx.get(type(o), o.ID)
                o = o.clone()
                o.Version = current.Version
                tx.update(o)

    await store.update(fn)


async def change(store: MemoryStore, cls, obj_id: str, fn) -> None:
    """Read-modify-write one object: ``fn`` changes a clone in place."""

    def do(tx: Tx) -> None:
        obj = tx.get(cls, obj_id).clone()
        fn(obj)
        tx.update(obj)

    await store.update(do)


class Sim:
    """Plays scheduler and agents: places tasks on nodes and moves their state forward."""

    def __init__(self, store: MemoryStore, clock) -> None:
        self.store = store
        self.clock = clock
        self.fail_images: set[str] = set()
        self._rr = itertools.count()

    def tasks(self, service_id: str | None = None) -> list[Task]:
        view = self.store.view()
        ts = view.tasks_of_service(service_id) if service_id else view.list(Task)
        return sorted(ts, key=lambda t: (t.Slot or 0, t.NodeID or "", t.CreatedAt, t.ID))

    def live(self, service_id: str) -> list[Task]:
        return [t for t in self.tasks(service_id) if t.DesiredState <= TaskState.RUNNING]

    def running(self, service_id: str) -> list[Task]:
        """Tasks running and meant to (not those on a lost node, still shown as running)."""
        return [
            t
            for t in self.tasks(service_id)
            if t.Status.State == TaskState.RUNNING and t.DesiredState == TaskState.RUNNING
        ]

    async def set_state(self, task_id: str, state: TaskState, err: str | None = None) -> None:
        def fn(tx: Tx) -> None:
            t = tx.get(Task, task_id)
            if t is None or t.Status.State >= state:
                return
            t = t.clone()
            t.Status.State = state
            t.Status.Timestamp = self.clock.now()
            t.Status.Err = err
            tx.update(t)

        await self.store.update(fn)

    def _pick_node(self, view, t: Task) -> str | None:
        nodes = sorted(
            (
                n
                for n in view.nodes()
                if n.Status.State == NodeState.READY
                and n.Spec.Availability == NodeAvailability.ACTIVE
            ),
            key=lambda n: (
                sum(
                    1
                    for x in view.tasks_on_node(n.ID)
                    if x.ServiceID == t.ServiceID and x.DesiredState <= TaskState.RUNNING
                ),
                n.ID,
            ),
        )
        return nodes[0].ID if nodes else None

    async def step(self) -> None:
        """One round of scheduling and agent work over every task."""

        def fn(tx: Tx) -> None:
            for t in sorted(tx.list(Task), key=lambda t: t.ID):
                nt = t.clone()
                changed = False
                if nt.NodeID is None and nt.DesiredState <= TaskState.RUNNING:
                    picked = self._pick_node(tx, nt)
                    if picked is None:
                        continue
                    nt.NodeID = picked
                    nt.Status.State = TaskState.ASSIGNED
                    changed = True
                elif nt.Status.State < TaskState.ASSIGNED and nt.DesiredState <= TaskState.RUNNING:
                    nt.Status.State = TaskState.ASSIGNED
                    changed = True
                if nt.NodeID is not None and changed is False:
                    n = tx.get(Node, nt.NodeID)
                    alive = n is not None and n.Status.State != NodeState.DOWN
                    if not alive:
                        continue
                    image = nt.Spec.ContainerSpec.Image if nt.Spec.ContainerSpec else ""
                    if nt.DesiredState > TaskState.RUNNING and nt.Status.State <= TaskState.RUNNING:
                        if nt.Status.State >= TaskState.ASSIGNED:
                            nt.Status.State = TaskState.SHUTDOWN
                            changed = True
                    elif nt.DesiredState == TaskState.READY and nt.Status.State < TaskState.READY:
                        nt.Status.State = TaskState.READY
                        changed = True
                    elif (
                        nt.DesiredState == TaskState.RUNNING and nt.Status.State < TaskState.RUNNING
                    ):
                        if image in self.fail_images:
                            nt.Status.State = TaskState.FAILED
                            nt.Status.Err = "task: non-zero exit (1)"
                        else:
                            nt.Status.State = TaskState.RUNNING
                        changed = True
                if changed:
                    nt.Status.Timestamp = self.clock.now()
                    tx.update(nt)

        await self.store.update(fn)

    async def converge(self, rounds: int = 6) -> None:
        for _ in range(rounds):
            await self.step()
            await settle(self.store)
