"""The filters a node must pass to take a task, each with the explanation Swarm gives when
nodes fail it (they make up "no suitable node (...)").

A filter is prepared once per task (``set_task``, which says whether it applies at all) and
then checked against many nodes, so per-task work (parsing constraints) happens once.
"""

from collections.abc import Hashable

from shoal.api.objects import Task
from shoal.api.types import NodeAvailability, NodeState
from shoal.manager import constraint
from shoal.manager.scheduler.nodeinfo import HostPort, NodeInfo, task_host_ports


def _nodes(n: int) -> str:
    return "1 node" if n == 1 else f"{n} nodes"


class Filter:
    # A static filter looks only at the node, never at the tasks on it, so its answer for a
    # node holds until the node changes; ``key`` says what of the task it depends on.
    static = False

    def key(self) -> Hashable:
        return None

    def set_task(self, task: Task) -> bool:
        """Prepare for ``task``; False if this filter has nothing to check for it."""
        raise NotImplementedError

    def check(self, node: NodeInfo) -> bool:
        raise NotImplementedError

    def explain(self, nodes: int) -> str:
        """Why ``nodes`` nodes failed this filter."""
        raise NotImplementedError


class ReadyFilter(Filter):
    static = True

    def set_task(self, task: Task) -> bool:
        return True

    def check(self, node: NodeInfo) -> bool:
        n = node.node
        return n.Status.State == NodeState.READY and n.Spec.Availability == NodeAvailability.ACTIVE

    def explain(self, nodes: int) -> str:
        if nodes == 1:
            return "1 node not available for new tasks"
        return f"{nodes} nodes not available for new tasks"


class RuntimeFilter(Filter):
    """shoal's own: the node must offer the task's runtime (``process``, ``container``)."""

    static = True

    def __init__(self) -> None:
        self.runtime = ""

    def key(self) -> Hashable:
        return self.runtime

    def set_task(self, task: Task) -> bool:
        self.runtime = task.Spec.runtime
        return True

    def check(self, node: NodeInfo) -> bool:
        desc = node.node.Description
        return desc is not None and self.runtime in desc.Runtimes

    def explain(self, nodes: int) -> str:
        return f"runtime {self.runtime} not offered on {_nodes(nodes)}"


class ResourceFilter(Filter):
    def __init__(self) -> None:
        self.nano_cpus = 0
        self.memory = 0

    def set_task(self, task: Task) -> bool:
        res = task.Spec.Resources.Reservations
        self.nano_cpus = res.NanoCPUs or 0
        self.memory = res.MemoryBytes or 0
        return bool(self.nano_cpus or self.memory)

    def check(self, node: NodeInfo) -> bool:
        return self.nano_cpus <= node.nano_cpus_free and self.memory <= node.memory_free

    def explain(self, nodes: int) -> str:
        return f"insufficient resources on {_nodes(nodes)}"


class PluginFilter(Filter):
    """The node must have the network driver of each network the task is on (``overlay``:
    a node reports it only where it can build overlay networks: see the agent's
    description)."""

    static = True

    def __init__(self) -> None:
        self.drivers: tuple[str, ...] = ()

    def key(self) -> Hashable:
        return self.drivers

    def set_task(self, task: Task) -> bool:
        drivers = {
            a.Network.DriverState.Name
            for a in task.NetworksAttachments or ()
            if a.Network.DriverState is not None and a.Network.DriverState.Name
        }
        self.drivers = tuple(sorted(drivers))
        return bool(self.drivers)

    def check(self, node: NodeInfo) -> bool:
        desc = node.node.Description
        plugins = (desc.Engine.Plugins if desc is not None else None) or []
        have = {p.Name for p in plugins if p.Type == "Network"}
        return all(d in have for d in self.drivers)

    def explain(self, nodes: int) -> str:
        return f"missing plugin on {_nodes(nodes)}"


class ConstraintFilter(Filter):
    static = True

    def __init__(self) -> None:
        self.constraints: list[constraint.Constraint] = []

    def key(self) -> Hashable:
        return tuple(self.constraints)

    def set_task(self, task: Task) -> bool:
        exprs = task.Spec.Placement.Constraints
        if not exprs:
            return False
        try:
            self.constraints = constraint.parse(exprs)
        except constraint.ConstraintError:
            # The control API refuses bad constraints; one that got through anyway (an older
            # spec) is ignored rather than blocking the task forever, as Swarm does.
            return False
        return bool(self.constraints)

    def check(self, node: NodeInfo) -> bool:
        return constraint.node_matches(self.constraints, node.node)

    def explain(self, nodes: int) -> str:
        return f"scheduling constraints not satisfied on {_nodes(nodes)}"


# Architectures that name the same thing; Swarm compares them as one.
_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


def _arch(name: str) -> str:
    return _ARCH_ALIASES.get(name, name)


class PlatformFilter(Filter):
    static = True

    def __init__(self) -> None:
        self.platforms: list[tuple[str, str]] = []

    def key(self) -> Hashable:
        return tuple(self.platforms)

    def set_task(self, task: Task) -> bool:
        wanted = task.Spec.Placement.Platforms or []
        self.platforms = [(_arch(p.Architecture), p.OS) for p in wanted]
        return bool(self.platforms)

    def check(self, node: NodeInfo) -> bool:
        desc = node.node.Description
        if desc is None:
            return False
        arch, os_ = _arch(desc.Platform.Architecture), desc.Platform.OS
        return any((not a or a == arch) and (not o or o == os_) for a, o in self.platforms)

    def explain(self, nodes: int) -> str:
        return f"unsupported platform on {_nodes(nodes)}"


class HostPortFilter(Filter):
    """Two tasks cannot publish the same host-mode port (per protocol) on one node."""

    def __init__(self) -> None:
        self.ports: list[HostPort] = []

    def set_task(self, task: Task) -> bool:
        self.ports = task_host_ports(task)
        return bool(self.ports)

    def check(self, node: NodeInfo) -> bool:
        used = node.host_ports
        return not any(p in used for p in self.ports)

    def explain(self, nodes: int) -> str:
        return f"host-mode port already in use on {_nodes(nodes)}"


class MaxReplicasFilter(Filter):
    def __init__(self) -> None:
        self.service_id = ""
        self.max_replicas = 0

    def set_task(self, task: Task) -> bool:
        self.service_id = task.ServiceID
        self.max_replicas = task.Spec.Placement.MaxReplicas or 0
        return self.max_replicas > 0

    def check(self, node: NodeInfo) -> bool:
        return node.service_count(self.service_id) < self.max_replicas

    def explain(self, nodes: int) -> str:
        return "max replicas per node limit exceed"


def default_filters() -> list[Filter]:
    """In the order nodes are checked; a node is counted against the first filter it fails.
    Readiness first (as Swarm); then the runtime, because a node that cannot run the task at
    all should be reported as such rather than as short of memory."""
    return [
        ReadyFilter(),
        RuntimeFilter(),
        ResourceFilter(),
        PluginFilter(),
        ConstraintFilter(),
        PlatformFilter(),
        HostPortFilter(),
        MaxReplicasFilter(),
    ]
