"""Counts over the tasks, kept as tasks change rather than recounted: how many of a service's
tasks run (and on its current spec), how many a global service wants, and each node's running
tasks and reservations. A change of one task costs the same whatever the cluster's size.
"""

from collections import Counter
from dataclasses import dataclass

from shoal.api.objects import Task
from shoal.api.types import TaskState
from shoal.manager.scheduler.nodeinfo import task_reservations


@dataclass(frozen=True, slots=True)
class Share:
    """What one task adds to its service's and its node's counts."""

    service_id: str
    node_id: str
    running: bool
    # Meant to run: a global service's desired count is its tasks meant to run.
    wanted: bool
    spec_version: int | None
    # Assigned to its node and not finished: holds its reservations there.
    active: bool
    nano_cpus: int
    memory_bytes: int


def share_of(task: Task) -> Share:
    running = task.Status.State == TaskState.RUNNING
    active = (
        bool(task.NodeID)
        and task.DesiredState <= TaskState.COMPLETE
        and task.Status.State <= TaskState.RUNNING
    )
    cpus, memory = task_reservations(task) if active else (0, 0)
    return Share(
        service_id=task.ServiceID,
        node_id=task.NodeID or "",
        running=running,
        wanted=task.DesiredState == TaskState.RUNNING,
        spec_version=task.SpecVersion.Index if task.SpecVersion is not None else None,
        active=active,
        nano_cpus=cpus,
        memory_bytes=memory,
    )


class ServiceTally:
    __slots__ = ("running", "running_by_version", "tasks", "wanted")

    def __init__(self) -> None:
        self.tasks = 0
        self.running = 0
        self.wanted = 0
        self.running_by_version: Counter[int | None] = Counter()


class NodeTally:
    __slots__ = ("active", "memory_bytes", "nano_cpus", "running")

    def __init__(self) -> None:
        self.running = 0
        self.active = 0
        self.nano_cpus = 0
        self.memory_bytes = 0


class Tally:
    """The counts of every service and node. ``put``/``remove`` a task as it changes; each
    returns the service and node whose counts changed (to send again)."""

    def __init__(self) -> None:
        self._shares: dict[str, Share] = {}
        self.services: dict[str, ServiceTally] = {}
        self.nodes: dict[str, NodeTally] = {}

    def service(self, service_id: str) -> ServiceTally:
        return self.services.get(service_id) or ServiceTally()

    def node(self, node_id: str) -> NodeTally:
        return self.nodes.get(node_id) or NodeTally()

    def put(self, task: Task) -> tuple[set[str], set[str]]:
        new = share_of(task)
        old = self._shares.get(task.ID)
        if old == new:
            return set(), set()
        if old is not None:
            self._apply(old, -1)
        self._shares[task.ID] = new
        self._apply(new, +1)
        return _touched(old, new)

    def remove(self, task_id: str) -> tuple[set[str], set[str]]:
        old = self._shares.pop(task_id, None)
        if old is None:
            return set(), set()
        self._apply(old, -1)
        return _touched(old, None)

    def _apply(self, share: Share, sign: int) -> None:
        service = self.services.get(share.service_id)
        if service is None:
            service = self.services[share.service_id] = ServiceTally()
        service.tasks += sign
        if share.running:
            service.running += sign
            service.running_by_version[share.spec_version] += sign
            if service.running_by_version[share.spec_version] == 0:
                del service.running_by_version[share.spec_version]
        if share.wanted:
            service.wanted += sign
        if service.tasks == 0:
            del self.services[share.service_id]
        if not share.node_id:
            return
        node = self.nodes.get(share.node_id)
        if node is None:
            node = self.nodes[share.node_id] = NodeTally()
        if share.running:
            node.running += sign
        if share.active:
            node.active += sign
            node.nano_cpus += sign * share.nano_cpus
            node.memory_bytes += sign * share.memory_bytes
        if not (node.running or node.active):
            del self.nodes[share.node_id]


def _touched(old: Share | None, new: Share | None) -> tuple[set[str], set[str]]:
    services = {s.service_id for s in (old, new) if s is not None}
    nodes = {s.node_id for s in (old, new) if s is not None and s.node_id}
    return services, nodes
