"""What the scheduler knows about one node: the node itself and the tasks placed on it.

Kept incrementally (a task added or removed adjusts the counts), so that ranking and filtering
never rescan a node's tasks.
"""

from shoal.api.objects import Node, Task
from shoal.api.types import PortProtocol, PublishMode, TaskState

HostPort = tuple[PortProtocol, int]


def task_reservations(task: Task) -> tuple[int, int]:
    """(NanoCPUs, MemoryBytes) the task reserves on its node."""
    res = task.Spec.Resources.Reservations
    return res.NanoCPUs or 0, res.MemoryBytes or 0


def task_host_ports(task: Task) -> list[HostPort]:
    """The host-mode ports the task publishes with a fixed number: each needs its node's port."""
    ep = task.Endpoint
    if ep is None or not ep.Ports:
        return []
    return [
        (p.Protocol, p.PublishedPort)
        for p in ep.Ports
        if p.PublishMode == PublishMode.HOST and p.PublishedPort
    ]


def is_active(task: Task) -> bool:
    """Counts toward the node's load: the task is meant to run (or run to completion).
    A task asked to shut down still holds its resources until it stops, but no longer counts
    when spreading a service."""
    return task.DesiredState <= TaskState.COMPLETE


class NodeInfo:
    """A node with the tasks placed on it (assigned up to running): counts per service and in
    total, free reservable resources, host ports in use."""

    __slots__ = (
        "active_by_service",
        "active_total",
        "host_ports",
        "id",
        "memory_free",
        "nano_cpus_free",
        "node",
        "tasks",
        "verdicts",
    )

    def __init__(self, node: Node, tasks: list[Task] | tuple[Task, ...] = ()) -> None:
        self.node = node
        self.id = node.ID
        # What the filters that look only at the node (not at its tasks) said, per kind of
        # task: kept until the node changes. See Pipeline.
        self.verdicts: dict[int, int] = {}
        self.tasks: dict[str, Task] = {}
        self.active_total = 0
        self.active_by_service: dict[str, int] = {}
        self.host_ports: dict[HostPort, int] = {}
        self.nano_cpus_free, self.memory_free = self._capacity(node)
        for task in tasks:
            self.add_task(task)

    @staticmethod
    def _capacity(node: Node) -> tuple[int, int]:
        desc = node.Description
        if desc is None:
            return 0, 0
        return desc.Resources.NanoCPUs, desc.Resources.MemoryBytes

    def set_node(self, node: Node) -> None:
        """Take a newer version of the node; its resources may have changed."""
        old = self.node
        self.node = node
        self.verdicts.clear()
        if self._capacity(old) != self._capacity(node):
            cpus, memory = self._capacity(node)
            for task in self.tasks.values():
                task_cpus, task_memory = task_reservations(task)
                cpus -= task_cpus
                memory -= task_memory
            self.nano_cpus_free, self.memory_free = cpus, memory

    def service_count(self, service_id: str) -> int:
        return self.active_by_service.get(service_id, 0)

    def _count(self, task: Task, delta: int) -> None:
        self.active_total += delta
        by_service = self.active_by_service
        n = by_service.get(task.ServiceID, 0) + delta
        if n:
            by_service[task.ServiceID] = n
        else:
            by_service.pop(task.ServiceID, None)

    def add_task(self, task: Task) -> bool:
        """Place a task here, or take a newer version of one already here. Returns True if
        the node's counts changed."""
        old = self.tasks.get(task.ID)
        self.tasks[task.ID] = task
        if old is not None:
            was, now = is_active(old), is_active(task)
            if was != now:
                self._count(task, 1 if now else -1)
                return True
            return False
        cpus, memory = task_reservations(task)
        self.nano_cpus_free -= cpus
        self.memory_free -= memory
        for hp in task_host_ports(task):
            self.host_ports[hp] = self.host_ports.get(hp, 0) + 1
        if is_active(task):
            self._count(task, 1)
        return True

    def place(self, task: Task, reservations: tuple[int, int], host_ports: list[HostPort]) -> None:
        """``add_task`` for a task the planner just placed here: new on this node, meant to
        run, reserving ``reservations`` and publishing ``host_ports`` (its group's, known
        already), so that placing one costs no walk through the task."""
        if task.ID in self.tasks:
            self.add_task(task)
            return
        self.tasks[task.ID] = task
        cpus, memory = reservations
        self.nano_cpus_free -= cpus
        self.memory_free -= memory
        for hp in host_ports:
            self.host_ports[hp] = self.host_ports.get(hp, 0) + 1
        self.active_total += 1
        by_service = self.active_by_service
        by_service[task.ServiceID] = by_service.get(task.ServiceID, 0) + 1

    def remove_task(self, task_id: str) -> Task | None:
        """Take a task off this node (it stopped, or was deleted); its resources are free."""
        task = self.tasks.pop(task_id, None)
        if task is None:
            return None
        cpus, memory = task_reservations(task)
        self.nano_cpus_free += cpus
        self.memory_free += memory
        for hp in task_host_ports(task):
            n = self.host_ports.get(hp, 0) - 1
            if n > 0:
                self.host_ports[hp] = n
            else:
                self.host_ports.pop(hp, None)
        if is_active(task):
            self._count(task, -1)
        return task

    def __repr__(self) -> str:
        return f"NodeInfo({self.id}, tasks={self.active_total})"
