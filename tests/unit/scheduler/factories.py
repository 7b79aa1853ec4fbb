"""Nodes and tasks for scheduler tests, with only the fields a test cares about."""

import asyncio
from collections.abc import Callable

from shoal.api.ids import new_id
from shoal.api.objects import (
    EngineDescription,
    Node,
    NodeDescription,
    NodeResources,
    NodeStatus,
    Platform,
    Task,
    TaskStatus,
)
from shoal.api.specs import (
    EndpointPortConfig,
    EndpointSpec,
    NodeSpec,
    Placement,
    PlatformSpec,
    ResourceRequirements,
    ResourceReservations,
    TaskSpec,
)
from shoal.api.types import (
    NodeAvailability,
    NodeRole,
    NodeState,
    PortProtocol,
    PublishMode,
    TaskState,
)

GB = 1 << 30
CPU = 1_000_000_000


def make_node(
    node_id: str,
    *,
    state: NodeState = NodeState.READY,
    availability: NodeAvailability = NodeAvailability.ACTIVE,
    labels: dict[str, str] | None = None,
    engine_labels: dict[str, str] | None = None,
    cpus: float = 4,
    memory: int = 8 * GB,
    runtimes: list[str] | None = None,
    arch: str = "x86_64",
    os: str = "linux",
    role: NodeRole = NodeRole.WORKER,
) -> Node:
    return Node(
        ID=node_id,
        Spec=NodeSpec(Labels=labels or {}, Role=role, Availability=availability),
        Role=role,
        Description=NodeDescription(
            Hostname=f"host-{node_id}",
            Platform=Platform(Architecture=arch, OS=os),
            Resources=NodeResources(NanoCPUs=int(cpus * CPU), MemoryBytes=memory),
            Engine=EngineDescription(Labels=engine_labels),
            Runtimes=["process"] if runtimes is None else runtimes,
        ),
        Status=NodeStatus(State=state, Addr="10.0.0.1"),
    )


def make_task(
    service_id: str = "svc",
    slot: int | None = 1,
    *,
    state: TaskState = TaskState.PENDING,
    desired: TaskState = TaskState.RUNNING,
    node_id: str | None = None,
    runtime: str | None = "process",
    cpus: float = 0,
    memory: int = 0,
    constraints: list[str] | None = None,
    platforms: list[tuple[str, str]] | None = None,
    max_replicas: int | None = None,
    preferences: list[dict] | None = None,
    host_ports: list[int | tuple[int, str]] | None = None,
    ingress_ports: list[int] | None = None,
    task_id: str | None = None,
    err: str | None = None,
) -> Task:
    ports = []
    for p in host_ports or []:
        port, proto = p if isinstance(p, tuple) else (p, "tcp")
        ports.append(
            EndpointPortConfig(
                Protocol=PortProtocol(proto),
                TargetPort=80,
                PublishedPort=port,
                PublishMode=PublishMode.HOST,
            )
        )
    for port in ingress_ports or []:
        ports.append(EndpointPortConfig(TargetPort=80, PublishedPort=port))
    return Task(
        ID=task_id or new_id(),
        ServiceID=service_id,
        Slot=slot,
        NodeID=node_id,
        DesiredState=desired,
        Status=TaskStatus(State=state, Message="pending task scheduling", Err=err),
        Spec=TaskSpec(
            Runtime=runtime,
            Resources=ResourceRequirements(
                Reservations=ResourceReservations(
                    NanoCPUs=int(cpus * CPU) or None, MemoryBytes=memory or None
                )
            ),
            Placement=Placement(
                Constraints=constraints,
                Platforms=[PlatformSpec(Architecture=a, OS=o) for a, o in platforms]
                if platforms
                else None,
                MaxReplicas=max_replicas,
                Preferences=preferences,
            ),
        ),
        Endpoint=EndpointSpec(Ports=ports) if ports else None,
    )


def spread(label: str) -> dict:
    return {"Spread": {"SpreadDescriptor": f"node.labels.{label}"}}


async def until(cond: Callable[[], bool], spins: int = 500) -> None:
    """Let the event loop run until ``cond`` holds (no time passes; tasks just get turns)."""
    for _ in range(spins):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")
